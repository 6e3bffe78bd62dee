//! Every grant is one transaction: a write that fails part-way changes nothing, so the same
//! request can be sent again; and nothing is consumed by a request that fails its checks.

use serde_json::Value;

use crate::common::flow::{REDIRECT_URI, error, tokens};
use crate::common::{Backend, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    a_refresh_that_fails_part_way_changes_nothing,
    a_code_exchange_that_fails_part_way_changes_nothing,
    a_refused_code_exchange_consumes_nothing,
    a_used_code_replayed_without_proof_revokes_nothing,
    kill_9_under_refresh_load_destroys_no_family,
);

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

/// `kill -9` under refresh load: whatever each family's last request had done when the server
/// died (nothing, or everything), sending it again to another server carries the family on.
/// Before grants were transactions, each kill destroyed several families.
async fn kill_9_under_refresh_load_destroys_no_family(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("xena").await;
    let client = env.spa_client().await;
    let mut first_tokens = Vec::new();
    for _ in 0..12 {
        let (code, verifier) = env.authorization_code(&client, "xena", "read").await;
        let first = tokens(env.redeem(&client, &code, &verifier).await).await;
        first_tokens.push(first["refresh_token"].as_str().unwrap().to_owned());
    }
    let env = &env;
    let mut last_sent: Vec<(String, usize)> = first_tokens.into_iter().map(|t| (t, 0)).collect();
    // Three servers die in turn; each family's first request to the next one is the resend.
    for _ in 0..3 {
        let victim = env.start_replica();
        let url = victim.url("/token");
        let families = last_sent.into_iter().map(|(token, refreshed)| {
            refresh_until_unanswered(&env.http, url.clone(), client.id.clone(), token, refreshed)
        });
        let kill = async move {
            tokio::time::sleep(std::time::Duration::from_millis(700)).await;
            drop(victim); // SIGKILL, then wait
        };
        last_sent = tokio::join!(futures::future::join_all(families), kill).0;
    }

    let refreshed: usize = last_sent.iter().map(|(_, n)| n).sum();
    assert!(
        refreshed > 0,
        "the families were refreshing when the servers died"
    );
    for (token, _) in &last_sent {
        tokens(env.refresh(&client, token, None).await).await;
    }
}

/// Refreshes at `url` until a request goes unanswered; returns the token that request carried
/// and how many refreshes succeeded in all.
async fn refresh_until_unanswered(
    http: &reqwest::Client,
    url: String,
    client_id: String,
    mut token: String,
    mut refreshed: usize,
) -> (String, usize) {
    loop {
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", token.as_str()),
        ];
        let answer = match http.post(&url).form(&form).send().await {
            Ok(response) if response.status() == 200 => response.json::<Value>().await,
            Ok(response) => panic!("{}: {}", response.status(), response.text().await.unwrap()),
            Err(_) => return (token, refreshed),
        };
        match answer {
            Ok(answer) => token = answer["refresh_token"].as_str().unwrap().to_owned(),
            Err(_) => return (token, refreshed),
        }
        refreshed += 1;
    }
}

/// A transaction stranded on PostgreSQL (its client gone without a word) holding a refresh
/// token's row: a refresh of that token waits at most the lock timeout, then is a 503, and
/// works once the row is free. It never hangs.
#[tokio::test]
async fn a_row_held_by_a_stranded_transaction_is_a_503_not_a_hang() {
    let env = TestEnv::start(Backend::Postgres).await;
    env.create_user("yves").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "yves", "read").await;
    let first = tokens(env.redeem(&client, &code, &verifier).await).await;
    let refresh = first["refresh_token"].as_str().unwrap();

    let pool = env.db.pool().await;
    let mut stranded = pool.begin().await.unwrap();
    sqlx::query("SELECT token_hash FROM refresh_tokens FOR UPDATE")
        .execute(&mut *stranded)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        env.refresh(&client, refresh, None),
    )
    .await
    .expect("the refresh is answered, not left hanging");
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert!(
        waited < std::time::Duration::from_secs(3),
        "waited {waited:?}"
    );
    stranded.rollback().await.unwrap();
    pool.close().await;
    tokens(env.refresh(&client, refresh, None).await).await;
}
