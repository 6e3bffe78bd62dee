//! Grants and what descends from them: authorization codes, refresh tokens and the access
//! tokens revocation must reach. Every single-use step is one conditional UPDATE, so that of
//! concurrent attempts exactly one wins, on SQLite and PostgreSQL alike.

use sqlx::{Any, Executor, FromRow};

use super::{Store, StoreError, WriteTx};
use crate::ids::{ClientId, UserId};
use crate::oauth::scope::Scope;

/// A new grant with its authorization code.
pub struct NewCode<'a> {
    pub grant_id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub redirect_uri: &'a str,
    pub redirect_uri_in_request: bool,
    pub code_challenge: &'a str,
    pub code_hash: &'a str,
    pub now: i64,
    pub code_expires_at: i64,
    pub grant_expires_at: i64,
}

/// An authorization code as stored.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub grant_id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: Scope,
    pub redirect_uri: String,
    pub redirect_uri_in_request: bool,
    pub code_challenge: String,
    pub expires_at: i64,
    pub redeemed: bool,
    pub user_disabled: bool,
}

/// A rotated refresh token's successor, as the rotation recorded it.
#[derive(Debug, Clone)]
pub struct Successor {
    pub token_hash: String,
    /// The successor token, sealed under a key derived from the rotated token.
    pub sealed: String,
}

/// A refresh token as stored, with its grant.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub grant_id: String,
    pub created_at: i64,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub scope: Scope,
    pub idle_expires_at: i64,
    pub grant_expires_at: i64,
    /// When it was exchanged for its successor, if it was.
    pub rotated_at: Option<i64>,
    /// What it was exchanged for, while a retry may still get it.
    pub successor: Option<Successor>,
    /// The token it succeeded, if it was issued by a refresh.
    pub predecessor_hash: Option<String>,
    pub grant_revoked: bool,
    pub user_disabled: bool,
}

impl Store {
    /// Creates the grant and its code together.
    pub async fn insert_code(&self, code: &NewCode<'_>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(code.grant_id)
        .bind(code.client_id)
        .bind(code.user_id)
        .bind(code.scope)
        .bind(code.now)
        .bind(code.grant_expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, \
             redirect_uri_in_request, code_challenge, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(code.code_hash)
        .bind(code.grant_id)
        .bind(code.client_id)
        .bind(code.redirect_uri)
        .bind(i64::from(code.redirect_uri_in_request))
        .bind(code.code_challenge)
        .bind(code.code_expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A refresh token with its grant, for introspection and revocation, which read it alone.
    pub async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        find_refresh_token(self.pool(), token_hash).await
    }

    /// Revokes a grant: its refresh tokens stop working and its access tokens are reported
    /// inactive. Returns false when it was already revoked (or does not exist).
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
        revoke_grant(self.pool(), grant_id, now).await
    }

    /// Revokes one access token by `jti` (RFC 7009).
    pub async fn revoke_access_token(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, revoked_at) VALUES ($1, NULL, $2, $3, $4) \
             ON CONFLICT (jti) DO UPDATE SET revoked_at = excluded.revoked_at",
        )
        .bind(jti)
        .bind(client_id)
        .bind(expires_at)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Is this access token revoked, by itself or through its grant? A code-flow token whose
    /// grant is gone (user or client deleted) counts as revoked too.
    pub async fn is_access_token_revoked(
        &self,
        jti: &str,
        issued_for_user: bool,
    ) -> Result<bool, StoreError> {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT a.revoked_at, g.revoked_at FROM access_tokens a \
             LEFT JOIN grants g ON g.id = a.grant_id WHERE a.jti = $1",
        )
        .bind(jti)
        .fetch_optional(self.pool())
        .await?;
        let Some((token_revoked_at, grant_revoked_at)) = row else {
            return Ok(issued_for_user);
        };
        Ok(token_revoked_at.is_some() || grant_revoked_at.is_some())
    }
}

