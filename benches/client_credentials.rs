//! client_credentials tokens/s, refresh-token rotations/s and API-key introspections/s over
//! HTTP on loopback, next to the raw RS256 signing rate measured in the same run on the same
//! machine; then a minute of mixed load with sign-ins, and the server's memory (RSS) before and
//! after it.
//!
//! `cargo bench --bench client_credentials` (PostgreSQL from PORTCULLIS_TEST_POSTGRES_URL,
//! default postgres://postgres@127.0.0.1:5432/postgres; set PORTCULLIS_BENCH_SKIP_POSTGRES=1 to
//! measure SQLite only).
//!
//! One node, measured as one core: the server runs on CPU 0 and the load generator on CPU 1
//! (`taskset`), so that a rate is what the server's core sustains, not what is left of it by
//! a load generator sharing it. The request kinds that are compared take turns, round after
//! round, so that a machine whose speed drifts during the run slows them alike.
//!
//! Goals: tokens/s at least 60% of one core's raw signing rate; introspections/s at least ten
//! times tokens/s, for a key without a rate limit and for one with (counted in the server's
//! memory, as one node counts); the server's peak RSS (VmHWM) through the whole run at most
//! 64 MiB. Also shown: the CPU per request of the server and of PostgreSQL and Redis (not the
//! load generator's), and on PostgreSQL a limited key counted in Redis, as replicas count
//! (Redis from PORTCULLIS_BENCH_REDIS_URL, default redis://127.0.0.1:6379/).

// A benchmark that cannot set up should stop at once: it may unwrap.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis::keys::SigningKey;
use portcullis::oauth::access_token::{AccessTokenClaims, Audience};
use portcullis::oauth::scope::Scope;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const SIGN_SECONDS: f64 = 3.0;
/// Measured seconds per request kind, over ROUNDS turns.
const LOAD_SECONDS: f64 = 8.0;
const ROUNDS: u32 = 4;
/// Before each turn, on fresh connections.
const WARMUP_SECONDS: f64 = 0.5;
/// Where the server runs, and where the load generator does (the higher of the two).
const SERVER_CPU: usize = 0;
const LOAD_CPU: usize = 1;
const CONNECTIONS: usize = 32;
/// The mixed phase: tokens, introspections and sign-ins at once, for as long as the load that
/// once took the server from ~50 MB to ~330 MB of RSS (argon2's 19 MiB per hash).
const MIXED_SECONDS: f64 = 60.0;
/// Connections per request kind in the mixed phase; sign-ins are split between right and
/// wrong passwords.
const MIXED_CONNECTIONS: usize = 8;
const PEAK_RSS_GOAL_MIB: f64 = 64.0;
/// The bench users' password.
const BENCH_PASSWORD: &str = "bench password 1";

