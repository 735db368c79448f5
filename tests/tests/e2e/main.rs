//! End-to-end tests across Rill's crates: one test binary, a module per area.
//!
//! - `fixtures`: rill-common against the torrents real tools made (`fixtures/`).
//! - `dht`: rill's DHT node in a private loopback DHT with libtorrent (ping, get_peers, announce).
//! - `cli`: the `rill` command: `rill info` against transmission-show and libtorrent, errors.
//! - `client`: `rill seed` and `rill download` on loopback, with rill-tracker or `--peer`.
//! - `client_interop`: rill with libtorrent and Transmission, each way, and a mixed swarm.
//! - `client_magnet`: magnet links (BEP 9) and the DHT in the client, with libtorrent.
//! - `client_dht_interop`: rill downloads a magnet through a DHT made only of libtorrent nodes.
//! - `client_resume`: downloads stopped by Ctrl-C and `kill -9` resume without refetching.
//! - `interop_create`: torrents made by `rill create`, read and verified by real tools.
//! - `tracker`: rill-tracker in process on port 0, over HTTP and UDP, and its `/metrics`.
//! - `interop_tracker`: libtorrent and Transmission announce to rill-tracker and transfer.

mod announce;
mod cli;
mod client;
mod client_dht_interop;
mod client_interop;
mod client_magnet;
mod client_pex_interop;
mod client_resume;
mod dht;
mod fixtures;
mod interop_create;
mod interop_tracker;
mod support;
mod tracker;