/// The grants' steps inside one write transaction: a token-endpoint request reads, checks and
/// writes through these, and nothing it did counts until the commit.
impl WriteTx {
    pub async fn find_code(&mut self, code_hash: &str) -> Result<Option<CodeRecord>, StoreError> {
        let row = sqlx::query_as::<_, CodeRow>(
            "SELECT c.grant_id, c.client_id, g.user_id, g.scope, c.redirect_uri, c.redirect_uri_in_request, \
                    c.code_challenge, c.expires_at, c.redeemed_at, u.disabled_at AS user_disabled_at \
             FROM authorization_codes c JOIN grants g ON g.id = c.grant_id JOIN users u ON u.id = g.user_id \
             WHERE c.code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&mut **self)
        .await?;
        row.map(CodeRecord::try_from).transpose()
    }

    /// Marks the code used. True for exactly one caller, however many race (RFC 6749 §4.1.2).
    pub async fn redeem_code(&mut self, code_hash: &str, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE authorization_codes SET redeemed_at = $2 WHERE code_hash = $1 AND redeemed_at IS NULL",
        )
        .bind(code_hash)
        .bind(now)
        .execute(&mut **self)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn revoke_grant(&mut self, grant_id: &str, now: i64) -> Result<bool, StoreError> {
        revoke_grant(&mut **self, grant_id, now).await
    }

    pub async fn find_refresh_token(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        find_refresh_token(&mut **self, token_hash).await
    }

    /// Marks a refresh token exchanged for `successor`. True for exactly one caller, however
    /// many race: on PostgreSQL a second UPDATE waits for the first to commit and then finds
    /// `rotated_at` set.
    pub async fn rotate_refresh_token(
        &mut self,
        token_hash: &str,
        now: i64,
        successor: &Successor,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $2, successor_hash = $3, successor_sealed = $4 \
             WHERE token_hash = $1 AND rotated_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .bind(&successor.token_hash)
        .bind(&successor.sealed)
        .execute(&mut **self)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Forgets what a rotated token sealed for a retry: once its successor has been used, no
    /// retry may get it again, and a chain of seals must never lead from an old token (leaked
    /// from a log, say) to the live one.
    pub async fn forget_sealed_successor(&mut self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE refresh_tokens SET successor_sealed = NULL WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut **self)
            .await?;
        Ok(())
    }

    /// Stores a refresh token; `predecessor_hash` names the token it succeeds, if any.
    pub async fn insert_refresh_token(
        &mut self,
        token_hash: &str,
        grant_id: &str,
        predecessor_hash: Option<&str>,
        now: i64,
        idle_expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, predecessor_hash, created_at, idle_expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(grant_id)
        .bind(predecessor_hash)
        .bind(now)
        .bind(idle_expires_at)
        .execute(&mut **self)
        .await?;
        Ok(())
    }

    /// Remembers an access token issued for a grant, so that revoking the grant reaches it.
    pub async fn record_access_token(
        &mut self,
        jti: &str,
        grant_id: &str,
        client_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO access_tokens (jti, grant_id, client_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(jti)
            .bind(grant_id)
            .bind(client_id)
            .bind(expires_at)
            .execute(&mut **self)
            .await?;
        Ok(())
    }
}

async fn revoke_grant<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    grant_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let result =
        sqlx::query("UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(grant_id)
            .bind(now)
            .execute(executor)
            .await?;
    Ok(result.rows_affected() == 1)
}

async fn find_refresh_token<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    token_hash: &str,
) -> Result<Option<RefreshRecord>, StoreError> {
    let row = sqlx::query_as::<_, RefreshRow>(
        "SELECT r.grant_id, g.client_id, g.user_id, g.scope, r.idle_expires_at, \
                g.expires_at AS grant_expires_at, r.rotated_at, g.revoked_at AS grant_revoked_at, \
                u.disabled_at AS user_disabled_at, r.created_at, r.successor_hash, r.successor_sealed, \
                r.predecessor_hash \
         FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id \
         WHERE r.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await?;
    row.map(RefreshRecord::try_from).transpose()
}

/// `find_code`'s row.
#[derive(FromRow)]
struct CodeRow {
    grant_id: String,
    client_id: ClientId,
    user_id: UserId,
    scope: String,
    redirect_uri: String,
    redirect_uri_in_request: i64,
    code_challenge: String,
    expires_at: i64,
    redeemed_at: Option<i64>,
    user_disabled_at: Option<i64>,
}

impl TryFrom<CodeRow> for CodeRecord {
    type Error = StoreError;

    fn try_from(row: CodeRow) -> Result<Self, StoreError> {
        Ok(Self {
            grant_id: row.grant_id,
            client_id: row.client_id,
            user_id: row.user_id,
            scope: stored_scope(&row.scope)?,
            redirect_uri: row.redirect_uri,
            redirect_uri_in_request: row.redirect_uri_in_request != 0,
            code_challenge: row.code_challenge,
            expires_at: row.expires_at,
            redeemed: row.redeemed_at.is_some(),
            user_disabled: row.user_disabled_at.is_some(),
        })
    }
}

/// `find_refresh_token`'s row: the token with its grant and user.
#[derive(FromRow)]
struct RefreshRow {
    grant_id: String,
    client_id: ClientId,
    user_id: UserId,
    scope: String,
    idle_expires_at: i64,
    grant_expires_at: i64,
    rotated_at: Option<i64>,
    grant_revoked_at: Option<i64>,
    user_disabled_at: Option<i64>,
    created_at: i64,
    successor_hash: Option<String>,
    successor_sealed: Option<String>,
    predecessor_hash: Option<String>,
}

impl TryFrom<RefreshRow> for RefreshRecord {
    type Error = StoreError;

    fn try_from(row: RefreshRow) -> Result<Self, StoreError> {
        Ok(Self {
            grant_id: row.grant_id,
            client_id: row.client_id,
            user_id: row.user_id,
            scope: stored_scope(&row.scope)?,
            idle_expires_at: row.idle_expires_at,
            grant_expires_at: row.grant_expires_at,
            rotated_at: row.rotated_at,
            grant_revoked: row.grant_revoked_at.is_some(),
            user_disabled: row.user_disabled_at.is_some(),
            created_at: row.created_at,
            successor: row
                .successor_hash
                .zip(row.successor_sealed)
                .map(|(token_hash, sealed)| Successor { token_hash, sealed }),
            predecessor_hash: row.predecessor_hash,
        })
    }
}

/// A scope as stored: written by Portcullis, so one that does not parse is a corrupt row.
fn stored_scope(text: &str) -> Result<Scope, StoreError> {
    Scope::parse(text).map_err(|_| StoreError::Internal(sqlx::Error::Decode("scope".into())))
}
