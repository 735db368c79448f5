//! The peer wire protocol (BEP 3, 6, 10).
//!
//! - [`handshake`]: the 68-byte handshake and its reserved bits (BEP 3, 5, 6, 10);
//!   incoming connections may read the first 48 bytes to pick the torrent first.
//! - [`message`]: the [`Message`] enum: BEP 3 core messages, BEP 5 `port`, BEP 6 fast
//!   extension, BEP 10 extended messages, and unknown ids kept as values.
//! - [`codec`]: length-prefixed framing over `bytes`: [`codec::decode`] returns `Ok(None)`
//!   until a whole message is buffered, refuses declared lengths over a cap before
//!   allocating, and never copies a block's payload.
//! - [`extension`]: BEP 10 extended handshake, BEP 9 `ut_metadata`, BEP 11 `ut_pex`.
//!
//! Nothing here validates against a torrent (piece counts, piece lengths): the connection
//! does that with [`crate::bitfield::Bitfield::from_bytes`] and
//! [`crate::pieces::BlockRef::check`].

pub mod codec;
pub mod extension;
pub mod handshake;
pub mod message;

#[cfg(test)]
mod tests;

pub use codec::{DEFAULT_MAX_LEN, WireError, decode, encode};
pub use handshake::{Handshake, HandshakeError, Reserved};
pub use message::Message;
