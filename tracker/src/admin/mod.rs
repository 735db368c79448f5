//! Administration of private mode: the `rill-tracker user|torrent|stats` commands
//! ([`Command`], [`run`], in `cli.rs`) and the JSON REST admin API ([`api::router`]).
//!
//! Both are thin shells over [`Db`]: they validate input first (user names by
//! [`Db::add_user`], info hashes, `.torrent` files, multipliers here), so that bad input
//! is answered with a clear error and writes nothing, then make one database change each.
//! The running tracker learns of a change from the API's `on_change` notification and
//! reloads its registry; the CLI changes the database directly (a running tracker picks
//! the change up at its next reload).
//!
//! The JSON shapes ([`UserView`], [`TorrentView`], [`StatsView`]) are shared by `--json`
//! and the API, so a site's front end sees one format.

pub mod api;
mod cli;
#[cfg(test)]
mod tests;

use std::path::Path;

use rill_common::InfoHash;
use rill_common::metainfo::{Metainfo, MetainfoError};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::AsyncReadExt;

use crate::db::{Db, DbError, UserStats};
use crate::private::{Passkey, Torrent, UploadMultiplier, User};

pub use cli::{Command, Output, TorrentCommand, UserCommand, run};

/// The largest `.torrent` file `torrent add FILE` reads.
pub const MAX_TORRENT_FILE: u64 = 16 * 1024 * 1024;

/// The largest upload multiplier, in percent (100×).
pub const MAX_MULTIPLIER_PERCENT: u32 = 10_000;

/// Why an admin command or API call failed.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The database refused or failed (duplicate, unknown, invalid name, I/O).
    #[error(transparent)]
    Db(#[from] DbError),
    /// Neither an info hash nor a `.torrent` file.
    #[error(
        "{0:?} is neither an info hash (40 hex digits or 32 base32 characters) nor a .torrent file"
    )]
    BadTorrentArg(String),
    /// The `.torrent` file cannot be read.
    #[error("cannot read {path}: {error}")]
    ReadTorrentFile {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The `.torrent` file is larger than [`MAX_TORRENT_FILE`].
    #[error("{0} is larger than {MAX_TORRENT_FILE} bytes: not a .torrent file")]
    TorrentFileTooLarge(String),
    /// The `.torrent` file does not parse.
    #[error("{path} is not a valid .torrent file: {error}")]
    BadTorrentFile {
        /// The file.
        path: String,
        /// Why.
        error: MetainfoError,
    },
    /// An info hash that is not 40 hex digits.
    #[error("invalid info hash {0:?}: expected 40 hex digits")]
    BadInfoHash(String),
    /// A disable reason that is too long or holds control characters.
    #[error("invalid reason: 1 to {MAX_REASON} characters, no control characters")]
    BadReason,
    /// An upload multiplier out of range or malformed.
    #[error(
        "invalid upload multiplier {0:?}: a number from 0 to 100 with at most two decimals, e.g. 1.5"
    )]
    BadMultiplier(String),
}

/// A user as `--json` and the API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// The database id.
    pub id: u64,
    /// The name.
    pub name: String,
    /// The passkey (the secret in the announce URL).
    pub passkey: String,
    /// Why the user is disabled, `null` when enabled.
    pub disabled: Option<String>,
    /// The announce URL, when the caller knows the tracker's base URL (the CLI does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announce_url: Option<String>,
}

impl UserView {
    /// The view of `user`, with an announce URL when `announce_base` is given.
    pub fn new(user: &User, announce_base: Option<&str>) -> Self {
        UserView {
            id: user.id.0,
            name: user.name.clone(),
            passkey: user.passkey.as_str().to_owned(),
            disabled: user.disabled.clone(),
            announce_url: announce_base.map(|base| announce_url(base, &user.passkey)),
        }
    }
}

/// A registered torrent as `--json` and the API show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TorrentView {
    /// The database id.
    pub id: u64,
    /// The info hash, 40 lowercase hex digits.
    pub info_hash: String,
    /// Freeleech: downloads are not credited.
    pub freeleech: bool,
    /// The upload multiplier in percent (100 = 1×).
    pub upload_multiplier_percent: u32,
}

impl From<&Torrent> for TorrentView {
    fn from(torrent: &Torrent) -> Self {
        TorrentView {
            id: torrent.id.0,
            info_hash: torrent.info_hash.to_hex(),
            freeleech: torrent.freeleech,
            upload_multiplier_percent: torrent.upload_multiplier.0,
        }
    }
}

/// A user's credited totals as `--json` and the API show them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    /// The user.
    pub name: String,
    /// Upload credit in bytes (multipliers applied).
    pub uploaded: u64,
    /// Download credit in bytes.
    pub downloaded: u64,
    /// Completed downloads.
    pub snatches: u64,
    /// Seconds seeded.
    pub seeding_secs: u64,
}

