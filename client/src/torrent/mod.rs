//! A torrent's pure state machines: no tokio, no I/O, no clock reads. Time comes in as
//! `now: Instant`, randomness as `&mut impl Rng`, and results are returned values.
//!
//! - [`picker`]: which blocks to request from which peer (rarest first, end game, BEP 3).
//! - [`choker`]: which peers we upload to (tit-for-tat, optimistic unchoke, anti-snubbing).
//! - [`rate`]: transfer rates as decaying averages, and the request queue depth they imply.
//! - [`peer`]: what a torrent knows of one connected peer (pure data).
//! - [`state`]: one torrent's protocol logic: events in, actions out (the shell's contract).
//! - [`resume`]: the resume file (verified pieces, file stamps) and which pieces it lets us trust.

pub mod choker;
pub mod peer;
pub mod picker;
pub mod rate;
pub mod resume;
pub mod state;

/// A small copyable id for a connected peer, chosen by the caller (unique among live peers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub u32);
