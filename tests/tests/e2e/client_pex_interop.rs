//! Peer exchange (BEP 11) and the `port` message (BEP 5) between rill and libtorrent 2.0.8 on
//! loopback, with no tracker and no DHT lookups, so an address can only come from PEX (or, for
//! DHT nodes, from `port`):
//! - rill given only a libtorrent peer L (a leecher held near empty by a download limit) learns
//!   the libtorrent seed S from L's `ut_pex` and downloads the torrent from S;
//! - a libtorrent leecher given only rill R (a leecher of S, slowed by `--max-down` so that it
//!   stays connected to S) learns S from R's `ut_pex`, connects to S and downloads;
//! - `port`: a libtorrent peer with its DHT on (no bootstrap) and rill (its one bootstrap node
//!   unreachable) each end up with the other's DHT node in the routing table;
//! - a private torrent (BEP 27): rill's extended handshake has no `ut_pex`, its handshake no
//!   DHT bit, and it sends no `port`, where the same data as a public torrent has all three.
//!
//! The seeds run with `--no-outgoing`: every connection a seed has was made by the other side,
//! so "S saw a connection from X" means X dialled S, which it could only do by learning S's
//! address from PEX. Downloads are compared byte for byte. libtorrent sends its first
//! `ut_pex` 0.5–1.5 s after a peer's extended handshake (then once a minute); rill sends its
//! own 5 s after the peer's. Missing libtorrent skips locally and fails with CI set
//! ([`require_tool`]). Every wait is bounded in time; nothing sleeps.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rill_common::PeerId;
use rill_common::wire::extension::{ExtendedHandshake, UT_METADATA, UT_PEX};
use rill_common::wire::{Handshake, Reserved};
use rill_tests::{
    LibtorrentOptions, LibtorrentPeer, RillOptions, RillPeer, require_tool, run_rill,
    torrent_info_hash,
};
use serde_json::Value;

use crate::client::{DOWNLOAD, EXIT, FILES, Payload};

/// Bound on any one wait on a driver's event.
const WAIT: Duration = Duration::from_secs(60);
/// The libtorrent leecher L's download limit (bytes/s) in the first test: a piece (64 KiB)
/// a minute at most, so L can never serve rill the torrent.
const HELD_BACK: u64 = 1024;
/// rill R's download limit in the second test: 3.2 MB at 32 KiB/s keeps it a leecher, and
/// so connected to the seed, for about 100 s; its first `ut_pex` goes 5 s after L's
/// extended handshake.
const SLOW_RILL: &str = "32K";
/// A UDP address where no DHT node runs: rill's DHT needs a bootstrap node to start.
const NO_NODE: &str = "127.0.0.1:1";

/// The address and port of a driver's `peer_connected` event.
fn endpoint(event: &Value) -> Option<SocketAddr> {
    let ip: Ipv4Addr = event["address"].as_str()?.parse().ok()?;
    let port = u16::try_from(event["port"].as_u64()?).ok()?;
    Some(SocketAddr::from((ip, port)))
}

/// Waits for `peer` to report a connection whose address `pick` accepts; returns it.
fn wait_connected(
    peer: &mut LibtorrentPeer,
    mut pick: impl FnMut(SocketAddr) -> bool,
) -> SocketAddr {
    peer.wait_event("peer_connected", WAIT, |event| {
        Ok(endpoint(event).filter(|addr| pick(*addr)))
    })
    .unwrap()
}

#[test]
fn rill_learns_a_libtorrent_seed_from_a_libtorrent_peers_pex() {
    if !require_tool("libtorrent") {
        return;
    }
    rill_tests::rill_bin();
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed_options = LibtorrentOptions::default().no_outgoing();
    let mut seed = LibtorrentPeer::seed(&payload.torrent, &payload.seed_dir, seed_options).unwrap();
    let seed_addr = seed.addr();
    let options = LibtorrentOptions::default()
        .peer(seed_addr)
        .download_limit(HELD_BACK);
    let mut peer =
        LibtorrentPeer::leech(&payload.torrent, &dir.path().join("lt"), options).unwrap();
    wait_connected(&mut peer, |addr| addr == seed_addr);

    // rill knows only L: no tracker in the torrent, RILL_NO_DHT set.
    let out = dir.path().join("rill");
    let options = RillOptions::default().peer(peer.addr());
    let mut rill = RillPeer::download(&[&payload.torrent], &out, options).unwrap();
    let last = rill.wait_final(DOWNLOAD).unwrap();
    assert_eq!(last["have"], last["pieces"], "{last}");
    payload.assert_copied(&out, &FILES);
    assert!(rill.wait_exit(EXIT).unwrap().success());

    // S dials nobody and L has its own address: another connection to S is rill's own.
    let peer_ip = peer.addr().ip();
    let rill_at_seed = wait_connected(&mut seed, |addr| addr.ip() != peer_ip);
    eprintln!("rill connected to the seed from {rill_at_seed}");
    // And L, held back, could not have served the torrent itself.
    let status = peer.status(WAIT).unwrap();
    let done = status["total_done"].as_u64().unwrap();
    let wanted = status["total_wanted"].as_u64().unwrap();
    assert!(done < wanted, "L has the whole torrent: {status}");
}

