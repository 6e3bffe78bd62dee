//! The audit log: every security-relevant change recorded with who, what and from where, in
//! the change's own transaction; listed with filters and a cursor; never a secret; pruned.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::flow::browser;
use crate::common::{Backend, TestEnv, cli, cli_json};
use crate::on_both_databases;

on_both_databases!(
    admin_changes_are_recorded_with_who_and_from_where,
    events_are_filtered_and_paged,
    sign_ins_consents_and_reuse_are_recorded,
    an_event_is_written_only_with_its_change,
    events_past_their_retention_are_pruned,
);

async fn events(env: &TestEnv, query: &str) -> Value {
    env.admin_get(&format!("/admin/audit-events{query}")).await
}

fn actions(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// An admin request as a particular client would send it.
fn admin(env: &TestEnv, method: Method, path: &str) -> reqwest::RequestBuilder {
    env.admin(method, path)
        .header("user-agent", "ops-console/2.1")
        .header("x-request-id", "req-audit-1")
}

async fn admin_changes_are_recorded_with_who_and_from_where(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let key: Value = admin(&env, Method::POST, "/admin/api-keys")
        .json(&json!({"name": "billing", "scope": "read"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = key["id"].as_str().unwrap();
    let secret = key["key"].as_str().unwrap();
    let status = |r: reqwest::Response| r.status().as_u16();
    let patch = admin(&env, Method::PATCH, &format!("/admin/api-keys/{key_id}"))
        .json(&json!({"name": "billing v2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status(patch), 200);
    let revoke = admin(&env, Method::DELETE, &format!("/admin/api-keys/{key_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(revoke), 204);

    let client = env
        .create_client(json!({"grant_types": ["client_credentials"]}))
        .await;
    let client_id = client["client_id"].as_str().unwrap();
    let client_secret = client["client_secret"].as_str().unwrap();
    let rotated: Value = admin(
        &env,
        Method::POST,
        &format!("/admin/clients/{client_id}/secret"),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let rotated_secret = rotated["client_secret"].as_str().unwrap();
    let deleted = admin(&env, Method::DELETE, &format!("/admin/clients/{client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(deleted), 204);

    let user_id = env.create_user("auditee").await;
    for change in [
        json!({"disabled": true}),
        json!({"disabled": false}),
        json!({"password": "a new password 42"}),
    ] {
        let response = admin(&env, Method::PATCH, &format!("/admin/users/{user_id}"))
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(status(response), 200);
    }
    let org: Value = admin(&env, Method::POST, "/admin/orgs")
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org_id = org["id"].as_str().unwrap();
    let added = admin(&env, Method::POST, &format!("/admin/orgs/{org_id}/members"))
        .json(&json!({"user_id": user_id, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success());
    let removed = admin(
        &env,
        Method::DELETE,
        &format!("/admin/orgs/{org_id}/members/{user_id}"),
    )
    .send()
    .await
    .unwrap();
    assert!(removed.status().is_success());
    let gone = admin(&env, Method::DELETE, &format!("/admin/users/{user_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(status(gone), 204);
    let rotated_key = admin(&env, Method::POST, "/admin/signing-keys/rotate")
        .send()
        .await
        .unwrap();
    assert_eq!(status(rotated_key), 201);

    let page = events(&env, "?limit=200").await;
    let mut recorded = actions(&page);
    recorded.reverse();
    assert_eq!(
        recorded,
        [
            "api_key.created", // the test's admin key, made as the CLI makes one
            "api_key.created",
            "api_key.updated",
            "api_key.revoked",
            "client.created",
            "client.secret_rotated",
            "client.deleted",
            "user.created",
            "user.disabled",
            "user.enabled",
            "user.password_reset",
            "organization.created",
            "organization.member_added",
            "organization.member_removed",
            "user.deleted",
            "signing_key.rotated",
        ]
    );
    let all = page["events"].as_array().unwrap();
    let (made_by_cli, all) = all.split_last().unwrap();
    assert_eq!(made_by_cli["actor"], "cli");
    assert_eq!(made_by_cli["ip"], Value::Null);
    // Every change after that was made with that key, and names it.
    let admin_key_id = made_by_cli["target"].as_str().unwrap();
    assert!(admin_key_id.starts_with("key_"), "{admin_key_id}");
    for event in all {
        assert_eq!(event["actor"], admin_key_id, "{event}");
        assert_eq!(event["ip"], "127.0.0.1");
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        assert!(event["at"].as_str().unwrap().ends_with('Z'));
        assert!(event["details"].is_object());
    }
    // Those sent by ops-console carry what it sent.
    let revoked = all
        .iter()
        .find(|e| e["action"] == "api_key.revoked")
        .unwrap();
    assert_eq!(revoked["target"], key_id);
    assert_eq!(revoked["user_agent"], "ops-console/2.1");
    assert_eq!(revoked["request_id"], "req-audit-1");
    let updated = all
        .iter()
        .find(|e| e["action"] == "api_key.updated")
        .unwrap();
    assert_eq!(updated["details"]["changed"], json!(["name"]));
    let member = all
        .iter()
        .find(|e| e["action"] == "organization.member_added")
        .unwrap();
    assert_eq!(
        (
            member["target"].as_str(),
            member["details"]["user_id"].as_str()
        ),
        (Some(org_id), Some(user_id.as_str()))
    );
    // Never a secret, anywhere in the log.
    let text = page.to_string();
    for secret in [secret, client_secret, rotated_secret, "a new password 42"] {
        assert!(!text.contains(secret), "a secret is in the audit log");
    }

    // The CLI is an actor too, and reads the log.
    cli(
        &env.db,
        &env.keys_dir,
        &["orgs", "create", "--name", "From the shell"],
    );
    let listed = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "audit",
            "list",
            "--action",
            "organization.created",
            "--json",
        ],
    );
    let by_cli: Vec<&Value> = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "cli")
        .collect();
    assert_eq!(by_cli.len(), 1, "{listed}");
    assert_eq!(by_cli[0]["ip"], Value::Null);
    let table = cli(&env.db, &env.keys_dir, &["audit", "list", "--limit", "3"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.starts_with("AT"), "{table}");
    assert!(table.contains("organization.created"), "{table}");
}

async fn events_are_filtered_and_paged(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let key = env.create_api_key(json!({"name": format!("k{n}")})).await;
        ids.push(key["id"].as_str().unwrap().to_owned());
    }
    env.revoke_api_key(&ids[2]).await;

    let revoked = events(&env, "?action=api_key.revoked").await;
    assert_eq!(actions(&revoked), ["api_key.revoked"]);
    let about = events(&env, &format!("?target={}", ids[2])).await;
    assert_eq!(actions(&about), ["api_key.revoked", "api_key.created"]);
    // The test's admin key was made as the CLI makes one.
    let by_cli = events(&env, "?actor=cli").await;
    assert_eq!(actions(&by_cli), ["api_key.created"]);
    let far_future = events(&env, "?since=4102444800").await;
    assert_eq!(actions(&far_future), Vec::<String>::new());
    let until_now = events(&env, "?until=4102444800&action=api_key.created").await;
    assert_eq!(actions(&until_now).len(), 6);

    // Pages of two cover all seven, newest first, without a repeat.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = events(&env, &query).await;
        for event in page["events"].as_array().unwrap() {
            seen.push(event["id"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(cursor) => query = format!("?limit=2&after={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 7);
    let newest_first = events(&env, "?limit=7").await;
    let newest: Vec<&str> = newest_first["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(seen, newest);

    for bad in [
        "?action=api_key.exploded",
        "?after=nonsense",
        "?since=yesterday",
        "?limit=0",
    ] {
        let response = env
            .admin(Method::GET, &format!("/admin/audit-events{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "INVALID_INPUT", "{bad}");
    }
    let unauthenticated = env
        .http
        .get(env.url("/admin/audit-events"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

async fn sign_ins_consents_and_reuse_are_recorded(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let user_id = env.create_user("dora").await;
    let client = env.spa_client().await;
    let (url, _) = env.authorize_url(&client, "read", "s");
    let failed = env
        .sign_in(&browser(), &url, "dora", "wrong password")
        .await;
    assert_eq!(failed.status(), 401);
    let nobody = env
        .sign_in(&browser(), &url, "nobody-at-all", "whatever")
        .await;
    assert_eq!(nobody.status(), 401);

    // Signing in, consenting, and a refresh token presented twice (beyond the retry window).
    let (client, first) = env.first_refresh_token("erin").await;
    let second = crate::common::flow::tokens(env.refresh(&client, &first, None).await).await;
    assert!(second["refresh_token"].is_string());
    env.advance_clock(60);
    let replay = env.refresh(&client, &first, None).await;
    assert_eq!(replay.status(), 400);

    // An operator withdraws erin's consent: her grants to the app end with it.
    let erin: Value = env.admin_get("/admin/users?limit=200").await;
    let erin_id = erin["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "erin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let consents_path = format!("/admin/users/{erin_id}/consents");
    let listed: Value = env.admin_get(&consents_path).await;
    assert_eq!(
        listed["consents"][0]["client_id"],
        client.id.as_str(),
        "{listed}"
    );
    assert_eq!(listed["consents"][0]["scope"], "read write");
    let one = format!("{consents_path}/{}", client.id);
    let withdrawn = env.admin(Method::DELETE, &one).send().await.unwrap();
    assert_eq!(withdrawn.status(), 204);
    let again = env.admin(Method::DELETE, &one).send().await.unwrap();
    assert_eq!(again.status(), 404);
    let listed: Value = env.admin_get(&consents_path).await;
    assert_eq!(listed["consents"], json!([]));
    let after = env
        .refresh(&client, second["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(after.status(), 400, "the grant outlived the consent");

    let page = events(&env, "?limit=200").await;
    let all = page["events"].as_array().unwrap();
    let find =
        |action: &str| -> Vec<&Value> { all.iter().filter(|e| e["action"] == action).collect() };
    let failures = find("sign_in.failed");
    assert_eq!(failures.len(), 2, "{page}");
    let against_dora = failures
        .iter()
        .find(|e| e["target"] == user_id.as_str())
        .unwrap();
    assert_eq!(against_dora["actor"], "anonymous");
    assert_eq!(against_dora["details"]["username"], "dora");
    let against_nobody = failures.iter().find(|e| e["target"].is_null()).unwrap();
    assert_eq!(against_nobody["details"]["reason"], "no such user");
    let succeeded = find("sign_in.succeeded");
    assert_eq!(succeeded.len(), 1);
    assert!(succeeded[0]["actor"].as_str().unwrap().starts_with("usr_"));
    let consent = find("consent.granted");
    assert_eq!(consent.len(), 1);
    assert_eq!(consent[0]["target"], client.id.as_str());
    assert_eq!(consent[0]["actor"], succeeded[0]["actor"]);
    let reuse = find("refresh_token.reuse_detected");
    assert_eq!(reuse.len(), 1, "{page}");
    assert_eq!(reuse[0]["actor"], client.id.as_str());
    assert_eq!(reuse[0]["details"]["grant_revoked"], true);
    let withdrawn = find("consent.withdrawn");
    assert_eq!(withdrawn.len(), 1);
    assert_eq!(withdrawn[0]["target"], client.id.as_str());
    assert_eq!(withdrawn[0]["details"]["user_id"], erin_id.as_str());
    assert!(withdrawn[0]["actor"].as_str().unwrap().starts_with("key_"));
    assert!(
        !page.to_string().contains(&first),
        "a refresh token is in the audit log"
    );
}

/// Makes every INSERT into the audit log fail, as a full disk would.
async fn fail_audit_inserts(env: &TestEnv) {
    let pool = env.db.pool().await;
    let statements = match env.db.postgres_name() {
        Some(_) => vec![
            "CREATE OR REPLACE FUNCTION fail_audit() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'no space left (test)' USING ERRCODE = 'disk_full'; END $$ \
             LANGUAGE plpgsql",
            "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events FOR EACH ROW \
             EXECUTE FUNCTION fail_audit()",
        ],
        None => vec![
            "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'no space left (test)'); END",
        ],
    };
    for sql in statements {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

async fn an_event_is_written_only_with_its_change(backend: Backend) {
    let env = TestEnv::start(backend).await;
    // A change that is refused records nothing.
    env.create_user("frank").await;
    let again = env
        .admin(Method::POST, "/admin/users")
        .json(&json!({"username": "frank", "password": "another password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(
        actions(&events(&env, "?action=user.created").await).len(),
        1
    );
    let missing = env
        .admin(Method::DELETE, "/admin/api-keys/key_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        actions(&events(&env, "?action=api_key.revoked").await).len(),
        0
    );

    // And a change whose event cannot be written does not happen: the key stays usable.
    let key = env.create_api_key(json!({"name": "kept"})).await;
    let id = key["id"].as_str().unwrap();
    fail_audit_inserts(&env).await;
    let revoke = env
        .admin(Method::DELETE, &format!("/admin/api-keys/{id}"))
        .send()
        .await
        .unwrap();
    assert!(revoke.status().is_server_error(), "{}", revoke.status());
    let answer = env.introspect(key["key"].as_str().unwrap()).await;
    assert_eq!(
        answer["active"], true,
        "the revocation went through without its event"
    );
    let create = env
        .admin(Method::POST, "/admin/api-keys")
        .json(&json!({"name": "never"}))
        .send()
        .await
        .unwrap();
    assert!(create.status().is_server_error());
    let listed: Value = env.admin_get("/admin/api-keys").await;
    assert!(
        !listed.to_string().contains("\"never\""),
        "a key was made without its event"
    );
}

async fn events_past_their_retention_are_pruned(backend: Backend) {
    let env = TestEnv::start_with(
        backend,
        &["--audit-retention-days", "1", "--prune-interval-secs", "1"],
    )
    .await;
    env.create_api_key(json!({"name": "old"})).await;
    // With the admin key's own.
    assert_eq!(actions(&events(&env, "").await).len(), 2);
    env.advance_clock(2 * 86_400);
    env.create_api_key(json!({"name": "new"})).await;
    let started = std::time::Instant::now();
    loop {
        let page = events(&env, "").await;
        if actions(&page).len() == 1 {
            assert_eq!(page["events"][0]["details"]["name"], "new");
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
