//! The command line: the same database and keys as a running server.

use std::process::{Command, Output};

use serde_json::Value;

use crate::common::flow::{PASSWORD, browser};
use crate::common::{BIN, Backend, Client, TestDb, TestEnv, cli, cli_json};
use crate::on_both_databases;

on_both_databases!(
    cli_clients_work_on_a_running_server,
    cli_refuses_bad_input_clearly,
    cli_manages_api_keys_and_organizations,
    cli_manages_clients,
    cli_manages_users
);

/// Runs a CLI command with `input` on its standard input.
fn cli_with_input(env: &TestEnv, args: &[&str], input: &str) -> Output {
    crate::common::cli_with_input(&env.db, &env.keys_dir, args, input)
}

fn text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

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
        let out = cli(&env.db, &env.keys_dir, &["migrate", "--database-url", url]);
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

async fn cli_manages_clients(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let run = |args: &[&str]| cli(&env.db, &env.keys_dir, args);
    assert!(text(&run(&["clients", "list"])).starts_with("no clients yet"));

    let created = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "clients",
            "create",
            "--name",
            "Billing",
            "--grant-type",
            "client_credentials",
            "--scope",
            "a b",
            "--json",
        ],
    );
    let client = Client::from_created(&created);
    let listed = text(&run(&["clients", "list"]));
    let mut lines = listed.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("CLIENT_ID") && header.contains("CREATED"),
        "{listed}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&client.id) && row.contains("Billing"),
        "{listed}"
    );
    assert!(
        row.contains("client_credentials") && row.ends_with(" UTC"),
        "{listed}"
    );
    let listed = cli_json(&env.db, &env.keys_dir, &["clients", "list", "--json"]);
    assert_eq!(listed["clients"][0]["client_id"], client.id.as_str());
    assert!(!listed.to_string().contains(&client.secret));
    let shown = text(&run(&["clients", "show", &client.id]));
    assert!(
        shown.contains("Billing") && shown.contains("client_secret_basic"),
        "{shown}"
    );

    // Narrowing the scope takes effect at the next request.
    let updated = cli_json(
        &env.db,
        &env.keys_dir,
        &["clients", "update", &client.id, "--scope", "a", "--json"],
    );
    assert_eq!(updated["scope"], "a");
    assert_eq!(updated["client_name"], "Billing", "what is not given stays");
    let wider = [("grant_type", "client_credentials"), ("scope", "b")];
    assert_eq!(env.token(Some(&client), &wider).await.status(), 400);

    // A new secret works at once, and the old one no longer does.
    let rotated = cli_json(
        &env.db,
        &env.keys_dir,
        &["clients", "rotate-secret", &client.id, "--json"],
    );
    let renewed = Client {
        secret: rotated["client_secret"].as_str().unwrap().to_owned(),
        ..client.clone()
    };
    let grant = [("grant_type", "client_credentials")];
    assert_eq!(env.token(Some(&client), &grant).await.status(), 401);
    assert_eq!(env.token(Some(&renewed), &grant).await.status(), 200);

    let deleted = cli_json(
        &env.db,
        &env.keys_dir,
        &["--json", "clients", "delete", &client.id],
    );
    assert_eq!(deleted["deleted"], client.id.as_str());
    assert_eq!(env.token(Some(&renewed), &grant).await.status(), 401);
    assert!(stderr(&run(&["clients", "show", &client.id])).contains("no client"));
    assert!(stderr(&run(&["clients", "delete", &client.id])).contains("no client"));
}

