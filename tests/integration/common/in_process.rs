//! A server built in the test process, as `portcullis serve` builds it (`cli::serve::build`),
//! on a tokio runtime of its own: the test's runtime may block (on a CLI command, a `Drop`)
//! without stopping the server, and what the server spawns ends with it.
//!
//! Each thread of that runtime carries the test's clock ([`ClockOffset`]) and this server's
//! log, both thread-locals: several servers run at once in one process, each with its own time
//! and its own log lines.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, Once, mpsc};

use clap::Parser;
use portcullis::cli::{Cli, Command};
use portcullis::clock::ClockOffset;
use tokio::sync::oneshot;

/// A running in-process server; stops when dropped.
pub struct InProcess {
    pub address: SocketAddr,
    pub issuer: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Parses `portcullis serve` with `args` (after `--bind 127.0.0.1:0`, the database and the
/// keys directory), builds the server and starts serving. Panics if it does not start.
pub fn start(
    database_url: &str,
    keys_dir: &Path,
    args: &[&str],
    clock: &ClockOffset,
    logs: &Arc<Mutex<String>>,
) -> InProcess {
    let keys_dir = keys_dir.to_str().expect("a UTF-8 keys directory");
    let command_line = ["portcullis", "serve", "--bind", "127.0.0.1:0"]
        .into_iter()
        .chain(["--database-url", database_url, "--keys-dir", keys_dir])
        .chain(args.iter().copied());
    let Command::Serve(serve_args) = Cli::try_parse_from(command_line)
        .unwrap_or_else(|e| panic!("serve {args:?}: {e}"))
        .command
    else {
        unreachable!("the command line says serve")
    };
    install_log_subscriber();

    let on_each_thread = {
        let (clock, logs) = (clock.clone(), Arc::clone(logs));
        move || {
            clock.install_on_this_thread();
            LOG.with(|log| *log.borrow_mut() = Some(Arc::clone(&logs)));
        }
    };
    let (started_tx, started) = mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        on_each_thread();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .on_thread_start(on_each_thread)
            .build()
            .expect("a runtime for the server");
        runtime.block_on(async move {
            match portcullis::cli::serve::build(*serve_args).await {
                Ok(app) => {
                    let _ = started_tx.send(Ok((app.address(), app.issuer().to_owned())));
                    app.run_until(async {
                        let _ = stopped.await;
                    })
                    .await;
                }
                Err(e) => {
                    let _ = started_tx.send(Err(format!("{e:#}")));
                }
            }
        });
    });
    match started.recv() {
        Ok(Ok((address, issuer))) => InProcess {
            address,
            issuer,
            stop: Some(stop),
            thread: Some(thread),
        },
        Ok(Err(error)) => panic!("the server did not start: {error}"),
        Err(_) => panic!(
            "the server's thread ended before it started: {:?}",
            thread.join()
        ),
    }
}

impl Drop for InProcess {
    /// Stops as SIGTERM would, and waits: the database outlives its servers.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

thread_local! {
    /// The log of the server whose runtime owns this thread.
    static LOG: RefCell<Option<Arc<Mutex<String>>>> = const { RefCell::new(None) };
}

/// One subscriber for the process, at the level the child-process servers log at (`info`,
/// the harness's `PORTCULLIS_LOG`) and in `portcullis serve`'s format, writing each line to
/// the log of the server whose thread emitted it; lines from other threads are dropped.
fn install_log_subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(|| ThisThreadsLog)
            .with_ansi(false)
            .init();
    });
}

struct ThisThreadsLog;

impl std::io::Write for ThisThreadsLog {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        LOG.with(|log| {
            if let Some(log) = log.borrow().as_ref() {
                log.lock().unwrap().push_str(&String::from_utf8_lossy(line));
            }
        });
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
