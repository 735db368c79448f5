//! Peer connections (BEP 3): the TCP shells that move wire messages between sockets and a torrent.
//!
//! - [`connection`]: dialling and answering handshakes, then the read and write loops.
//! - [`listener`]: the one listen socket of a process, routing connections by info hash.
//! - [`throttle`]: the token buckets behind `--max-down` and `--max-up`.
//! - [`pool`]: the process-wide pool of block buffers the read loops copy blocks into.

pub mod connection;
pub mod listener;
pub mod pool;
pub mod throttle;
