//! The `rill-tracker` command: parse arguments, build the configuration, bind, serve until
//! SIGINT or SIGTERM (which drains private mode's accounting before exit). The one place an
//! error becomes an exit code.
//!
//! With no `database` configured, serving uses `sqlite://rill-tracker.db` in both modes
//! ([`Config::use_default_database`]): the file is created on first start and keeps the
//! swarms; `--db memory` keeps everything in memory instead (public mode).
//!
//! The admin commands (`user add`, `torrent add`, `stats`, …, from `rill_tracker::admin`)
//! open the configured database (`--config`, `--db`, else `sqlite://rill-tracker.db`), make
//! one change, print the result and exit; a running tracker picks the change up at its next
//! flush. The admin REST API is served under `/admin` when `admin_token` is set (wired in
//! `rill_tracker::Tracker::open`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use rill_tracker::config::Mode;
use rill_tracker::{Config, Listeners};

/// Rill's BitTorrent tracker: public HTTP and UDP on port 6969 with no configuration.
#[derive(Debug, Parser)]
#[command(name = "rill-tracker", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve announces and scrapes (the default).
    Serve(ServeArgs),
    #[command(flatten)]
    Admin(rill_tracker::admin::Command),
}

/// Where the configuration and database are: for serving and for the admin commands.
#[derive(Debug, Clone, clap::Args)]
struct Source {
    /// A TOML configuration file (see --print-config).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://…, or "memory" for none (public mode)
    /// [default: sqlite://rill-tracker.db, created on first start].
    #[arg(long, value_name = "URL", global = true)]
    db: Option<String>,
}

impl Source {
    fn load(&self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(url) = &self.db {
            config.database = Some(url.clone());
        }
        Ok(config)
    }
}

#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// Print the default configuration, with comments, and exit.
    #[arg(long)]
    print_config: bool,
    /// HTTP listen address, or "off" [default: 0.0.0.0:6969].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    http: Option<Listen>,
    /// UDP listen address, or "off" [default: 0.0.0.0:6969].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    udp: Option<Listen>,
    /// Private mode: passkeys, registered torrents, accounting.
    #[arg(long)]
    private: bool,
}

/// A listen address or "off".
#[derive(Debug, Clone, Copy)]
enum Listen {
    Off,
    On(SocketAddr),
}

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Listen::Off);
    }
    text.parse()
        .map(Listen::On)
        .map_err(|_| format!("{text:?} is not an address like 0.0.0.0:6969, or \"off\""))
}

fn apply(listen: Option<Listen>, enabled: &mut bool, addr: &mut SocketAddr) {
    match listen {
        None => {}
        Some(Listen::Off) => *enabled = false,
        Some(Listen::On(a)) => {
            *enabled = true;
            *addr = a;
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Admin(command)) => {
            return match admin(&command, &cli.source) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rill-tracker: error: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        None => cli.serve,
    };
    if args.print_config {
        print!("{}", Config::print_default());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match serve(args, &cli.source) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rill-tracker: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one admin command against the configured database and prints its output.
fn admin(command: &rill_tracker::admin::Command, source: &Source) -> Result<()> {
    let mut config = source.load()?;
    config.use_default_database();
    let Some(url) = config.database_url().map(str::to_owned) else {
        anyhow::bail!("the admin commands need a database, not \"memory\"");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let text = runtime.block_on(async {
        let db = rill_tracker::db::Db::open(&url).await?;
        let result = rill_tracker::admin::run(command, &db, &config.public_url()).await;
        db.close().await;
        anyhow::Ok(result?)
    })?;
    print!("{text}");
    Ok(())
}

fn serve(args: ServeArgs, source: &Source) -> Result<()> {
    let mut config = source.load()?;
    apply(args.http, &mut config.http.enabled, &mut config.http.listen);
    apply(args.udp, &mut config.udp.enabled, &mut config.udp.listen);
    if args.private {
        config.mode = Mode::Private;
    }
    config.use_default_database();
    config.validate()?;
    if !config.http.enabled && !config.udp.enabled {
        anyhow::bail!("nothing to serve: both HTTP and UDP are off");
    }
    let listeners = Listeners::bind(&config)?;
    let (mode, suffix) = match config.mode {
        Mode::Public => ("public", ""),
        Mode::Private => ("private", "/<passkey>"),
    };
    let mut lines = Vec::new();
    if let Some(addr) = listeners.http.as_ref().and_then(|l| l.local_addr().ok()) {
        lines.push(format!("http://{addr}/announce{suffix}"));
    }
    if let Some(addr) = listeners.udp.as_ref().and_then(|s| s.local_addr().ok()) {
        lines.push(format!("udp://{addr}/announce{suffix}"));
    }
    let database = config.database_url().map(str::to_owned);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Open (and migrate) the database before saying where the tracker serves, and
        // take over SIGINT and SIGTERM before that too: a signal sent as soon as the line
        // is out must stop the tracker gracefully, not kill it.
        let tracker = rill_tracker::Tracker::open(config).await?;
        let shutdown = shutdown_signal().context("cannot listen for signals")?;
        match &database {
            Some(url) => println!(
                "rill-tracker: {mode} tracker on {} (database {url})",
                lines.join(" and ")
            ),
            None => println!("rill-tracker: {mode} tracker on {}", lines.join(" and ")),
        }
        anyhow::Ok(tracker.serve(listeners, shutdown).await?)
    })?;
    Ok(())
}

/// A future that completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM. The handlers are
/// installed when this returns (not when the future is first polled).
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// A future that completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
