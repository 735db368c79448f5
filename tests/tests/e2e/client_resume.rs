//! Resume: a `rill download` stopped midway, by Ctrl-C (SIGINT: clean stop, resume file saved)
//! and by `kill -9` (nothing saved at the end), restarts and completes without fetching again
//! the pieces it had verified. Asserted on the piece counts of `--json` lines, never on time:
//! the first run is slowed with `--max-down` so it is stopped with pieces left to fetch.

use std::path::Path;
use std::time::Duration;

use rill_tests::{RillOptions, RillPeer};
use serde_json::Value;

use crate::client::{DOWNLOAD, EXIT, FILES, Payload};

/// Bound on waiting for the first run to be part way.
const PART_WAY: Duration = Duration::from_secs(60);

/// The first, slow run: returns once it has verified at least a few pieces but not all.
fn start_slow(payload: &Payload, seed: &RillPeer, out: &Path) -> (RillPeer, Value) {
    let options = RillOptions::default()
        .peer(seed.addr())
        .args(["--max-down", "256K"]);
    let mut first = RillPeer::download(&[&payload.torrent], out, options).unwrap();
    let line = first
        .wait_json(PART_WAY, |line| {
            let have = line["have"].as_u64().unwrap_or(0);
            let pieces = line["pieces"].as_u64().unwrap_or(0);
            have >= 8 && have + 8 <= pieces
        })
        .unwrap();
    (first, line)
}

/// The second run: completes, and verifies only pieces it did not have at its start.
fn finish(payload: &Payload, seed: &RillPeer, out: &Path, had: u64) {
    let options = RillOptions::default().peer(seed.addr());
    let mut second = RillPeer::download(&[&payload.torrent], out, options).unwrap();
    let last = second.wait_final(DOWNLOAD).unwrap();
    let pieces = last["pieces"].as_u64().unwrap();
    let at_start = last["have_at_start"].as_u64().unwrap();
    let fetched = last["verified_this_run"].as_u64().unwrap();
    assert!(
        at_start >= had,
        "had {had} verified, restarted with {at_start}: {last}"
    );
    assert_eq!(last["have"].as_u64(), Some(pieces), "{last}");
    assert_eq!(
        at_start + fetched,
        pieces,
        "pieces had at start were fetched again: {last}"
    );
    payload.assert_copied(out, &FILES);
    assert!(second.wait_exit(EXIT).unwrap().success());
}

#[test]
fn a_download_stopped_by_ctrl_c_resumes_without_fetching_verified_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("leech");
    let (mut first, _) = start_slow(&payload, &seed, &out);
    first.interrupt().unwrap();
    let last = first
        .wait_json(DOWNLOAD, |line| line["final"] == true)
        .unwrap();
    assert_eq!(last["phase"], "done", "{last}");
    let had = last["have"].as_u64().unwrap();
    assert!(had < last["pieces"].as_u64().unwrap(), "{last}");
    let status = first.wait_exit(EXIT).unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C exits 130: {status}");
    let resume_dir = out.join(".rill");
    assert!(
        resume_dir.read_dir().unwrap().count() >= 1,
        "a resume file is saved on Ctrl-C"
    );
    finish(&payload, &seed, &out, had);
}

#[test]
fn a_download_killed_with_sigkill_resumes_without_fetching_verified_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let payload = Payload::new(dir.path(), None);
    let seed = RillPeer::seed(&payload.torrent, &payload.seed_dir, RillOptions::default()).unwrap();
    let out = dir.path().join("leech");
    let (first, line) = start_slow(&payload, &seed, &out);
    let had = line["have"].as_u64().unwrap();
    first.kill().unwrap();
    finish(&payload, &seed, &out, had);
}