fn main() {
    println!("raw RS256 signing (kept aws-lc-rs key, RFC 9068 claims):");
    let one_core = sign_rate(1);
    let two_cores = sign_rate(2);
    println!("  1 thread : {one_core:>8.0} signs/s");
    println!("  2 threads: {two_cores:>8.0} signs/s");
    println!("  one signature costs {:.3} core-ms", 1000.0 / one_core);
    // Read before pinning, which leaves this process one CPU.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = pin_load_generator(cpus);
    let (baseline, cores) = if pinned {
        println!(
            "server on CPU {SERVER_CPU}, load generator on CPU {LOAD_CPU}: every rate below is what one server core sustains"
        );
        (one_core, "1-core")
    } else {
        println!(
            "NOT PINNED (fewer than two CPUs, or no taskset): the server and the load generator share every core, so cheap requests' rates are capped by the load generator"
        );
        (two_cores, "2-core")
    };

    let mut backends = vec![("sqlite", None)];
    if std::env::var("PORTCULLIS_BENCH_SKIP_POSTGRES").is_err() {
        backends.push(("postgres", Some(postgres_admin_url())));
    }
    for (name, postgres) in backends {
        let Rates {
            sign_ms,
            tokens,
            refreshes,
            introspections,
            introspections_alone,
            limited_introspections,
            floor,
            floor_alone,
            counted_in_redis,
            memory,
            mixed,
        } = http_rates(postgres.as_deref(), pinned, cpus);
        println!(
            "{name:<8} client_credentials ({CONNECTIONS} conns): {:>6.0} tokens/s  p50 {:>6.2} ms  p99 {:>6.2} ms  = {:.0}% of raw {cores} signing (goal: at least 60%); CPU {} per token",
            tokens.rate,
            tokens.p50_ms,
            tokens.p99_ms,
            100.0 * tokens.rate / baseline,
            cpu_text(&tokens),
        );
        println!(
            "{name:<8} refresh rotation ({CONNECTIONS} conns):   {:>6.0} refreshes/s p50 {:>6.2} ms  p99 {:>6.2} ms  = {:.0}% of raw {cores} signing; CPU {} per refresh",
            refreshes.rate,
            refreshes.p50_ms,
            refreshes.p99_ms,
            100.0 * refreshes.rate / baseline,
            cpu_text(&refreshes),
        );
        println!(
            "{name:<8} one signature, measured again before introspecting: {sign_ms:.3} core-ms"
        );
        for (connections, result, floor) in [
            (CONNECTIONS, &introspections, &floor),
            (1, &introspections_alone, &floor_alone),
        ] {
            println!(
                "{name:<8} API-key introspection ({connections} conns): {:>6.0} req/s     p50 {:>6.2} ms  p99 {:>6.2} ms; CPU {} per request = {:.1}% of one signature",
                result.rate,
                result.p50_ms,
                result.p99_ms,
                cpu_text(result),
                100.0 * result.cpu_ms() / sign_ms
            );
            println!(
                "{name:<8}   floor, GET JWKS ({connections} conns):  {:>6.0} req/s     p50 {:>6.2} ms  p99 {:>6.2} ms; CPU {} per request; introspection adds {:.3} core-ms = {:.1}% of one signature",
                floor.rate,
                floor.p50_ms,
                floor.p99_ms,
                cpu_text(floor),
                result.cpu_ms() - floor.cpu_ms(),
                100.0 * (result.cpu_ms() - floor.cpu_ms()) / sign_ms
            );
        }
        println!(
            "{name:<8} introspection of a rate-limited key, counted in memory ({CONNECTIONS} conns): {:>6.0} req/s     p50 {:>6.2} ms  p99 {:>6.2} ms; CPU {} per request",
            limited_introspections.rate,
            limited_introspections.p50_ms,
            limited_introspections.p99_ms,
            cpu_text(&limited_introspections),
        );
        println!(
            "{name:<8} introspections/s ÷ client_credentials tokens/s ({CONNECTIONS} conns each, taking turns): {:.1}x, rate-limited key {:.1}x (goal: at least 10x)",
            introspections.rate / tokens.rate,
            limited_introspections.rate / tokens.rate
        );
        // What the server spends per request, whoever else shares the machine.
        println!(
            "{name:<8} capacity: CPU per token ÷ CPU per introspection: {:.1}x, rate-limited key {:.1}x",
            tokens.cpu_ms() / introspections.cpu_ms(),
            tokens.cpu_ms() / limited_introspections.cpu_ms(),
        );
        if let Some((tokens, limited)) = counted_in_redis {
            println!(
                "{name:<8} with --redis-url, as replicas count: {:>6.0} tokens/s, {:>6.0} introspections/s of a rate-limited key counted in Redis (p50 {:.2} ms, p99 {:.2} ms; CPU {} per request) = {:.1}x",
                tokens.rate,
                limited.rate,
                limited.p50_ms,
                limited.p99_ms,
                cpu_text(&limited),
                limited.rate / tokens.rate
            );
        }
        println!(
            "{name:<8} mixed load, {MIXED_SECONDS:.0} s ({MIXED_CONNECTIONS} conns each of client_credentials and introspection, {MIXED_CONNECTIONS} signing in: half right, half wrong): {:.0} tokens/s, {:.0} introspections/s, {:.1} sign-ins/s (p50 {:.0} ms, p99 {:.0} ms; {} signed in, {} wrong, {} throttled, {} busy)",
            mixed.tokens_per_sec,
            mixed.introspections_per_sec,
            mixed.sign_ins_per_sec,
            mixed.sign_in_p50_ms,
            mixed.sign_in_p99_ms,
            mixed.signed_in,
            mixed.wrong,
            mixed.throttled,
            mixed.busy,
        );
        println!(
            "{name:<8} server memory: RSS {:.1} MiB at start, {:.1} MiB before the mixed load, {:.1} MiB after it; peak (VmHWM) {:.1} MiB (goal: at most {PEAK_RSS_GOAL_MIB:.0} MiB)",
            memory.start_mib, memory.before_mixed_mib, memory.after_mixed_mib, memory.peak_mib,
        );
    }
}

