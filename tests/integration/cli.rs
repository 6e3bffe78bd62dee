//! The command line: the same database and keys as a running server.

use serde_json::Value;

use crate::common::{Backend, Client, TestEnv, cli, cli_json};
use crate::on_both_databases;

on_both_databases!(
    cli_clients_work_on_a_running_server,
    cli_refuses_bad_input_clearly
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
        &["api-keys", "create", "--name", "x"],
    ];
    for args in cases {
        let out = cli(&env.db, &env.keys_dir, args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = cli(
        &env.db,
        &env.keys_dir,
        &["--database-url", "mysql://nope", "migrate"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}
