//! Every grant is one transaction: a write that fails part-way changes nothing, so the same
//! request can be sent again; and nothing is consumed by a request that fails its checks.

use serde_json::Value;

use crate::common::flow::REDIRECT_URI;
use crate::common::{Backend, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    a_refresh_that_fails_part_way_changes_nothing,
    a_code_exchange_that_fails_part_way_changes_nothing,
    a_refused_code_exchange_consumes_nothing,
    a_used_code_replayed_without_proof_revokes_nothing,
);

async fn tokens(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

/// Makes every INSERT into `table` fail from now on, as a full disk would (on PostgreSQL
/// with the disk-full SQLSTATE; SQLite triggers can only abort).
async fn fail_inserts_into(env: &TestEnv, table: &str) {
    let pool = env.db.pool().await;
    let statements = match env.db.postgres_name() {
        Some(_) => vec![
            "CREATE OR REPLACE FUNCTION fail_insert() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'no space left (test)' USING ERRCODE = 'disk_full'; END $$ \
             LANGUAGE plpgsql"
                .to_owned(),
            format!(
                "CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} FOR EACH ROW \
                 EXECUTE FUNCTION fail_insert()"
            ),
        ],
        None => vec![format!(
            "CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'no space left (test)'); END"
        )],
    };
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn allow_inserts_into(env: &TestEnv, table: &str) {
    let pool = env.db.pool().await;
    let sql = match env.db.postgres_name() {
        Some(_) => format!("DROP TRIGGER fail_{table} ON {table}"),
        None => format!("DROP TRIGGER fail_{table}"),
    };
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// A failed write is a server-side failure: 503 on PostgreSQL's disk-full error; on SQLite,
/// whose test trigger can only raise a constraint error, at least a 5xx.
async fn assert_failed_on_the_server(env: &TestEnv, response: reqwest::Response) {
    let (status, code) = error(response).await;
    if env.db.postgres_name().is_some() {
        assert_eq!(
            (status, code.as_str()),
            (503, "temporarily_unavailable"),
            "{}",
            env.server.logs()
        );
    } else {
        assert!(status >= 500, "{status} {code}");
    }
}

/// Strict reuse detection: a retry could not be told from reuse if anything had committed.
const STRICT: [&str; 2] = ["--refresh-retry-window-secs", "0"];

async fn a_refresh_that_fails_part_way_changes_nothing(backend: Backend) {
    let env = TestEnv::start_with(backend, &STRICT).await;
    env.create_user("pia").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "pia", "read").await;
    let first = tokens(env.redeem(&client, &code, &verifier).await).await;
    let r1 = first["refresh_token"].as_str().unwrap();

    // The rotation and the new refresh token are written; recording the access token fails.
    fail_inserts_into(&env, "access_tokens").await;
    assert_failed_on_the_server(&env, env.refresh(&client, r1, None).await).await;
    allow_inserts_into(&env, "access_tokens").await;

    // The same request again: not reuse, since nothing was used up.
    let second = tokens(env.refresh(&client, r1, None).await).await;
    tokens(
        env.refresh(&client, second["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
}

async fn a_code_exchange_that_fails_part_way_changes_nothing(backend: Backend) {
    let env = TestEnv::start_with(backend, &STRICT).await;
    env.create_user("quinn").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "quinn", "read").await;

    // The code is marked used and the access token recorded; the refresh token fails.
    fail_inserts_into(&env, "refresh_tokens").await;
    assert_failed_on_the_server(&env, env.redeem(&client, &code, &verifier).await).await;
    allow_inserts_into(&env, "refresh_tokens").await;

    let first = tokens(env.redeem(&client, &code, &verifier).await).await;
    tokens(
        env.refresh(&client, first["refresh_token"].as_str().unwrap(), None)
            .await,
    )
    .await;
}

async fn a_refused_code_exchange_consumes_nothing(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("rosa").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "rosa", "read").await;
    let redeem_with = |extra: (&'static str, &'static str)| {
        let form = vec![
            ("grant_type", "authorization_code"),
            ("client_id", client.id.as_str()),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
            ("redirect_uri", REDIRECT_URI),
            extra,
        ];
        let env = &env;
        async move { env.token(None, &form).await }
    };
    // RFC 8707: a resource this client may not ask for.
    assert_eq!(
        error(redeem_with(("resource", "https://not-allowed.example")).await).await,
        (400, "invalid_target".into())
    );
    assert_eq!(
        error(redeem_with(("resource", "not a url")).await).await,
        (400, "invalid_target".into())
    );
    tokens(redeem_with(("state", "ignored")).await).await;
}

async fn a_used_code_replayed_without_proof_revokes_nothing(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("sven").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "sven", "read").await;
    let first = tokens(env.redeem(&client, &code, &verifier).await).await;
    let refresh = first["refresh_token"].as_str().unwrap();

    // Someone who saw the used code, but not the verifier, cannot end the user's grant.
    let (other_verifier, _) = crate::common::flow::pkce_pair();
    assert_eq!(
        error(env.redeem(&client, &code, &other_verifier).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        env.introspect(first["access_token"].as_str().unwrap())
            .await["active"],
        true
    );

    // The holder of the verifier replaying it is reuse: the grant goes (RFC 6749 §4.1.2).
    assert_eq!(
        error(env.redeem(&client, &code, &verifier).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error(env.refresh(&client, refresh, None).await).await,
        (400, "invalid_grant".into())
    );
}
