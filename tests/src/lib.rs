//! Support code for the end-to-end tests (`tests/tests/e2e.rs`).
//!
//! Map:
//! - [`create`]: makes torrents with mktorrent and transmission-create.
//! - [`tools`]: gates on external programs ([`require_tool`]: skip locally, fail in CI).
//! - [`fixtures`]: paths and expectations of `fixtures/torrents/` ([`valid_fixtures`],
//!   [`malformed_fixtures`]).
//! - [`view`]: [`ToolView`], what a tool reports about a torrent, and [`ToolView::diff`].
//! - [`transmission`]: runs and parses `transmission-show` ([`transmission_show`]).
//! - [`libtorrent`]: runs the Python drivers in `tests/drivers/` ([`libtorrent_view`]).
//! - [`peers`]: real peers on loopback: [`LibtorrentPeer`] (`tests/drivers/lt_peer.py`),
//!   [`TransmissionPeer`] (`transmission-cli`), and [`http_scrape`] to ask a tracker.
//! - [`rill`]: builds and runs the `rill` binary ([`rill_bin`], [`run_rill`]).
//! - [`tracker`]: rill-tracker in process on port 0 ([`TestTracker`], [`UdpClient`]).

pub mod create;
pub mod fixtures;
pub mod libtorrent;
pub mod peers;
pub mod rill;
pub mod tools;
pub mod tracker;
pub mod transmission;
pub mod view;

use std::path::PathBuf;

pub use create::{mktorrent, transmission_create};
pub use fixtures::{fixtures_dir, malformed_fixtures, valid_fixtures};
pub use libtorrent::{libtorrent_check, libtorrent_create, libtorrent_view};
pub use peers::{
    LibtorrentOptions, LibtorrentPeer, RillOptions, RillPeer, TransmissionOptions,
    TransmissionPeer, free_port, http_get, http_scrape, loopback_address, torrent_info_hash,
};
pub use rill::{rill_bin, rill_command, run_rill};
pub use tools::{require_tool, tool_available};
pub use tracker::{HttpReply, TestTracker, UdpClient, tracker_bin};
pub use transmission::{parse_show, transmission_show};
pub use view::{Expected, FileView, ToolView};

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}