impl StatsView {
    /// The view of `user`'s totals.
    pub fn new(user: &User, stats: &UserStats) -> Self {
        StatsView {
            name: user.name.clone(),
            uploaded: stats.uploaded,
            downloaded: stats.downloaded,
            snatches: stats.snatches,
            seeding_secs: stats.seeding_secs,
        }
    }
}

/// A user's private announce URL: `<base>/announce/<passkey>`, where `base` is the
/// tracker's HTTP URL (`http://host:6969`; a trailing `/` or `/announce` is accepted).
pub fn announce_url(base: &str, passkey: &Passkey) -> String {
    let base = base.trim_end_matches('/');
    let base = base.strip_suffix("/announce").unwrap_or(base);
    format!("{base}/announce/{}", passkey.as_str())
}

/// Parses an upload multiplier such as `1`, `1.5` or `0.25` into exact percent (at most
/// two decimals, at most [`MAX_MULTIPLIER_PERCENT`]); no floating point.
pub fn parse_multiplier(text: &str) -> Result<UploadMultiplier, AdminError> {
    let bad = || AdminError::BadMultiplier(text.escape_debug().to_string());
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 3 || fraction.len() > 2 || !digits(whole) {
        return Err(bad());
    }
    if !digits(fraction) || (text.contains('.') && fraction.is_empty()) {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let hundredths: u32 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    let percent = whole * 100 + hundredths;
    if percent > MAX_MULTIPLIER_PERCENT {
        return Err(bad());
    }
    Ok(UploadMultiplier(percent))
}

/// Formats a multiplier in percent as the shortest decimal (`150` -> `1.5`).
pub fn format_multiplier(multiplier: UploadMultiplier) -> String {
    let percent = multiplier.0;
    let text = format!("{}.{:02}", percent / 100, percent % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Parses an info hash given as 40 hex digits (the API's form).
pub fn parse_hex_info_hash(text: &str) -> Result<InfoHash, AdminError> {
    if text.len() != 40 {
        return Err(AdminError::BadInfoHash(truncated(text)));
    }
    InfoHash::from_hex(text).map_err(|_| AdminError::BadInfoHash(truncated(text)))
}

/// The info hash a CLI argument names: 40 hex digits, 32 base32 characters, or the path
/// of a `.torrent` file (read up to [`MAX_TORRENT_FILE`] bytes, hashed from its raw
/// `info` dictionary).
pub async fn resolve_torrent(arg: &str) -> Result<InfoHash, AdminError> {
    if let Ok(hash) = arg.parse::<InfoHash>() {
        return Ok(hash);
    }
    let path = Path::new(arg);
    let looks_like_file = arg.ends_with(".torrent") || tokio::fs::metadata(path).await.is_ok();
    if !looks_like_file {
        return Err(AdminError::BadTorrentArg(truncated(arg)));
    }
    let read_error = |error| AdminError::ReadTorrentFile {
        path: arg.to_owned(),
        error,
    };
    let file = tokio::fs::File::open(path).await.map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_TORRENT_FILE + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_TORRENT_FILE {
        return Err(AdminError::TorrentFileTooLarge(arg.to_owned()));
    }
    let metainfo = Metainfo::from_bytes(&bytes).map_err(|error| AdminError::BadTorrentFile {
        path: arg.to_owned(),
        error,
    })?;
    Ok(metainfo.info_hash)
}

/// Echoes at most 80 characters of bad input back in an error message.
fn truncated(text: &str) -> String {
    let mut out: String = text.chars().take(80).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// A fresh passkey from the thread's CSPRNG.
fn new_passkey() -> Passkey {
    Passkey::generate(&mut rand::rng())
}

/// Creates a user with a fresh passkey.
async fn create_user(db: &Db, name: &str) -> Result<User, AdminError> {
    Ok(db.add_user(name, &new_passkey()).await?)
}

/// Gives a user a fresh passkey.
async fn renew_passkey(db: &Db, name: &str) -> Result<User, AdminError> {
    Ok(db.reset_passkey(name, &new_passkey()).await?)
}

/// The longest disable reason, in characters.
pub const MAX_REASON: usize = 200;

/// Checks a disable reason (it is sent to the user's client as a `failure reason`).
fn check_reason(reason: &str) -> Result<(), AdminError> {
    let count = reason.chars().count();
    if (1..=MAX_REASON).contains(&count) && !reason.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(AdminError::BadReason)
    }
}

/// Disables a user after checking the reason.
async fn disable(db: &Db, name: &str, reason: &str) -> Result<User, AdminError> {
    check_reason(reason)?;
    Ok(db.disable_user(name, reason).await?)
}

/// The default reason a disabled user's announces are refused with.
pub const DEFAULT_DISABLE_REASON: &str = "disabled by the tracker's administrator";
