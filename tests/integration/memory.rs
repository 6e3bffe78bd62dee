//! The server's memory stays bounded under sign-ins: argon2id needs 19 MiB per hash, which
//! the server keeps per hashing slot instead of allocating per hash (src/passwords.rs).

use std::net::{IpAddr, Ipv4Addr};

use crate::common::flow::{PASSWORD, hidden_field};
use crate::common::{Backend, TestEnv};
use crate::on_both_databases;

on_both_databases!(concurrent_sign_ins_keep_memory_bounded);

/// The most the server may ever hold resident (VmHWM), in KiB: issue #13's bound.
const PEAK_RSS_LIMIT_KIB: u64 = 64 * 1024;
/// Sign-ins at once, half with the right password: within the line of waiting sign-ins (five
/// per hashing slot), so that each is checked.
const SIGNING_IN_AT_ONCE: usize = 4;
const ROUNDS: usize = 20;

/// Concurrent sign-ins, right and wrong (the wrong ones for unknown usernames, each from
/// another loopback address so that the per-address limit does not turn them away
/// unchecked): every password is hashed, and the process's peak RSS stays within the bound.
/// One hash at a time, so that the bound holds whatever the machine's cores (each slot keeps
/// 19 MiB) and in a debug build, whose code alone is ~20 MiB resident. A process of its own:
/// the hashing slots are process-wide, and so is the peak.
async fn concurrent_sign_ins_keep_memory_bounded(backend: Backend) {
    let env = TestEnv::start_process_with(backend, &["--password-hashes-at-once", "1"]).await;
    let users: Vec<String> = (0..SIGNING_IN_AT_ONCE / 2)
        .map(|i| format!("walker{i}"))
        .collect();
    for user in &users {
        env.create_user(user).await;
    }
    let started_kib = env.server.memory_kib("VmRSS");
    let signers = (0..SIGNING_IN_AT_ONCE).map(|worker| {
        let (env, right) = (&env, users.get(worker));
        async move {
            let mut statuses = Vec::new();
            for round in 0..ROUNDS {
                let (username, password) = match right {
                    Some(user) => (user.clone(), PASSWORD.to_owned()),
                    None => (
                        format!("stranger{worker}x{round}"),
                        format!("guess {round}"),
                    ),
                };
                let source = Ipv4Addr::new(127, 0, 0, (2 + worker * ROUNDS + round) as u8);
                statuses.push(sign_in(env, source.into(), &username, &password).await);
            }
            (right.is_some(), statuses)
        }
    });
    let results = futures::future::join_all(signers).await;
    for (is_right, statuses) in &results {
        let expected = if *is_right { 200 } else { 401 };
        assert!(statuses.iter().all(|s| *s == expected), "{statuses:?}");
    }
    let peak_kib = env.server.memory_kib("VmHWM");
    assert!(
        peak_kib <= PEAK_RSS_LIMIT_KIB,
        "{} sign-ins took the server from {started_kib} KiB to a peak of {peak_kib} KiB",
        SIGNING_IN_AT_ONCE * ROUNDS
    );
}

/// Signs in on /login as a new browser connecting from `source`; returns the status.
async fn sign_in(env: &TestEnv, source: IpAddr, username: &str, password: &str) -> u16 {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(source)
        .build()
        .unwrap();
    let page = env.page(&browser, "/login").await;
    let form = [
        ("username", username),
        ("password", password),
        ("csrf", &hidden_field(&page, "csrf")),
        ("continue", ""),
    ];
    let response = browser
        .post(env.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}