#[test]
fn libtorrent_learns_a_seed_from_rills_pex() {
    if !require_tool("libtorrent") {
        return;
    }
    rill_tests::rill_bin();
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed_options = LibtorrentOptions::default().no_outgoing();
    let mut seed = LibtorrentPeer::seed(&payload.torrent, &payload.seed_dir, seed_options).unwrap();
    let seed_addr = seed.addr();

    // R leeches from S, slowly, so that it stays a leecher (rill drops seed-to-seed links).
    let options = RillOptions::default()
        .peer(seed_addr)
        .args(["--max-down", SLOW_RILL]);
    let rill = RillPeer::download(&[&payload.torrent], &dir.path().join("rill"), options).unwrap();
    let rill_at_seed = wait_connected(&mut seed, |_| true);

    // L knows only R: no tracker, DHT and LSD off.
    let out = dir.path().join("lt");
    let options = LibtorrentOptions::default().peer(rill.addr());
    let mut leech = LibtorrentPeer::leech(&payload.torrent, &out, options).unwrap();
    let leech_ip = leech.addr().ip();
    wait_connected(&mut leech, |addr| addr == seed_addr);
    leech.wait_finished(DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&out, &FILES);
    // S dials nobody: the connection from L's address is one L made.
    let leech_at_seed = wait_connected(&mut seed, |addr| addr.ip() == leech_ip);
    eprintln!("rill at the seed: {rill_at_seed}; libtorrent at the seed: {leech_at_seed}");
    rill.stop().unwrap();
}