/// Whether `username` can sign in with `password` on the login page.
async fn signs_in(env: &TestEnv, username: &str, password: &str) -> bool {
    let browser = browser();
    let page = env.page(&browser, "/login").await;
    let csrf = crate::common::flow::hidden_field(&page, "csrf");
    browser
        .post(env.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    env.page(&browser, "/login")
        .await
        .contains("You are signed in")
}

async fn cli_manages_users(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let run = |args: &[&str]| cli(&env.db, &env.keys_dir, args);
    assert!(text(&run(&["users", "list"])).starts_with("no users yet"));

    let created = cli_with_input(
        &env,
        &["users", "create", "--username", "alice", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    assert!(text(&created).contains("created user alice"));
    let listed = text(&run(&["users", "list"]));
    assert!(
        listed.starts_with("ID") && listed.contains("alice") && listed.contains("active"),
        "{listed}"
    );
    let shown = cli_json(
        &env.db,
        &env.keys_dir,
        &["users", "show", "alice", "--json"],
    );
    assert_eq!(shown["username"], "alice");
    assert!(signs_in(&env, "alice", PASSWORD).await);

    let new_password = "a much newer passphrase";
    let set = cli_with_input(
        &env,
        &["users", "set-password", "alice", "--password-stdin"],
        &format!("{new_password}\n"),
    );
    assert!(text(&set).contains("new password"));
    assert!(!signs_in(&env, "alice", PASSWORD).await);
    assert!(signs_in(&env, "alice", new_password).await);
    let too_short = cli_with_input(
        &env,
        &["users", "set-password", "alice", "--password-stdin"],
        "short\n",
    );
    assert!(stderr(&too_short).contains("at least"));

    // --json on any command: what changed, for scripts.
    let disabled = cli_json(
        &env.db,
        &env.keys_dir,
        &["users", "disable", "alice", "--json"],
    );
    assert!(disabled["disabled_at"].is_i64(), "{disabled}");
    assert!(text(&run(&["users", "show", "alice"])).contains("disabled"));
    assert!(!signs_in(&env, "alice", new_password).await);
    text(&run(&["users", "enable", "alice"]));
    assert!(signs_in(&env, "alice", new_password).await);

    text(&run(&["users", "delete", "alice"]));
    assert!(stderr(&run(&["users", "show", "alice"])).contains("no user named \"alice\""));
    assert!(!signs_in(&env, "alice", new_password).await);
}

/// Only `serve` and `migrate` make a database: any other command run in the wrong place says
/// where it looked, instead of making an empty one and printing credentials no server knows.
#[tokio::test]
async fn cli_refuses_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let db = TestDb::existing(format!("sqlite://{}", path.display()));
    let keys = dir.path().join("keys");
    for args in [
        &["clients", "list"][..],
        &["api-keys", "create", "--name", "ops", "--admin"],
        &["users", "list"],
        &["orgs", "list"],
    ] {
        let message = stderr(&cli(&db, &keys, args));
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("--database-url"), "{message}");
        assert!(!path.exists(), "{args:?} made a database");
    }
    let message = stderr(&cli(&db, &keys, &["signing-keys", "list"]));
    assert!(message.contains("--keys-dir"), "{message}");
    assert!(!keys.exists());
    // A rotation is recorded in the audit log, so without the database none is made.
    std::fs::create_dir(&keys).unwrap();
    let message = stderr(&cli(&db, &keys, &["signing-keys", "rotate", "--now"]));
    assert!(message.contains("--database-url"), "{message}");
    assert_eq!(
        std::fs::read_dir(&keys).unwrap().count(),
        0,
        "a key was made"
    );
    std::fs::remove_dir(&keys).unwrap();

    assert!(text(&cli(&db, &keys, &["migrate"])).contains("migrations applied"));
    assert!(text(&cli(&db, &keys, &["clients", "list"])).starts_with("no clients yet"));
}

/// Errors say what is wrong and what to do.
#[tokio::test]
async fn cli_errors_name_the_cause_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let nowhere = TestDb::existing("postgres://postgres@127.0.0.1:1/portcullis".into());
    let message = stderr(&cli(&nowhere, &keys, &["users", "list"]));
    assert!(
        message.contains("connection refused at 127.0.0.1:1"),
        "{message}"
    );

    let mut missing = url::Url::parse(&crate::common::postgres_admin_url()).unwrap();
    missing.set_path("pc_no_such_database");
    let missing = TestDb::existing(missing.to_string());
    let message = stderr(&cli(&missing, &keys, &["migrate"]));
    assert!(message.contains("createdb"), "{message}");
    assert!(message.contains("pc_no_such_database"), "{message}");

    let sqlite = TestDb::existing(format!("sqlite://{}", dir.path().join("p.db").display()));
    let message = stderr(&cli(&sqlite, &keys, &["serve", "--bind", "localhost:8080"]));
    assert!(
        message.contains("127.0.0.1:8080") && message.contains("0.0.0.0:8080"),
        "{message}"
    );
}

#[test]
fn cli_prints_shell_completions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = text(&out);
        assert!(script.contains("rotate-secret"), "{shell}: {script}");
    }
}