/// Pins this process, the load generator, to LOAD_CPU (the server is started on SERVER_CPU):
/// true when the machine has both CPUs and `taskset` works.
fn pin_load_generator(cpus: usize) -> bool {
    cpus > LOAD_CPU
        && Command::new("taskset")
            .args(["-a", "-p", "-c", &LOAD_CPU.to_string()])
            .arg(std::process::id().to_string())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// The server's resident memory at points of the run, in MiB.
struct Memory {
    start_mib: f64,
    before_mixed_mib: f64,
    after_mixed_mib: f64,
    /// VmHWM: the most the process has ever held resident.
    peak_mib: f64,
}

/// A line of /proc/PID/status, in MiB (the kernel writes kB, which are KiB).
fn proc_status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{field}:")))
        .unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

/// "0.123 core-ms", split into server and services (PostgreSQL, Redis) when it uses them.
fn cpu_text(result: &LoadResult) -> String {
    if result.database_cpu_ms == 0.0 {
        format!("{:.3} core-ms", result.server_cpu_ms)
    } else {
        format!(
            "{:.3} core-ms (server {:.3} + PostgreSQL and Redis {:.3})",
            result.cpu_ms(),
            result.server_cpu_ms,
            result.database_cpu_ms
        )
    }
}

fn postgres_admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Signs as the server does, on `threads` threads at once, for SIGN_SECONDS.
fn sign_rate(threads: usize) -> f64 {
    let (key, _) = SigningKey::generate().expect("key generation");
    let key = Arc::new(key);
    let scope = Scope::parse("read write").unwrap();
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let key = key.clone();
            let scope = scope.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed().as_secs_f64() < SIGN_SECONDS {
                    let claims = AccessTokenClaims::new(
                        "http://localhost:8080",
                        "client",
                        "client",
                        Audience::One("http://localhost:8080".into()),
                        &scope,
                        1_800_000_000,
                        3600,
                    );
                    std::hint::black_box(key.sign_jwt(&claims).unwrap());
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// One backend's figures.
struct Rates {
    /// One signature's CPU, measured just before the introspection loads.
    sign_ms: f64,
    tokens: LoadResult,
    /// Each connection refreshes its own family, always with the token it was last given.
    refreshes: LoadResult,
    introspections: LoadResult,
    introspections_alone: LoadResult,
    /// Introspections of a key with a rate limit, so each is counted (in memory).
    limited_introspections: LoadResult,
    floor: LoadResult,
    floor_alone: LoadResult,
    /// On PostgreSQL, a server started with --redis-url: tokens, and introspections of the
    /// limited key counted in Redis, taking turns.
    counted_in_redis: Option<(LoadResult, LoadResult)>,
    memory: Memory,
    mixed: MixedResult,
}

struct LoadResult {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time of the portcullis process per request (not the load generator's).
    server_cpu_ms: f64,
    /// CPU time of every PostgreSQL and Redis process per request (about 0 for SQLite, which
    /// runs inside the server, with counters in memory).
    database_cpu_ms: f64,
}

impl LoadResult {
    fn cpu_ms(&self) -> f64 {
        self.server_cpu_ms + self.database_cpu_ms
    }
}

/// What one or more measured turns of a request kind counted, added up.
#[derive(Default)]
struct Sample {
    requests: u64,
    seconds: f64,
    server_cpu_ms: f64,
    database_cpu_ms: f64,
    latencies: Vec<Duration>,
}

impl Sample {
    fn add(&mut self, turn: Sample) {
        self.requests += turn.requests;
        self.seconds += turn.seconds;
        self.server_cpu_ms += turn.server_cpu_ms;
        self.database_cpu_ms += turn.database_cpu_ms;
        self.latencies.extend(turn.latencies);
    }

    fn result(mut self) -> LoadResult {
        self.latencies.sort();
        let latencies = &self.latencies;
        let pct = |p: f64| {
            latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)]
                .as_secs_f64()
                * 1000.0
        };
        let requests = self.requests as f64;
        LoadResult {
            rate: requests / self.seconds,
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
            server_cpu_ms: self.server_cpu_ms / requests,
            database_cpu_ms: self.database_cpu_ms / requests,
        }
    }
}

/// User + system CPU time of a process so far, in milliseconds (Linux, USER_HZ = 100).
fn process_cpu_ms(pid: u32) -> f64 {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's /proc entry");
    stat_cpu_ms(&stat)
}

/// Whether the server under test uses PostgreSQL and Redis. On SQLite it uses neither (the
/// database runs inside the server, the counters in its memory), and other work on the machine
/// must not be counted as its own.
static USES_SERVICES: AtomicBool = AtomicBool::new(false);

/// The same, summed over every process named `postgres` or `redis-server` on the machine, when
/// the server under test uses them; else 0.
fn services_cpu_ms() -> f64 {
    if !USES_SERVICES.load(Ordering::Relaxed) {
        return 0.0;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| stat.contains("(postgres)") || stat.contains("(redis-server)"))
        .map(|stat| stat_cpu_ms(&stat))
        .sum()
}

fn stat_cpu_ms(stat: &str) -> f64 {
    // Fields after the command name, which ends with the last ')': state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks * 10.0
}

/// Starts a release server on a fresh database and measures both request kinds against it;
/// on SERVER_CPU when `pinned`, but hashing as many passwords at once as the machine has
/// `cpus`, as it would unpinned (each hashing slot keeps its 19 MiB: the memory goal is about
/// them).
fn http_rates(postgres_admin: Option<&str>, pinned: bool, cpus: usize) -> Rates {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (database_url, pg_name) = match postgres_admin {
        None => (
            format!("sqlite://{}", dir.path().join("bench.db").display()),
            None,
        ),
        Some(admin) => {
            let name = format!("pc_bench_{}", std::process::id());
            runtime.block_on(pg_exec(admin, &format!("CREATE DATABASE {name}")));
            let mut url = url::Url::parse(admin).unwrap();
            url.set_path(&name);
            (url.to_string(), Some(name))
        }
    };
    let keys_dir = dir.path().join("keys");
    let with_env = |mut command: Command| {
        command
            .env("PORTCULLIS_DATABASE_URL", &database_url)
            .env("PORTCULLIS_KEYS_DIR", &keys_dir)
            .env("PORTCULLIS_LOG", "warn,portcullis=info");
        command
    };
    let run = |args: &[&str]| {
        let mut command = Command::new(BIN);
        command.args(args);
        with_env(command)
    };
    // A plan no request reaches, so that a limited key's introspections are all counted and
    // all answered.
    let hashes_at_once = cpus.to_string();
    let serve = |more: &[&str]| {
        let mut command = if pinned {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", &SERVER_CPU.to_string(), BIN]);
            taskset
        } else {
            Command::new(BIN)
        };
        command
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--rate-limit-plan",
                "bench=1000000000/min",
                "--password-hashes-at-once",
                &hashes_at_once,
            ])
            .args(more);
        start_server(with_env(command))
    };
    USES_SERVICES.store(postgres_admin.is_some(), Ordering::Relaxed);
    let (mut server, address) = serve(&[]);
    let pid = server.id();
    let start_mib = proc_status_mib(pid, "VmRSS");
    let out = run(&[
        "clients",
        "create",
        "--name",
        "bench",
        "--grant-type",
        "client_credentials",
        // It introspects API keys, which only resource servers may.
        "--resource-server",
        "--json",
    ])
    .output()
    .unwrap();
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("client JSON");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    let out = run(&[
        "api-keys", "create", "--name", "bench", "--scope", "read", "--json",
    ])
    .output()
    .unwrap();
    let api_key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("API key JSON");
    let api_key = api_key["key"].as_str().unwrap().to_owned();
    let out = run(&[
        "api-keys",
        "create",
        "--name",
        "limited",
        "--scope",
        "read",
        "--rate-limit-plan",
        "bench",
        "--json",
    ])
    .output()
    .unwrap();
    let limited_key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("API key JSON");
    let limited_key_id = limited_key["id"].as_str().unwrap().to_owned();
    let limited_key = limited_key["key"].as_str().unwrap().to_owned();

    // An inactive answer is a 200 too: make sure the key is live before measuring.
    let answer: serde_json::Value = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("http://{address}/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", api_key.as_str())])
            .send()
            .await
            .expect("introspection");
        response.json().await.expect("introspection JSON")
    });
    assert_eq!(answer["active"], true, "{answer}");
    let limited_answer: serde_json::Value = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("http://{address}/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", limited_key.as_str())])
            .send()
            .await
            .expect("introspection");
        response.json().await.expect("introspection JSON")
    });
    assert_eq!(
        limited_answer["rate_limit"]["exceeded"], false,
        "{limited_answer}"
    );

    let token_request = |address: &str| {
        raw_request(
            address,
            "POST",
            "/token",
            Some((&id, &secret)),
            "grant_type=client_credentials",
        )
    };
    let token = token_request(&address);
    let refresh_tokens = runtime.block_on(seed_refresh_families(&database_url, &run, CONNECTIONS));
    let refreshes = runtime.block_on(load_conversations(
        pid,
        refresh_tokens
            .into_iter()
            .map(|(client_id, token)| refresh_conversation(&address, client_id, token))
            .collect(),
    ));
    let introspect = |address: &str, key: &str| {
        raw_request(
            address,
            "POST",
            "/introspect",
            Some((&id, &secret)),
            &format!("token={key}"),
        )
    };
    // This machine's speed drifts over a run: the signature that introspection is compared
    // with is measured again right before, with the server idle.
    let sign_ms = 1000.0 / sign_rate(1);
    // The floor: what any request costs the server when it needs neither a database nor a
    // signature (the JWKS is kept in memory), so that what introspection itself adds shows.
    let jwks = raw_request(&address, "GET", "/.well-known/jwks.json", None, "");
    let [tokens, introspections, limited_introspections, floor] = runtime
        .block_on(taking_turns(
            pid,
            &address,
            &[
                token.clone(),
                introspect(&address, &api_key),
                introspect(&address, &limited_key),
                jwks.clone(),
            ],
        ))
        .try_into()
        .ok()
        .unwrap();
    // One client at a time: no request has company to share the generation read with.
    let alone = |request| load(pid, &address, 1, request, LOAD_SECONDS / 2.0);
    let introspections_alone = runtime
        .block_on(alone(introspect(&address, &api_key)))
        .result();
    let floor_alone = runtime.block_on(alone(jwks)).result();

    let users: Vec<String> = (0..MIXED_CONNECTIONS / 2)
        .map(|i| {
            let username = format!("bench{i}");
            let mut child = run(&[
                "users",
                "create",
                "--username",
                &username,
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
            std::io::Write::write_all(
                &mut child.stdin.take().unwrap(),
                format!("{BENCH_PASSWORD}\n").as_bytes(),
            )
            .unwrap();
            assert!(child.wait().unwrap().success(), "users create");
            username
        })
        .collect();
    let before_mixed_mib = proc_status_mib(pid, "VmRSS");
    let mixed = runtime.block_on(mixed_load(
        &address,
        users,
        token,
        introspect(&address, &api_key),
    ));
    let memory = Memory {
        start_mib,
        before_mixed_mib,
        after_mixed_mib: proc_status_mib(pid, "VmRSS"),
        peak_mib: proc_status_mib(pid, "VmHWM"),
    };
    let _ = server.kill();
    let _ = server.wait();

    // Replicas count in Redis: the same limited key, through a server started with
    // --redis-url, taking turns with that server's tokens.
    let counted_in_redis = postgres_admin.is_some().then(|| {
        let redis_url = std::env::var("PORTCULLIS_BENCH_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
        let (mut server, address) = serve(&["--redis-url", &redis_url]);
        let token = token_request(&address);
        let limited = introspect(&address, &limited_key);
        let [tokens, limited] = runtime
            .block_on(taking_turns(server.id(), &address, &[token, limited]))
            .try_into()
            .ok()
            .unwrap();
        let _ = server.kill();
        let _ = server.wait();
        // Counted in Redis indeed, not in the server's memory for want of Redis.
        let mut redis = redis::Client::open(redis_url)
            .unwrap()
            .get_connection()
            .unwrap();
        let counted: Option<u64> = redis::cmd("HGET")
            .arg(format!("portcullis:rate:key:{limited_key_id}"))
            .arg("dc")
            .query(&mut redis)
            .unwrap();
        assert!(counted > Some(1000), "counted in Redis: {counted:?}");
        (tokens, limited)
    });
    let result = Rates {
        sign_ms,
        tokens,
        refreshes,
        introspections,
        introspections_alone,
        limited_introspections,
        floor,
        floor_alone,
        counted_in_redis,
        memory,
        mixed,
    };
    if let (Some(admin), Some(name)) = (postgres_admin, pg_name) {
        runtime.block_on(pg_exec(
            admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ));
    }
    result
}

/// Spawns `serve` and waits for the address it listens on.
fn start_server(mut command: Command) -> (std::process::Child, String) {
    let mut server = command.stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(',').next().unwrap().to_owned();
        }
    };
    // The request log is read and dropped; warnings and errors are shown.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains(" WARN ") || line.contains(" ERROR ") {
                eprintln!("server: {line}");
            }
        }
    });
    (server, address)
}

