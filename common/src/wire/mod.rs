//! The peer wire protocol (BEP 3, 6, 10).
//!
//! - [`handshake`]: the 68-byte handshake and its reserved bits (BEP 3, 5, 6, 10);
//!   incoming connections may read the first 48 bytes to pick the torrent first.
//! - [`message`]: the [`Message`] enum: BEP 3 core messages, BEP 5 `port`, BEP 6 fast
//!   extension, BEP 10 extended messages, and unknown ids kept as values.
//! - [`codec`]: length-prefixed framing over `bytes`: [`codec::decode`] returns `Ok(None)`
//!   until a whole message is buffered, refuses declared lengths over a cap before
//!   allocating, and never copies a block's payload; [`codec::decode_detached`] copies each
//!   payload once to its exact size instead, for readers that reuse one receive buffer.
//! - [`extension`]: BEP 10 extended handshake, BEP 9 `ut_metadata`, BEP 11 `ut_pex`.
//!
//! Nothing here validates against a torrent (piece counts, piece lengths): the connection
//! does that with [`crate::bitfield::Bitfield::from_bytes`] and
//! [`crate::pieces::BlockRef::check`].
//!
//! ```
//! use bytes::BytesMut;
//! use rill_common::wire::{DEFAULT_MAX_LEN, Message, decode, encode};
//!
//! let mut wire = BytesMut::new();
//! encode(&Message::Interested, &mut wire)?;
//! encode(&Message::Port(6881), &mut wire)?;
//! // Bytes arrive in pieces: `Ok(None)` until a whole message is buffered.
//! let mut buf = BytesMut::from(&wire[..6]);
//! assert_eq!(decode(&mut buf, DEFAULT_MAX_LEN)?, Some(Message::Interested));
//! assert_eq!(decode(&mut buf, DEFAULT_MAX_LEN)?, None);
//! buf.extend_from_slice(&wire[6..]);
//! assert_eq!(decode(&mut buf, DEFAULT_MAX_LEN)?, Some(Message::Port(6881)));
//! # Ok::<(), rill_common::wire::WireError>(())
//! ```

pub mod codec;
pub mod extension;
pub mod handshake;
pub mod message;

#[cfg(test)]
mod tests;

pub use codec::{DEFAULT_MAX_LEN, WireError, decode, decode_detached, encode};
pub use handshake::{Handshake, HandshakeError, Reserved};
pub use message::Message;
