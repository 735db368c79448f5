//! rill-tracker: Rill's HTTP and UDP BitTorrent tracker.
//!
//! - [`swarm`]: the swarm store (pure): peers per torrent, replies, expiry.

pub mod swarm;