/// A public client allowed refresh tokens and, for it, one refresh-token family per
/// connection, written straight into the database (the code flow's pages are not what is
/// measured). Returns each family's client id and first refresh token.
async fn seed_refresh_families(
    database_url: &str,
    run: &dyn Fn(&[&str]) -> Command,
    families: usize,
) -> Vec<(String, String)> {
    let out = run(&[
        "clients",
        "create",
        "--name",
        "bench spa",
        "--public",
        "--redirect-uri",
        "http://localhost:3000/callback",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--scope",
        "read",
        "--json",
    ])
    .output()
    .unwrap();
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("client JSON");
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .unwrap();
    let now = i64::try_from(unix_now()).unwrap();
    let far = now + 86_400;
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, created_at, updated_at) \
         VALUES ('usr_bench', 'bench', 'x', $1, $1)",
    )
    .bind(now)
    .execute(&pool)
    .await
    .unwrap();
    let mut tokens = Vec::new();
    for family in 0..families {
        let grant_id = format!("grant_bench_{family}");
        let token = portcullis::secrets::random_base62(portcullis::secrets::SECRET_CHARS);
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, scope, created_at, expires_at) \
             VALUES ($1, $2, 'usr_bench', 'read', $3, $4)",
        )
        .bind(&grant_id)
        .bind(&client_id)
        .bind(now)
        .bind(far)
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, idle_expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(portcullis::secrets::hash_secret(&token))
        .bind(&grant_id)
        .bind(now)
        .bind(far)
        .execute(&pool)
        .await
        .unwrap();
        tokens.push((client_id.clone(), token));
    }
    pool.close().await;
    tokens
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A client refreshing one family in a loop, each time with the token it was just given.
fn refresh_conversation(address: &str, client_id: String, first_token: String) -> Conversation {
    let url = format!("http://{address}/token");
    let mut token = first_token;
    Box::new(move |http: &reqwest::Client, previous: Option<&[u8]>| {
        if let Some(body) = previous {
            let answer: serde_json::Value = serde_json::from_slice(body).expect("token JSON");
            token = answer["refresh_token"]
                .as_str()
                .expect("a successor")
                .to_owned();
        }
        http.post(&url).form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", token.as_str()),
        ])
    })
}

