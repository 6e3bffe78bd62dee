//! Users through the admin API and the CLI.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, TestEnv, cli};
use crate::on_both_databases;

on_both_databases!(
    users_can_be_managed_through_the_admin_api,
    users_can_be_managed_from_the_cli
);

async fn users_can_be_managed_through_the_admin_api(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let create = |body: Value| env.admin(Method::POST, "/admin/users").json(&body).send();
    let response = create(
        json!({"username": "pat", "email": "pat@example.com", "password": "long enough pw"}),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let user: Value = response.json().await.unwrap();
    assert!(user["id"].as_str().unwrap().starts_with("usr_"));
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let id = user["id"].as_str().unwrap();

    let cases = [
        (
            json!({"username": "pat", "password": "long enough pw"}),
            409,
            "CONFLICT",
        ),
        (
            json!({"username": "x", "password": "short"}),
            422,
            "INVALID_INPUT",
        ),
        (
            json!({"username": "bad name", "password": "long enough pw"}),
            422,
            "INVALID_INPUT",
        ),
        (
            json!({"username": "q", "email": "not-an-email", "password": "long enough pw"}),
            422,
            "INVALID_INPUT",
        ),
        (json!({"username": "q"}), 422, "INVALID_INPUT"),
    ];
    for (body, status, code) in cases {
        let response = create(body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], code, "{body}");
    }

    let list: Value = env
        .admin(Method::GET, "/admin/users")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["users"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("argon2"));

    let patched: Value = env
        .admin(Method::PATCH, &format!("/admin/users/{id}"))
        .json(&json!({"email": null, "disabled": true, "password": "a new long password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(patched["email"].is_null());
    assert!(patched["disabled_at"].is_i64());
    let shown: Value = env
        .admin(Method::GET, &format!("/admin/users/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, patched);

    assert_eq!(
        env.admin(Method::DELETE, &format!("/admin/users/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        env.admin(Method::GET, &format!("/admin/users/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

async fn users_can_be_managed_from_the_cli(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let out = crate::common::cli_with_input(
        &env.db,
        &env.keys_dir,
        &[
            "users",
            "create",
            "--username",
            "quinn",
            "--email",
            "q@example.com",
            "--password-stdin",
            "--json",
        ],
        "quinn's password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(user["username"], "quinn");

    let listed = cli(&env.db, &env.keys_dir, &["users", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["users"][0]["username"], "quinn");

    let out = cli(&env.db, &env.keys_dir, &["users", "disable", "quinn"]);
    assert!(out.status.success());
    let shown: Value = env
        .admin(
            Method::GET,
            &format!("/admin/users/{}", user["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(shown["disabled_at"].is_i64());
    assert!(
        !cli(&env.db, &env.keys_dir, &["users", "disable", "nobody"])
            .status
            .success()
    );
}
