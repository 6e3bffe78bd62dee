//! Slow and stuck clients cannot hold the server: header, body and idle timeouts, the connection
//! cap, refusals before the body is read, and shutdown with a deadline. Raw TCP, since an HTTP
//! client library will not send half a request.
//!
//! These are about connections, not the database, so they run on SQLite only.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Backend, Server, TestDb, TestEnv};

/// A server with the given flags on a fresh SQLite database (kept alive with it).
async fn server_with(args: &[&str]) -> (Server, TestDb, tempfile::TempDir) {
    let db = TestDb::new(Backend::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start(&db, keys.path(), args);
    (server, db, keys)
}

async fn connect(server: &Server) -> TcpStream {
    TcpStream::connect(server.address()).await.unwrap()
}

/// Reads until the server closes the connection, failing if it is still open after `limit`.
/// Returns what the server sent and how long it took.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!(
                "the connection is still open after {limit:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    (String::from_utf8(received).unwrap(), started.elapsed())
}

/// One HTTP/1.1 response: status, lower-cased head, body. Reads no further than its body.
async fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let head = head.to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if body.len() >= length {
                let status = head[9..12].parse().unwrap();
                return (status, head, body[..length].to_owned());
            }
        }
        let n = tokio::time::timeout_at(deadline.into(), stream.read(&mut buffer))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(
            n > 0,
            "closed before a whole response: {:?}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buffer[..n]);
    }
}

