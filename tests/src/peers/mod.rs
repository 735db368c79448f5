//! Real BitTorrent peers for interop tests: libtorrent ([`LibtorrentPeer`], through
//! `tests/drivers/lt_peer.py`) and Transmission ([`TransmissionPeer`], through
//! `transmission-cli`), each on its own loopback address, plus a tracker scrape client
//! ([`http_scrape`]) to check what a tracker recorded. [`RillPeer`] drives the `rill` binary
//! itself the same way, through its `--json` progress lines.
//!
//! Invariants:
//! - Every process is started by this module and ended by its owner's `Drop` (by its PID, never
//!   by name); every wait is bounded and fails with the process's recent output in the error.
//! - Each peer listens on one explicit IPv4 loopback address ([`loopback_address`] hands out
//!   127.0.0.2, 127.0.0.3, … in turn), so a tracker sees distinct peers, and libtorrent's
//!   one-connection-per-IP rule and Transmission's address checks never merge them.
//! - Peers learn of each other from a tracker or an explicit address: DHT (unless a test turns
//!   it on), local peer discovery, UPnP/NAT-PMP and uTP are off. PEX is off for Transmission
//!   and on for libtorrent (its default), so a libtorrent peer may also pass on addresses of
//!   peers it is connected to.
//!
//! Loopback facts these drivers rely on (see also `/work/shared/PEERS.md`):
//! - Transmission 3.00 drops 127.x peers it learns from a tracker, so it never dials them: the
//!   other side must connect to it. libtorrent dials every peer of a tracker reply, seeding or
//!   not, so "libtorrent + Transmission through a tracker" works when libtorrent announces
//!   after Transmission (use [`LibtorrentPeer::reannounce`] or start it second).
//! - Both announce from their own listen address (libtorrent binds its tracker connections to
//!   the listen socket; Transmission to `bind-address-ipv4`), so the tracker's view of a peer's
//!   address is the address it listens on.

mod libtorrent;
pub mod lt_dht;
mod process;
mod rill;
mod scrape;
mod transmission;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
use rill_common::InfoHash;
use rill_common::metainfo::Metainfo;

pub use libtorrent::{LibtorrentOptions, LibtorrentPeer};
pub use rill::{RillOptions, RillPeer};
pub use scrape::{http_get, http_scrape};
pub use transmission::{TransmissionOptions, TransmissionPeer};

/// The next loopback address of this process: 127.0.0.2, 127.0.0.3, … 127.0.0.254, then
/// around again. 127.0.0.1 is left to trackers and other servers.
pub fn loopback_address() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) % 253;
    Ipv4Addr::new(127, 0, 0, 2 + n as u8)
}

/// A TCP port that was free on `address` a moment ago (bound on port 0, then released), for
/// programs that cannot be told to pick their own, like `transmission-cli`.
pub fn free_port(address: Ipv4Addr) -> anyhow::Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(address, 0))
        .with_context(|| format!("binding {address}:0 to find a free port"))?;
    Ok(listener.local_addr()?.port())
}

/// The v1 info-hash of the torrent file at `path` (SHA-1 of its raw `info` dictionary).
pub fn torrent_info_hash(path: &Path) -> anyhow::Result<InfoHash> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let metainfo = Metainfo::from_bytes(&bytes)
        .with_context(|| format!("parsing torrent {}", path.display()))?;
    Ok(InfoHash::of_info(metainfo.raw_info()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_distinct_and_never_127_0_0_1() {
        let first = loopback_address();
        let second = loopback_address();
        assert_ne!(first, second);
        for address in [first, second] {
            assert!(address.is_loopback());
            assert_ne!(address, Ipv4Addr::LOCALHOST);
            assert_ne!(address.octets()[3], 255);
        }
    }

    #[test]
    fn free_port_can_be_bound_on_another_loopback_address() {
        let address = loopback_address();
        let port = free_port(address).unwrap();
        assert_ne!(port, 0);
        TcpListener::bind(SocketAddrV4::new(address, port)).unwrap();
    }
}