/// One connection's requests, each made knowing the previous response's body.
type Conversation =
    Box<dyn FnMut(&reqwest::Client, Option<&[u8]>) -> reqwest::RequestBuilder + Send>;

/// An HTTP/1.1 request as bytes, sent again and again on kept-alive connections.
fn raw_request(
    address: &str,
    method: &str,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &str,
) -> Arc<Vec<u8>> {
    use base64::Engine;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\n");
    if let Some((user, password)) = basic {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Authorization: Basic {credentials}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(form);
    Arc::new(request.into_bytes())
}

/// `connections` clients in a closed loop, all sending `request`: written straight to the
/// socket and answered by reading the status line and `Content-Length`, so that the load
/// generator, which shares the two cores, takes as little of them as it can and the server's
/// capacity is what shows.
async fn load(
    server_pid: u32,
    address: &str,
    connections: usize,
    request: Arc<Vec<u8>>,
    seconds: f64,
) -> Sample {
    let address = address.to_owned();
    measure(server_pid, seconds, move |flags| {
        (0..connections)
            .map(|_| {
                let (flags, request, address) = (flags.clone(), request.clone(), address.clone());
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut buffer = Vec::with_capacity(4096);
                    let mut latencies = Vec::new();
                    while !flags.done.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        stream.write_all(&request).await.unwrap();
                        let (status, body) = read_response(&mut stream, &mut buffer).await;
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                        flags.count(&mut latencies, started);
                    }
                    latencies
                })
            })
            .collect()
    })
    .await
}

