//! Peer wire messages (BEP 3, BEP 5 `port`, BEP 6 fast extension, BEP 10 extended).
//!
//! A [`Message`] is what the wire said, checked only for framing: fixed-size messages have
//! their exact size, but indexes, offsets and bitfield lengths are not checked against a
//! torrent (the connection does, knowing the piece count and lengths).
//!
//! Unknown message ids decode to [`Message::Unknown`] rather than an error: the frame is
//! well formed, so the stream stays in sync and the connection decides whether to ignore
//! the message (as for ids of extensions it did not announce) or to drop the peer. Errors
//! from [`super::codec::decode`] always mean the stream cannot be trusted any more.

use bytes::Bytes;

use crate::pieces::{BlockRef, PieceIndex};

/// `choke` (BEP 3).
pub const CHOKE: u8 = 0;
/// `unchoke` (BEP 3).
pub const UNCHOKE: u8 = 1;
/// `interested` (BEP 3).
pub const INTERESTED: u8 = 2;
/// `not interested` (BEP 3).
pub const NOT_INTERESTED: u8 = 3;
/// `have` (BEP 3).
pub const HAVE: u8 = 4;
/// `bitfield` (BEP 3).
pub const BITFIELD: u8 = 5;
/// `request` (BEP 3).
pub const REQUEST: u8 = 6;
/// `piece` (BEP 3).
pub const PIECE: u8 = 7;
/// `cancel` (BEP 3).
pub const CANCEL: u8 = 8;
/// `port` (BEP 5).
pub const PORT: u8 = 9;
/// `suggest piece` (BEP 6).
pub const SUGGEST: u8 = 0x0d;
/// `have all` (BEP 6).
pub const HAVE_ALL: u8 = 0x0e;
/// `have none` (BEP 6).
pub const HAVE_NONE: u8 = 0x0f;
/// `reject request` (BEP 6).
pub const REJECT_REQUEST: u8 = 0x10;
/// `allowed fast` (BEP 6).
pub const ALLOWED_FAST: u8 = 0x11;
/// `extended` (BEP 10).
pub const EXTENDED: u8 = 20;

/// Bytes before a `piece` message's data: length (4), id (1), index (4), begin (4).
pub const PIECE_HEADER_LEN: usize = 13;

/// One peer wire message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A zero-length message that keeps the connection open.
    KeepAlive,
    /// The sender will not serve requests.
    Choke,
    /// The sender will serve requests.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants nothing from the receiver.
    NotInterested,
    /// The sender now has this piece.
    Have(PieceIndex),
    /// The pieces the sender has, raw: check with [`crate::bitfield::Bitfield::from_bytes`].
    Bitfield(Bytes),
    /// The sender asks for a block.
    Request(BlockRef),
    /// A block's data; `data` shares the receive buffer (never copied).
    Piece {
        /// The piece.
        index: PieceIndex,
        /// The block's offset in the piece.
        begin: u32,
        /// The block's bytes.
        data: Bytes,
    },
    /// The sender no longer wants a block it requested.
    Cancel(BlockRef),
    /// The sender's DHT port (BEP 5).
    Port(u16),
    /// The sender suggests downloading this piece (BEP 6).
    Suggest(PieceIndex),
    /// The sender has every piece (BEP 6).
    HaveAll,
    /// The sender has no piece (BEP 6).
    HaveNone,
    /// The sender will not serve this request (BEP 6).
    RejectRequest(BlockRef),
    /// The receiver may request this piece even while choked (BEP 6).
    AllowedFast(PieceIndex),
    /// An extension message (BEP 10): `id` 0 is the extended handshake, others are the ids
    /// the receiver announced in its handshake's `m`.
    Extended {
        /// The extended message id.
        id: u8,
        /// The payload after the extended id.
        payload: Bytes,
    },
    /// A well-framed message with an id this codec does not know.
    Unknown {
        /// The message id.
        id: u8,
        /// The payload after the id.
        payload: Bytes,
    },
}

impl Message {
    /// The message id, `None` for a keep-alive.
    pub fn id(&self) -> Option<u8> {
        Some(match self {
            Message::KeepAlive => return None,
            Message::Choke => CHOKE,
            Message::Unchoke => UNCHOKE,
            Message::Interested => INTERESTED,
            Message::NotInterested => NOT_INTERESTED,
            Message::Have(_) => HAVE,
            Message::Bitfield(_) => BITFIELD,
            Message::Request(_) => REQUEST,
            Message::Piece { .. } => PIECE,
            Message::Cancel(_) => CANCEL,
            Message::Port(_) => PORT,
            Message::Suggest(_) => SUGGEST,
            Message::HaveAll => HAVE_ALL,
            Message::HaveNone => HAVE_NONE,
            Message::RejectRequest(_) => REJECT_REQUEST,
            Message::AllowedFast(_) => ALLOWED_FAST,
            Message::Extended { .. } => EXTENDED,
            Message::Unknown { id, .. } => *id,
        })
    }

    /// The message's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Message::KeepAlive => "keep-alive",
            Message::Choke => "choke",
            Message::Unchoke => "unchoke",
            Message::Interested => "interested",
            Message::NotInterested => "not interested",
            Message::Have(_) => "have",
            Message::Bitfield(_) => "bitfield",
            Message::Request(_) => "request",
            Message::Piece { .. } => "piece",
            Message::Cancel(_) => "cancel",
            Message::Port(_) => "port",
            Message::Suggest(_) => "suggest piece",
            Message::HaveAll => "have all",
            Message::HaveNone => "have none",
            Message::RejectRequest(_) => "reject request",
            Message::AllowedFast(_) => "allowed fast",
            Message::Extended { .. } => "extended",
            Message::Unknown { .. } => "unknown",
        }
    }

    /// The payload length after the 4-byte length prefix (id included), as a `usize`.
    pub fn body_len(&self) -> usize {
        match self {
            Message::KeepAlive => 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 1,
            Message::Port(_) => 3,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 5,
            Message::Request(_) | Message::Cancel(_) | Message::RejectRequest(_) => 13,
            Message::Bitfield(bytes) | Message::Unknown { payload: bytes, .. } => 1 + bytes.len(),
            Message::Piece { data, .. } => 9 + data.len(),
            Message::Extended { payload, .. } => 2 + payload.len(),
        }
    }

    /// The block a `piece` message carries, as a [`BlockRef`] (`None` for other messages, or
    /// if the data is longer than `u32::MAX`).
    pub fn piece_block(&self) -> Option<BlockRef> {
        match self {
            Message::Piece { index, begin, data } => Some(BlockRef {
                piece: *index,
                begin: *begin,
                length: u32::try_from(data.len()).ok()?,
            }),
            _ => None,
        }
    }
}
