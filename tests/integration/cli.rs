//! The command line: the same database and keys as a running server.

use serde_json::Value;

use crate::common::{Backend, Client, TestEnv, cli, cli_json};
use crate::on_both_databases;

on_both_databases!(
    cli_clients_work_on_a_running_server,
    cli_refuses_bad_input_clearly,
    cli_manages_api_keys_and_organizations
);

async fn cli_clients_work_on_a_running_server(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "clients",
            "create",
            "--name",
            "cli backend",
            "--grant-type",
            "client_credentials",
            "--scope",
            "a b",
            "--json",
        ],
    );
    assert_eq!(created["client_name"], "cli backend");
    assert_eq!(created["scope"], "a b");
    assert_eq!(created["resource_server"], false);
    let resource_server = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "clients",
            "create",
            "--name",
            "api",
            "--grant-type",
            "client_credentials",
            "--resource-server",
            "--json",
        ],
    );
    assert_eq!(resource_server["resource_server"], true);
    let client = Client::from_created(&created);
    let response = env
        .token(
            Some(&client),
            &[("grant_type", "client_credentials"), ("scope", "a")],
        )
        .await;
    assert_eq!(response.status(), 200);

    // Admin keys from the CLI: {"id","key"}, usable at once.
    let key = cli_json(
        &env.db,
        &env.keys_dir,
        &["api-keys", "create", "--name", "ops", "--admin", "--json"],
    );
    assert!(key["id"].as_str().unwrap().starts_with("key_"));
    let secret = key["key"].as_str().unwrap();
    assert!(secret.starts_with("pc_live_"));
    let response = env
        .http
        .get(env.url("/admin/clients"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let listed: Value = response.json().await.unwrap();
    assert!(listed.to_string().contains(&client.id));

    let out = cli(&env.db, &env.keys_dir, &["migrate"]);
    assert!(out.status.success());

    // Secrets never reach the server's log.
    let logs = env.server.logs();
    assert!(
        !logs.contains(&client.secret) && !logs.contains(secret) && !logs.contains(&env.admin_key)
    );
}

async fn cli_refuses_bad_input_clearly(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let cases: [&[&str]; 4] = [
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--public",
            "--grant-type",
            "client_credentials",
        ],
        &[
            "clients",
            "create",
            "--name",
            "x",
            "--grant-type",
            "password",
        ],
        &["api-keys", "create", "--name", "x", "--user", "nobody"],
    ];
    for args in cases {
        let out = cli(&env.db, &env.keys_dir, args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Not a database this server can use; in memory, no other process could reach it.
    for url in [
        "mysql://nope",
        "sqlite::memory:",
        "sqlite://file.db?mode=memory",
    ] {
        let out = cli(&env.db, &env.keys_dir, &["--database-url", url, "migrate"]);
        assert!(!out.status.success(), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("unsupported database URL"),
            "{url}: {stderr}"
        );
    }
}

async fn cli_manages_api_keys_and_organizations(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let exchange = |key: String| {
        env.http
            .post(env.url("/token"))
            .basic_auth(key, Some(""))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let service = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "api-keys",
            "create",
            "--name",
            "nightly job",
            "--scope",
            "read",
            "--json",
        ],
    );
    assert_eq!(service["kind"], "service");
    let key = service["key"].as_str().unwrap().to_owned();
    assert_eq!(exchange(key.clone()).await.unwrap().status(), 200);

    let listed = cli_json(&env.db, &env.keys_dir, &["api-keys", "list", "--json"]);
    let listed_text = listed.to_string();
    assert!(listed_text.contains(service["id"].as_str().unwrap()));
    assert!(!listed_text.contains(&key), "the list never shows a secret");

    let out = cli(
        &env.db,
        &env.keys_dir,
        &["api-keys", "revoke", service["id"].as_str().unwrap()],
    );
    assert!(out.status.success());
    assert_eq!(exchange(key).await.unwrap().status(), 401);

    env.create_user("dora").await;
    let org = cli_json(
        &env.db,
        &env.keys_dir,
        &["orgs", "create", "--name", "Initech", "--json"],
    );
    let org_id = org["id"].as_str().unwrap();
    let out = cli(
        &env.db,
        &env.keys_dir,
        &["orgs", "add-member", org_id, "dora", "--role", "owner"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let org_key = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "api-keys",
            "create",
            "--name",
            "initech ci",
            "--org",
            org_id,
            "--json",
        ],
    );
    assert_eq!(org_key["kind"], "organization");
    let personal = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "api-keys", "create", "--name", "dora's", "--user", "dora", "--json",
        ],
    );
    assert_eq!(personal["kind"], "personal");
    assert_eq!(
        exchange(org_key["key"].as_str().unwrap().to_owned())
            .await
            .unwrap()
            .status(),
        200
    );

    assert!(
        cli(
            &env.db,
            &env.keys_dir,
            &["orgs", "remove-member", org_id, "dora"]
        )
        .status
        .success()
    );
    assert!(
        !cli(
            &env.db,
            &env.keys_dir,
            &["orgs", "remove-member", org_id, "dora"]
        )
        .status
        .success()
    );
    assert!(
        cli(&env.db, &env.keys_dir, &["orgs", "delete", org_id])
            .status
            .success()
    );
    assert_eq!(
        exchange(org_key["key"].as_str().unwrap().to_owned())
            .await
            .unwrap()
            .status(),
        401
    );
}
