//! The admin commands (`rill-tracker user add NAME`, …) as a clap [`Command`], and [`run`],
//! which performs one and returns the text to print (plain text, or JSON with `--json`).

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde::Serialize;

use super::{
    AdminError, DEFAULT_DISABLE_REASON, StatsView, TorrentView, UserView, announce_url,
    create_user, disable, format_multiplier, parse_multiplier, renew_passkey, resolve_torrent,
};
use crate::db::Db;
use crate::private::{Torrent, UploadMultiplier, User};

/// An admin command (`rill-tracker user|torrent|stats …`); flatten it into the binary's
/// subcommands.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Manage users (private mode).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage registered torrents (private mode).
    #[command(subcommand)]
    Torrent(TorrentCommand),
    /// Show credited totals: one user's, or every user's.
    Stats {
        /// The user (all users when omitted).
        name: Option<String>,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
}

/// `rill-tracker user …`.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Add a user; prints its passkey and announce URL.
    Add {
        /// The user name (1 to 64 characters).
        name: String,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
    /// List users.
    List {
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
    /// Disable a user: its announces are refused with the reason.
    Disable {
        /// The user name.
        name: String,
        /// The reason the user's client is shown.
        #[arg(long)]
        reason: Option<String>,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
    /// Enable a disabled user again.
    Enable {
        /// The user name.
        name: String,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
    /// Give a user a new passkey (the old announce URL stops working).
    PasskeyReset {
        /// The user name.
        name: String,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
}

/// `rill-tracker torrent …`.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum TorrentCommand {
    /// Register a torrent by info hash or .torrent file.
    Add {
        /// 40 hex digits, 32 base32 characters, or a .torrent file.
        #[arg(value_name = "INFOHASH|FILE.torrent")]
        torrent: String,
        /// Do not count downloads.
        #[arg(long)]
        freeleech: bool,
        /// Upload multiplier, e.g. 1.5 (default 1).
        #[arg(long, value_name = "X", value_parser = parse_multiplier_arg)]
        multiplier: Option<UploadMultiplier>,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
    /// Unregister a torrent (users' credited totals are kept).
    Remove {
        /// 40 hex digits, 32 base32 characters, or a .torrent file.
        #[arg(value_name = "INFOHASH|FILE.torrent")]
        torrent: String,
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
    /// List registered torrents.
    List {
        /// Output format.
        #[command(flatten)]
        output: Output,
    },
}

/// The output format flag every admin command takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Args)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_multiplier_arg(text: &str) -> Result<UploadMultiplier, String> {
    parse_multiplier(text).map_err(|e| e.to_string())
}

/// Runs one admin command against `db` and returns what to print. `announce_base` is the
/// tracker's public HTTP URL (`http://host:6969`), used to print announce URLs.
pub async fn run(command: &Command, db: &Db, announce_base: &str) -> Result<String, AdminError> {
    match command {
        Command::User(user) => run_user(user, db, announce_base).await,
        Command::Torrent(torrent) => run_torrent(torrent, db).await,
        Command::Stats { name, output } => {
            let views = match name {
                Some(name) => {
                    let user = db.user(name).await?;
                    let stats = db.user_stats(name).await?;
                    vec![StatsView::new(&user, &stats)]
                }
                None => db
                    .all_user_stats()
                    .await?
                    .iter()
                    .map(|(user, stats)| StatsView::new(user, stats))
                    .collect(),
            };
            if output.json {
                return if name.is_some() {
                    json(&views.first())
                } else {
                    json(&views)
                };
            }
            Ok(stats_table(&views))
        }
    }
}

async fn run_user(
    command: &UserCommand,
    db: &Db,
    announce_base: &str,
) -> Result<String, AdminError> {
    let base = Some(announce_base);
    match command {
        UserCommand::Add { name, output } => {
            let user = create_user(db, name).await?;
            show_user(&user, base, *output, "added user")
        }
        UserCommand::List { output } => {
            let users = db.list_users().await?;
            if output.json {
                let views: Vec<UserView> = users.iter().map(|u| UserView::new(u, base)).collect();
                return json(&views);
            }
            let mut text = format!("{:>6}  {:<32}  {:<24}  status\n", "id", "passkey", "name");
            for user in &users {
                let _ = writeln!(
                    text,
                    "{:>6}  {}  {:<24}  {}",
                    user.id.0,
                    user.passkey.as_str(),
                    user.name,
                    status(user)
                );
            }
            let _ = writeln!(text, "{} user(s)", users.len());
            Ok(text)
        }
        UserCommand::Disable {
            name,
            reason,
            output,
        } => {
            let reason = reason.as_deref().unwrap_or(DEFAULT_DISABLE_REASON);
            let user = disable(db, name, reason).await?;
            show_user(&user, None, *output, "disabled user")
        }
        UserCommand::Enable { name, output } => {
            let user = db.enable_user(name).await?;
            show_user(&user, None, *output, "enabled user")
        }
        UserCommand::PasskeyReset { name, output } => {
            let user = renew_passkey(db, name).await?;
            show_user(&user, base, *output, "new passkey for user")
        }
    }
}

async fn run_torrent(command: &TorrentCommand, db: &Db) -> Result<String, AdminError> {
    match command {
        TorrentCommand::Add {
            torrent,
            freeleech,
            multiplier,
            output,
        } => {
            let info_hash = resolve_torrent(torrent).await?;
            let multiplier = multiplier.unwrap_or_default();
            let torrent = db
                .add_torrent_with(&info_hash, *freeleech, multiplier)
                .await?;
            show_torrent(&torrent, *output, "registered torrent")
        }
        TorrentCommand::Remove { torrent, output } => {
            let info_hash = resolve_torrent(torrent).await?;
            let torrent = db.remove_torrent(&info_hash).await?;
            show_torrent(&torrent, *output, "removed torrent")
        }
        TorrentCommand::List { output } => {
            let torrents = db.list_torrents().await?;
            if output.json {
                let views: Vec<TorrentView> = torrents.iter().map(TorrentView::from).collect();
                return json(&views);
            }
            let mut text = format!("{:>6}  {:<40}  terms\n", "id", "info hash");
            for torrent in &torrents {
                let _ = writeln!(
                    text,
                    "{:>6}  {}  {}",
                    torrent.id.0,
                    torrent.info_hash.to_hex(),
                    terms(torrent)
                );
            }
            let _ = writeln!(text, "{} torrent(s)", torrents.len());
            Ok(text)
        }
    }
}

fn show_user(
    user: &User,
    base: Option<&str>,
    output: Output,
    what: &str,
) -> Result<String, AdminError> {
    if output.json {
        return json(&UserView::new(user, base));
    }
    let mut text = format!(
        "{what} {} (id {}, {})\n",
        user.name,
        user.id.0,
        status(user)
    );
    if let Some(base) = base {
        let _ = writeln!(text, "passkey: {}", user.passkey.as_str());
        let _ = writeln!(text, "announce URL: {}", announce_url(base, &user.passkey));
    }
    Ok(text)
}

fn show_torrent(torrent: &Torrent, output: Output, what: &str) -> Result<String, AdminError> {
    if output.json {
        return json(&TorrentView::from(torrent));
    }
    Ok(format!(
        "{what} {} (id {}, {})\n",
        torrent.info_hash.to_hex(),
        torrent.id.0,
        terms(torrent)
    ))
}

fn status(user: &User) -> String {
    match &user.disabled {
        Some(reason) => format!("disabled: {reason}"),
        None => "enabled".to_owned(),
    }
}

fn terms(torrent: &Torrent) -> String {
    let mut text = format!("upload ×{}", format_multiplier(torrent.upload_multiplier));
    if torrent.freeleech {
        text.push_str(", freeleech");
    }
    text
}

fn stats_table(views: &[StatsView]) -> String {
    let mut text = format!(
        "{:<24}  {:>16}  {:>16}  {:>8}  {:>12}\n",
        "name", "uploaded", "downloaded", "snatches", "seeding (s)"
    );
    for view in views {
        let _ = writeln!(
            text,
            "{:<24}  {:>16}  {:>16}  {:>8}  {:>12}",
            view.name, view.uploaded, view.downloaded, view.snatches, view.seeding_secs
        );
    }
    text
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, AdminError> {
    // Serializing these plain structs cannot fail; fall back to `null` rather than panic.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    text.push('\n');
    Ok(text)
}