/// Reads one response from a kept-alive connection: its status and body.
async fn read_response(stream: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>) -> (u16, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    buffer.clear();
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let status: u16 = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    while buffer.len() < header_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the server closed the connection");
        buffer.extend_from_slice(&chunk[..n]);
    }
    (status, buffer[header_end..header_end + length].to_vec())
}

/// What the clients of one measurement share.
struct Flags {
    measuring: AtomicBool,
    done: AtomicBool,
    total: AtomicU64,
}

impl Flags {
    /// Counts a request that started at `started`, if it ended while measuring.
    fn count(&self, latencies: &mut Vec<Duration>, started: Instant) {
        if self.measuring.load(Ordering::Relaxed) {
            latencies.push(started.elapsed());
            self.total.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One client per conversation in a closed loop; counts only 200s, and fails on anything else.
async fn load_conversations(server_pid: u32, conversations: Vec<Conversation>) -> LoadResult {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conversations.len())
        .build()
        .unwrap();
    let measured = measure(server_pid, LOAD_SECONDS, move |flags| {
        conversations
            .into_iter()
            .map(|mut conversation| {
                let (http, flags) = (http.clone(), flags.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut previous: Option<axum::body::Bytes> = None;
                    while !flags.done.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let request = conversation(&http, previous.as_deref());
                        let response = request.send().await.expect("request");
                        assert_eq!(
                            response.status(),
                            200,
                            "{}",
                            response.text().await.unwrap_or_default()
                        );
                        previous = Some(response.bytes().await.unwrap());
                        flags.count(&mut latencies, started);
                    }
                    latencies
                })
            })
            .collect()
    });
    measured.await.result()
}