/// The nodes in the DHT table rill saved on exit under `dir/.rill/dht.json`.
fn saved_dht_nodes(dir: &Path) -> Vec<SocketAddr> {
    let path = dir.join(".rill").join("dht.json");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let state: Value = serde_json::from_str(&text).unwrap();
    state["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes in {text}"))
        .iter()
        .map(|node| node["addr"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn rill_and_libtorrent_learn_each_others_dht_node_from_the_port_message() {
    if !require_tool("libtorrent") {
        return;
    }
    rill_tests::rill_bin();
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    // rill's one bootstrap node does not exist: its table can only fill from `port`.
    let options = RillOptions::default().args(["--dht-bootstrap", NO_NODE]);
    let rill = RillPeer::seed(&payload.torrent, &payload.seed_dir, options).unwrap();
    // libtorrent's DHT is on (its handshake carries the DHT bit) with no bootstrap node.
    let out = dir.path().join("lt");
    let options = LibtorrentOptions::default().peer(rill.addr()).dht(&[]);
    let mut leech = LibtorrentPeer::leech(&payload.torrent, &out, options).unwrap();
    leech.wait_finished(DOWNLOAD).unwrap();
    payload.assert_copied_eventually(&out, &FILES);

    // rill's node, pinged by libtorrent after rill's `port`, joins libtorrent's table; it is
    // on rill's address as libtorrent sees it (127.0.0.1). Polled once per progress event.
    let deadline = Instant::now() + WAIT;
    let nodes = loop {
        let nodes = leech.dht_nodes(WAIT).unwrap();
        if nodes.iter().any(|node| node.ip() == rill.addr().ip()) {
            break nodes;
        }
        assert!(
            Instant::now() < deadline,
            "rill's node never joined libtorrent's table: {nodes:?}"
        );
        leech
            .wait_event("progress", WAIT, |_| Ok(Some(())))
            .unwrap();
    };
    eprintln!("libtorrent's DHT table: {nodes:?}");

    // libtorrent's node, pinged by rill after libtorrent's `port`, is in the table rill
    // saves on exit (libtorrent's DHT runs on its TCP listen port's number). rill also adds
    // nodes that query it, as libtorrent's ping of rill's node does, so this holds by either
    // path; the ping from `port` alone is `torrent::task::dht`'s unit test.
    // Ctrl-C: rill saves its table and exits 130.
    let status = rill.stop().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    let saved = saved_dht_nodes(&payload.seed_dir);
    assert!(
        saved.contains(&leech.addr()),
        "libtorrent's node {} not in rill's table {saved:?}",
        leech.addr()
    );
}

/// What a raw peer saw of rill on one connection: its handshake, and every message up to and
/// including the answer to a `ut_metadata` request sent after rill's extended handshake (the
/// link is in order, so a `port` sent at connection time comes before that answer).
struct Seen {
    reserved: Reserved,
    /// Message ids in arrival order (keep-alives left out).
    ids: Vec<u8>,
    extended: ExtendedHandshake,
}

/// BEP 3 message ids used here.
const PORT: u8 = 9;
const EXTENDED: u8 = 20;
/// The id we ask rill to send `ut_metadata` under.
const OUR_UT_METADATA: u8 = 3;

/// Reads one length-prefixed message: `(id, payload)`, or `None` for a keep-alive.
fn read_message(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let len = u32::from_be_bytes(len) as usize;
    assert!(len <= 1 << 20, "a {len}-byte message");
    if len == 0 {
        return None;
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    let id = body.remove(0);
    Some((id, body))
}

fn write_extended(stream: &mut TcpStream, ext: u8, payload: &[u8]) {
    let len = u32::try_from(payload.len() + 2).unwrap();
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend([EXTENDED, ext]);
    frame.extend_from_slice(payload);
    stream.write_all(&frame).unwrap();
}

/// Connects to rill at `addr` for `torrent` with the extension, fast and DHT bits set.
fn look_at_rill(addr: SocketAddr, torrent: &Path) -> Seen {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    // Each read is bounded; so is the number of messages read below.
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let reserved = Reserved::NONE
        .with_extension_protocol(true)
        .with_fast(true)
        .with_dht(true);
    let info_hash = torrent_info_hash(torrent).unwrap();
    let ours = Handshake::new(
        reserved,
        info_hash,
        PeerId::from_bytes(*b"-XX0000-pexinterop00"),
    );
    stream.write_all(&ours.to_bytes()).unwrap();
    let mut theirs = [0u8; 68];
    stream.read_exact(&mut theirs).unwrap();
    assert_eq!(theirs[28..48], *info_hash.as_bytes(), "rill's handshake");
    let reserved = Reserved(theirs[20..28].try_into().unwrap());

    let mut ids = Vec::new();
    let mut extended = None;
    for _ in 0..10_000 {
        let Some((id, body)) = read_message(&mut stream) else {
            continue;
        };
        ids.push(id);
        if id != EXTENDED {
            continue;
        }
        match (body.first(), &extended) {
            (Some(0), None) => {
                let handshake = ExtendedHandshake::decode(&body[1..]).unwrap();
                let ours = ExtendedHandshake {
                    messages: [(UT_METADATA.to_owned(), OUR_UT_METADATA)].into(),
                    ..ExtendedHandshake::default()
                };
                write_extended(&mut stream, 0, &ours.to_bytes());
                let rills = handshake
                    .id_of(UT_METADATA)
                    .expect("rill speaks ut_metadata");
                write_extended(&mut stream, rills, b"d8:msg_typei0e5:piecei0ee");
                extended = Some(handshake);
            }
            (Some(&OUR_UT_METADATA), Some(_)) => break,
            _ => {}
        }
    }
    Seen {
        reserved,
        ids,
        extended: extended.expect("rill's extended handshake"),
    }
}

/// `rill create --private` of the payload's folder: the same data, another info-hash.
fn private_torrent(payload: &Payload, root: &Path) -> PathBuf {
    let torrent = root.join("private.torrent");
    let folder = payload.seed_dir.join(&payload.name);
    let args = [
        "create".as_ref(),
        folder.as_os_str(),
        "-o".as_ref(),
        torrent.as_os_str(),
        "--piece-size".as_ref(),
        "64K".as_ref(),
        "--private".as_ref(),
        "--quiet".as_ref(),
    ];
    let output = run_rill(args);
    assert!(
        output.status.success(),
        "rill create --private: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    torrent
}

#[test]
fn a_private_torrent_gets_no_pex_and_no_port_from_rill() {
    rill_tests::rill_bin();
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let private = private_torrent(&payload, dir.path());
    // rill's DHT is on for both (its bootstrap node unreachable).
    let options = RillOptions::default().args(["--dht-bootstrap", NO_NODE]);
    for (torrent, private) in [(&payload.torrent, false), (&private, true)] {
        let rill = RillPeer::seed(torrent, &payload.seed_dir, options.clone()).unwrap();
        let seen = look_at_rill(rill.addr(), torrent);
        let pex = seen.extended.id_of(UT_PEX).is_some();
        let port = seen.ids.contains(&PORT);
        let what = format!(
            "private {private}: {:?}, messages {:?}",
            seen.extended, seen.ids
        );
        assert_eq!(pex, !private, "ut_pex in m; {what}");
        assert_eq!(seen.reserved.dht(), !private, "DHT bit; {what}");
        assert_eq!(port, !private, "port message; {what}");
        // Ctrl-C exits 130.
        assert_eq!(rill.stop().unwrap().code(), Some(130));
    }
}

/// BEP 3: the bitfield "is only ever sent as the first message" (BEP 6's Have All / Have
/// None stand in for it). libtorrent 2.0.8 sends its extended handshake, then Have All, then
/// `port`; so does rill (it once sent `port` first).
#[test]
fn rill_sends_port_after_its_bitfield() {
    rill_tests::rill_bin();
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let options = RillOptions::default().args(["--dht-bootstrap", NO_NODE]);
    let rill = RillPeer::seed(&payload.torrent, &payload.seed_dir, options).unwrap();
    let seen = look_at_rill(rill.addr(), &payload.torrent);
    // Bitfield (5) or, with the fast extension, Have All (14).
    let have = seen.ids.iter().position(|id| matches!(id, 5 | 14));
    let port = seen.ids.iter().position(|id| *id == PORT);
    assert!(
        matches!((have, port), (Some(have), Some(port)) if have < port),
        "messages {:?}",
        seen.ids
    );
    assert_eq!(rill.stop().unwrap().code(), Some(130));
}
