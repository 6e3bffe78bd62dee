//! Organization and membership rows.

use sqlx::FromRow;

use super::{Store, StoreError};
use crate::audit::AuditEvent;
use crate::ids::{OrgId, UserId};
use crate::names::DisplayName;
use crate::organizations::{Member, Organization, Role};

#[derive(FromRow)]
struct OrganizationRow {
    id: OrgId,
    name: String,
    created_at: i64,
}

impl From<OrganizationRow> for Organization {
    fn from(row: OrganizationRow) -> Self {
        Self {
            id: row.id,
            name: DisplayName::from_stored(row.name),
            created_at: row.created_at,
        }
    }
}

#[derive(FromRow)]
struct MemberRow {
    user_id: UserId,
    username: String,
    role: String,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;

    fn try_from(row: MemberRow) -> Result<Self, StoreError> {
        let role = Role::parse(&row.role)
            .ok_or_else(|| StoreError::Internal(sqlx::Error::Decode("member role".into())))?;
        Ok(Self {
            user_id: row.user_id,
            username: row.username,
            role,
        })
    }
}

impl Store {
    pub async fn insert_organization(
        &self,
        org: &Organization,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let statement =
            sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(&org.id)
                .bind(org.name.as_str())
                .bind(org.created_at);
        self.execute_recorded(statement, event).await?;
        Ok(())
    }

    pub async fn find_organization(&self, id: &OrgId) -> Result<Option<Organization>, StoreError> {
        let row = sqlx::query_as::<_, OrganizationRow>(
            "SELECT id, name, created_at FROM organizations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(Organization::from))
    }

    pub async fn list_organizations(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Organization>, StoreError> {
        let rows = sqlx::query_as::<_, OrganizationRow>(
            "SELECT id, name, created_at FROM organizations WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Organization::from).collect())
    }

    /// Deletes the organization with its memberships and its API keys (by cascade).
    pub async fn delete_organization(
        &self,
        id: &OrgId,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM organizations WHERE id = $1").bind(id);
        let result = self.execute_credential_change(statement, event).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Adds a member or changes their role.
    pub async fn set_member(
        &self,
        org_id: &OrgId,
        user_id: &UserId,
        role: Role,
        now: i64,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let statement = sqlx::query(
            "INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now);
        self.execute_recorded(statement, event).await?;
        Ok(())
    }

    /// Removes a member, and revokes the organization's keys they made that were marked to go
    /// with their creator. Returns false when they were not a member.
    pub async fn remove_member(
        &self,
        org_id: &OrgId,
        user_id: &UserId,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let result =
            sqlx::query("DELETE FROM organization_members WHERE org_id = $1 AND user_id = $2")
                .bind(org_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE owner_org_id = $1 AND created_by = $2 \
             AND revoke_when_creator_leaves = 1 AND revoked_at IS NULL",
        )
        .bind(org_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if result.rows_affected() == 1 {
            Self::record_event(&mut tx, event).await?;
        }
        self.commit_credential_change(tx).await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn list_members(&self, org_id: &OrgId) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query_as::<_, MemberRow>(
            "SELECT m.user_id, u.username, m.role FROM organization_members m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 ORDER BY u.username",
        )
        .bind(org_id)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(Member::try_from).collect()
    }
}
