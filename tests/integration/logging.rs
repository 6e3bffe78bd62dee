//! The log filter: PORTCULLIS_LOG, else RUST_LOG, else `info,sqlx=warn`.

use crate::common::{Backend, Server, TestDb};

/// sqlx logs every statement at debug level under this target.
const STATEMENT_LOG: &str = "sqlx::query";

/// A server started with `env`, asked one question over HTTP, then stopped; its logs.
async fn logs_of_a_server_with(env: &[(&str, Option<&str>)]) -> String {
    let db = TestDb::new(Backend::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with_env(&db, keys.path(), &[], env);
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let logs = server.logs();
    assert!(server.stop().success());
    logs
}

#[tokio::test]
async fn rust_log_is_honoured_and_portcullis_log_wins_over_it() {
    let debug_sqlx = Some("info,sqlx=debug");

    let logs = logs_of_a_server_with(&[("PORTCULLIS_LOG", None), ("RUST_LOG", debug_sqlx)]).await;
    assert!(logs.contains(STATEMENT_LOG), "RUST_LOG ignored:\n{logs}");

    let logs =
        logs_of_a_server_with(&[("PORTCULLIS_LOG", Some("info")), ("RUST_LOG", debug_sqlx)]).await;
    assert!(!logs.contains(STATEMENT_LOG), "RUST_LOG won:\n{logs}");

    let logs = logs_of_a_server_with(&[("PORTCULLIS_LOG", None), ("RUST_LOG", None)]).await;
    assert!(
        !logs.contains(STATEMENT_LOG),
        "the default logs statements:\n{logs}"
    );

    // A filter that does not parse is said so, and the default applies.
    let logs = logs_of_a_server_with(&[
        ("PORTCULLIS_LOG", Some("sqlx=loud")),
        ("RUST_LOG", debug_sqlx),
    ])
    .await;
    assert!(
        logs.contains("PORTCULLIS_LOG is not a valid log filter"),
        "{logs}"
    );
    assert!(!logs.contains(STATEMENT_LOG), "{logs}");
}