/// Starts the clients, lets them warm up, then measures for `seconds`: requests, their
/// latencies, and the CPU the server (and the services it uses) spent on them.
async fn measure(
    server_pid: u32,
    seconds: f64,
    start_clients: impl FnOnce(Arc<Flags>) -> Vec<tokio::task::JoinHandle<Vec<Duration>>>,
) -> Sample {
    let flags = Arc::new(Flags {
        measuring: AtomicBool::new(false),
        done: AtomicBool::new(false),
        total: AtomicU64::new(0),
    });
    let tasks = start_clients(flags.clone());
    tokio::time::sleep(Duration::from_secs_f64(WARMUP_SECONDS)).await;
    flags.measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let cpu_start = process_cpu_ms(server_pid);
    let database_cpu_start = services_cpu_ms();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let requests = flags.total.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let server_cpu_ms = process_cpu_ms(server_pid) - cpu_start;
    let database_cpu_ms = services_cpu_ms() - database_cpu_start;
    flags.measuring.store(false, Ordering::Relaxed);
    flags.done.store(true, Ordering::Relaxed);
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Sample {
        requests,
        seconds: elapsed,
        server_cpu_ms,
        database_cpu_ms,
        latencies,
    }
}

/// Each request kind in turn, ROUNDS times, LOAD_SECONDS / ROUNDS each: while the machine's
/// speed drifts, every kind is measured in the same states of it, and their ratios hold.
async fn taking_turns(
    server_pid: u32,
    address: &str,
    requests: &[Arc<Vec<u8>>],
) -> Vec<LoadResult> {
    let mut samples: Vec<Sample> = requests.iter().map(|_| Sample::default()).collect();
    let turn_seconds = LOAD_SECONDS / f64::from(ROUNDS);
    for _ in 0..ROUNDS {
        for (request, sample) in requests.iter().zip(&mut samples) {
            let turn = load(
                server_pid,
                address,
                CONNECTIONS,
                request.clone(),
                turn_seconds,
            );
            sample.add(turn.await);
        }
    }
    samples.into_iter().map(Sample::result).collect()
}

