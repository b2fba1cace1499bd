//! `netsplit serve [--store DIR] [--bind ADDR]`: serves a store read-only over HTTP until
//! SIGINT/SIGTERM (the server is `crate::serve`). Prints the URL it serves on (first line of
//! stdout, also with `--bind …:0`); binding to anything but a loopback address prints a warning,
//! since the store then reaches whoever can reach the machine, without authentication.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// The arguments of `netsplit serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The store to serve.
    #[arg(long, default_value = "reports")]
    pub store: PathBuf,
    /// Address and port to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub bind: String,
}

fn bind_addr(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            crate::error::bad_input(format!(
                "--bind {s:?}: expected ADDRESS:PORT, e.g. 127.0.0.1:8080"
            ))
        })
}

/// Runs `netsplit serve`; returns the process exit code.
pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let served = crate::report::serve::Served::new(&args.store)
        .map_err(|e| crate::error::bad_input(format!("--store {}: {e}", args.store.display())))?;
    let addr = bind_addr(&args.bind)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("netsplit-serve")
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| crate::error::bad_input(format!("--bind {addr}: {e}")))?;
        let local = listener.local_addr()?;
        if !local.ip().is_loopback() {
            esay!(
                "netsplit: warning: serving on {local}, which is not a loopback address: \
                 anyone who can reach this machine can read the store (read-only, no \
                 authentication)"
            );
        }
        say!(
            "netsplit: serving {} at http://{local}/ (read-only; Ctrl-C stops)",
            served.root().display()
        );
        let app = crate::report::serve::app(served);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                use tokio::signal::unix::{signal, SignalKind};
                match (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) {
                    (Ok(mut i), Ok(mut t)) => {
                        tokio::select! {
                            _ = i.recv() => {}
                            _ = t.recv() => {}
                        }
                    }
                    _ => std::future::pending::<()>().await,
                }
            })
            .await?;
        anyhow::Ok(0)
    })
}