fn assert_invalid_request(status: u16, head: &str, body: &str, expected_status: u16) {
    assert_eq!(status, expected_status, "{head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

fn assert_between(elapsed: Duration, low_secs: f64, high_secs: f64) {
    let secs = elapsed.as_secs_f64();
    assert!(
        (low_secs..high_secs).contains(&secs),
        "took {secs:.2} s, expected {low_secs} to {high_secs} s"
    );
}

#[tokio::test]
async fn half_sent_headers_are_cut_after_the_header_timeout() {
    let (server, _db, _keys) = server_with(&["--header-read-timeout-secs", "1"]).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"POST /token HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let (_, elapsed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_between(elapsed, 0.8, 3.0);
}

#[tokio::test]
async fn a_stalled_body_is_cut_after_the_body_timeout() {
    let (server, _db, _keys) = server_with(&[
        "--body-read-timeout-secs",
        "1",
        "--header-read-timeout-secs",
        "10",
    ])
    .await;
    let mut stream = connect(&server).await;
    stream
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\n\
              grant_type=client_",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (status, head, body) = read_response(&mut stream).await;
    assert_between(started.elapsed(), 0.8, 3.0);
    assert_invalid_request(status, &head, &body, 408);
    assert!(head.contains("connection: close"), "{head}");
    read_until_closed(&mut stream, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn an_idle_connection_waits_the_idle_timeout_not_the_header_timeout() {
    let (server, _db, _keys) = server_with(&[
        "--idle-timeout-secs",
        "2",
        "--header-read-timeout-secs",
        "1",
    ])
    .await;
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut stream = connect(&server).await;
    stream.write_all(healthz).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    // Idle for longer than the header timeout, shorter than the idle timeout: still served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stream.write_all(healthz).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    // Then left idle: closed after the idle timeout.
    let (rest, elapsed) = read_until_closed(&mut stream, Duration::from_secs(6)).await;
    assert_eq!(rest, "");
    assert_between(elapsed, 1.8, 4.0);
}

#[tokio::test]
async fn a_request_begun_after_an_idle_wait_still_has_only_the_header_timeout() {
    let (server, _db, _keys) = server_with(&[
        "--idle-timeout-secs",
        "30",
        "--header-read-timeout-secs",
        "1",
    ])
    .await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    let (_, elapsed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_between(elapsed, 0.8, 3.0);
}

#[tokio::test]
async fn at_the_connection_cap_a_new_client_is_served_once_a_stalled_one_times_out() {
    let (server, _db, _keys) =
        server_with(&["--max-connections", "2", "--header-read-timeout-secs", "2"]).await;
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(&server).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The third client waits in the listen backlog, then is served.
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_between(started.elapsed(), 1.0, 5.0);
    for mut stream in stalled {
        read_until_closed(&mut stream, Duration::from_secs(1)).await;
    }
    // And the server keeps serving.
    for _ in 0..5 {
        let response = reqwest::get(server.url("/healthz")).await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_refused_before_the_body_is_sent() {
    let (server, _db, _keys) = server_with(&["--body-read-timeout-secs", "30"]).await;
    let mut stream = connect(&server).await;
    stream
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000000\r\n\r\n",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (status, head, body) = read_response(&mut stream).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_invalid_request(status, &head, &body, 413);
}

#[tokio::test]
async fn refusals_before_the_handler_keep_each_apis_error_shape() {
    let env = TestEnv::start(Backend::Sqlite).await;
    for path in ["/token", "/introspect", "/revoke", "/register"] {
        let response = env.http.get(env.url(path)).send().await.unwrap();
        assert_eq!(response.headers()["allow"], "POST", "{path}");
        let (status, head, body) = parts(response).await;
        assert_invalid_request(status, &head, &body, 405);

        let response = env
            .http
            .post(env.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 100_000])
            .send()
            .await
            .unwrap();
        let (status, head, body) = parts(response).await;
        assert_invalid_request(status, &head, &body, 413);
    }
    let response = env
        .admin(reqwest::Method::POST, "/register")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_name=x")
        .send()
        .await
        .unwrap();
    let (status, head, body) = parts(response).await;
    assert_invalid_request(status, &head, &body, 415);

    // The admin API keeps its own error shape.
    let response = env
        .admin(reqwest::Method::POST, "/admin/clients")
        .header("content-type", "application/json")
        .body(vec![b' '; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE", "{body}");
}

async fn parts(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let head = format!("{:?}", response.headers()).to_lowercase();
    let head = head.replace("\": \"", ": ");
    (status, head, response.text().await.unwrap())
}

/// A process: SIGTERM, and the exit status.
#[tokio::test]
async fn sigterm_finishes_requests_in_flight_then_cuts_the_rest_and_exits_0() {
    let env = TestEnv::start_process_with(
        Backend::Sqlite,
        &[
            "--shutdown-grace-secs",
            "2",
            "--body-read-timeout-secs",
            "30",
            "--header-read-timeout-secs",
            "30",
        ],
    )
    .await;
    let client = env.service_client().await;
    let mut server = env.server;

    // A request whose body has not all arrived when SIGTERM does.
    let form = "grant_type=client_credentials";
    let mut in_flight = TcpStream::connect(server.address()).await.unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        basic(&client.id, &client.secret),
        form.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(&form.as_bytes()[..10]).await.unwrap();
    // A client that stopped halfway through its body, for good.
    let mut stalled = TcpStream::connect(server.address()).await.unwrap();
    stalled
        .write_all(
            b"POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Length: 40\r\n\r\ngrant_type",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    in_flight.write_all(&form.as_bytes()[10..]).await.unwrap();
    let (status, _, body) = read_response(&mut in_flight).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("access_token"), "{body}");

    // New connections are refused once stopping.
    assert!(TcpStream::connect(server.address()).await.is_err());

    read_until_closed(&mut stalled, Duration::from_secs(5)).await;
    let status = server
        .wait_for_exit(Duration::from_secs(6))
        .expect("the server exits after the grace period");
    assert!(status.success(), "{status:?}\n{}", server.logs());
    assert_between(started.elapsed(), 1.8, 5.0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = server.logs();
    assert!(
        logs.contains("after the shutdown grace period") && logs.contains("cut=1"),
        "{logs}"
    );
    assert!(logs.contains("stopped"), "{logs}");
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
}