/// What the mixed phase served.
struct MixedResult {
    tokens_per_sec: f64,
    introspections_per_sec: f64,
    /// Sign-in answers of any kind per second; all but the throttled and busy ones checked a
    /// password.
    sign_ins_per_sec: f64,
    sign_in_p50_ms: f64,
    sign_in_p99_ms: f64,
    signed_in: u64,
    wrong: u64,
    throttled: u64,
    busy: u64,
}

/// MIXED_SECONDS of client_credentials tokens, introspections and sign-ins at once, each
/// kind on MIXED_CONNECTIONS connections. Half the sign-ins use `users`' right password, one
/// user each (a username's concurrent attempts count against it until they succeed); the
/// other half wrong passwords for unknown usernames (the server then hashes with its default
/// parameters all the same), each from another loopback address, so that the per-address
/// limit on failures (50 in 15 minutes) does not turn them away unhashed.
async fn mixed_load(
    address: &str,
    users: Vec<String>,
    token: Arc<Vec<u8>>,
    introspect: Arc<Vec<u8>>,
) -> MixedResult {
    let done = Arc::new(AtomicBool::new(false));
    let mut counters = Vec::new();
    for request in [token, introspect] {
        let count = Arc::new(AtomicU64::new(0));
        for _ in 0..MIXED_CONNECTIONS {
            let (request, done, count) = (request.clone(), done.clone(), count.clone());
            let address = address.to_owned();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let mut buffer = Vec::with_capacity(4096);
                while !done.load(Ordering::Relaxed) {
                    stream.write_all(&request).await.unwrap();
                    let (status, body) = read_response(&mut stream, &mut buffer).await;
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        counters.push(count);
    }
    let login_url = format!("http://{address}/login");
    let mut signers = Vec::new();
    for worker in 0..MIXED_CONNECTIONS {
        let right = users.get(worker).cloned();
        let (login_url, done) = (login_url.clone(), done.clone());
        signers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut attempt = 0usize;
            while !done.load(Ordering::Relaxed) {
                attempt += 1;
                // 127.0.0.2 to 127.0.0.251, another one each time.
                let last = 2 + ((attempt * MIXED_CONNECTIONS + worker) % 250) as u8;
                let source = std::net::Ipv4Addr::new(127, 0, 0, last);
                let (username, password) = match &right {
                    Some(username) => (username.clone(), BENCH_PASSWORD.to_owned()),
                    None => (
                        format!("nobody{worker}x{attempt}"),
                        format!("guess {attempt}"),
                    ),
                };
                let started = Instant::now();
                let status = sign_in(&login_url, source.into(), &username, &password).await;
                answers.push((status, started.elapsed()));
            }
            answers
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(MIXED_SECONDS)).await;
    let counts: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    done.store(true, Ordering::Relaxed);
    let mut answers = Vec::new();
    for signer in signers {
        answers.extend(signer.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let count = |wanted: u16| {
        answers
            .iter()
            .filter(|(status, _)| *status == wanted)
            .count() as u64
    };
    let mut latencies: Vec<Duration> = answers.iter().map(|(_, took)| *took).collect();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    let (signed_in, wrong, throttled, busy) = (count(200), count(401), count(429), count(503));
    assert_eq!(
        signed_in + wrong + throttled + busy,
        answers.len() as u64,
        "only these four answers"
    );
    MixedResult {
        tokens_per_sec: counts[0] as f64 / MIXED_SECONDS,
        introspections_per_sec: counts[1] as f64 / MIXED_SECONDS,
        sign_ins_per_sec: answers.len() as f64 / elapsed,
        sign_in_p50_ms: pct(0.50),
        sign_in_p99_ms: pct(0.99),
        signed_in,
        wrong,
        throttled,
        busy,
    }
}

/// Signs in as a browser does: the login page for its CSRF cookie and token, then the form,
/// from `source`. Returns the status of the form's answer.
async fn sign_in(login_url: &str, source: std::net::IpAddr, username: &str, password: &str) -> u16 {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(source)
        .build()
        .unwrap();
    let page = browser
        .get(login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    let csrf = &page[start..start + page[start..].find('"').unwrap()];
    let form = [
        ("username", username),
        ("password", password),
        ("csrf", csrf),
        ("continue", ""),
    ];
    let response = browser.post(login_url).form(&form).send().await.unwrap();
    response.status().as_u16()
}

async fn pg_exec(admin_url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}
