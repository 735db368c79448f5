//! Length-prefixed framing of peer wire messages over `bytes` (BEP 3).
//!
//! Every message after the handshake is `<length: u32 big-endian><id: u8><payload>`, and a
//! length of 0 is a keep-alive. Invariants of [`decode`]:
//! - `Ok(None)` means "need more bytes" and consumes nothing; `Ok(Some(_))` consumes exactly
//!   one frame; `Err` means the stream is broken (the caller drops the peer).
//! - A declared length above `max_len` is refused before anything is reserved or allocated,
//!   and a fixed-size message with the wrong length is refused as soon as its id is read.
//!   Only a frame that passed both checks gets room reserved for its remaining bytes, so a
//!   peer can make `decode` reserve at most `max_len + 4` bytes.
//! - With [`decode`], `piece`, `bitfield`, `extended` and unknown payloads are slices of the
//!   receive buffer (`split_to(..).freeze()`), never copies. With [`decode_detached`] each
//!   payload is copied once into an allocation of its exact size and the receive buffer is
//!   never shared, so a reader can reuse one large buffer and a block held for the disk pins
//!   16 KiB, not the chunk it was read in. Both decode the same messages from the same bytes.
//!
//! The default cap, [`DEFAULT_MAX_LEN`] = 262,145 bytes, is the larger of a block
//! (16 KiB + 9 = 16,393) and a bitfield for 2^21 pieces (262,144 bytes + the id), the most
//! pieces libtorrent loads by default; it also covers a BEP 9 metadata piece and any sane
//! PEX message. Once the piece count is known, [`max_len_for`] raises it for larger torrents.
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::message::{self, Message, PIECE_HEADER_LEN};
use crate::bitfield::byte_len;
use crate::pieces::{BLOCK_SIZE, BlockRef, PieceIndex};

/// The most pieces the default cap has room for in a bitfield (libtorrent's default limit).
pub const DEFAULT_MAX_PIECES: u32 = 1 << 21;

/// Default cap on a message's declared length (see the module docs for the number).
pub const DEFAULT_MAX_LEN: u32 = {
    let bitfield = 1 + DEFAULT_MAX_PIECES / 8;
    let block = 9 + BLOCK_SIZE;
    if bitfield > block { bitfield } else { block }
};

/// The cap for a torrent of `piece_count` pieces: [`DEFAULT_MAX_LEN`], or more if its
/// bitfield needs it.
pub fn max_len_for(piece_count: u32) -> u32 {
    let bitfield = u32::try_from(byte_len(piece_count)).unwrap_or(u32::MAX);
    DEFAULT_MAX_LEN.max(bitfield.saturating_add(1))
}

/// Why bytes are not a valid message stream, or a message cannot be encoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// A declared length above the cap.
    #[error("message declares {declared} bytes, above the limit of {max}")]
    TooLong {
        /// The declared length.
        declared: u32,
        /// The cap.
        max: u32,
    },
    /// A fixed-size message with another size.
    #[error("{name} message of {len} bytes, expected {expected}")]
    WrongLength {
        /// The message's name.
        name: &'static str,
        /// The declared length (id included).
        len: u32,
        /// The length it must have.
        expected: u32,
    },
    /// A variable-size message shorter than its header.
    #[error("{name} message of {len} bytes, expected at least {min}")]
    TooShort {
        /// The message's name.
        name: &'static str,
        /// The declared length (id included).
        len: u32,
        /// The least it may have.
        min: u32,
    },
    /// A message to encode whose payload does not fit a 32-bit length.
    #[error("cannot encode a message of {0} bytes")]
    Unencodable(usize),
}

/// Which lengths (id byte included) a message id allows.
enum Size {
    Exact(u32),
    AtLeast(u32),
}

fn size_of(id: u8) -> (&'static str, Size) {
    match id {
        message::CHOKE => ("choke", Size::Exact(1)),
        message::UNCHOKE => ("unchoke", Size::Exact(1)),
        message::INTERESTED => ("interested", Size::Exact(1)),
        message::NOT_INTERESTED => ("not interested", Size::Exact(1)),
        message::HAVE_ALL => ("have all", Size::Exact(1)),
        message::HAVE_NONE => ("have none", Size::Exact(1)),
        message::HAVE => ("have", Size::Exact(5)),
        message::SUGGEST => ("suggest piece", Size::Exact(5)),
        message::ALLOWED_FAST => ("allowed fast", Size::Exact(5)),
        message::REQUEST => ("request", Size::Exact(13)),
        message::CANCEL => ("cancel", Size::Exact(13)),
        message::REJECT_REQUEST => ("reject request", Size::Exact(13)),
        message::PORT => ("port", Size::Exact(3)),
        message::PIECE => ("piece", Size::AtLeast(9)),
        message::EXTENDED => ("extended", Size::AtLeast(2)),
        _ => ("unknown", Size::AtLeast(1)),
    }
}

fn check_size(id: u8, len: u32) -> Result<(), WireError> {
    match size_of(id) {
        (_, Size::Exact(expected)) if len == expected => Ok(()),
        (name, Size::Exact(expected)) => Err(WireError::WrongLength {
            name,
            len,
            expected,
        }),
        (name, Size::AtLeast(min)) if len < min => Err(WireError::TooShort { name, len, min }),
        _ => Ok(()),
    }
}

/// A big-endian `u32` at `at`; 0 if out of range (callers check lengths first).
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = bytes.get(at..at.saturating_add(4)) {
        word.copy_from_slice(src);
    }
    u32::from_be_bytes(word)
}

fn block_at(bytes: &[u8], at: usize) -> BlockRef {
    BlockRef {
        piece: PieceIndex(u32_at(bytes, at)),
        begin: u32_at(bytes, at + 4),
        length: u32_at(bytes, at + 8),
    }
}

/// Decodes one message from the front of `buf`: `Ok(None)` if more bytes are needed
/// (nothing consumed), `Err` if the stream is invalid. A declared length above `max_len` is
/// refused before any allocation. Payloads are slices of `buf` (never copied).
pub fn decode(buf: &mut BytesMut, max_len: u32) -> Result<Option<Message>, WireError> {
    decode_as(buf, max_len, Payloads::Shared)
}

/// As [`decode`], but every payload (a block's data, a bitfield, an extended message) is
/// copied into an allocation of its own exact size, so `buf` is never shared and can be
/// reused in place for the next read however long the messages live. A receive loop that
/// reads large chunks uses this: a block waiting for the disk then holds 16 KiB, not the
/// whole receive buffer it arrived in.
pub fn decode_detached(buf: &mut BytesMut, max_len: u32) -> Result<Option<Message>, WireError> {
    decode_as(buf, max_len, Payloads::Copied(&mut Bytes::copy_from_slice))
}

/// As [`decode_detached`], with `copy` making each payload's copy (a reader may take the
/// memory from a pool of block buffers). `copy` must return bytes equal to its argument.
pub fn decode_detached_with(
    buf: &mut BytesMut,
    max_len: u32,
    copy: &mut dyn FnMut(&[u8]) -> Bytes,
) -> Result<Option<Message>, WireError> {
    decode_as(buf, max_len, Payloads::Copied(copy))
}

/// How [`decode_frame`] takes a payload out of the receive buffer.
enum Payloads<'a> {
    /// A slice sharing the buffer.
    Shared,
    /// A copy of exactly the payload, made by the function.
    Copied(&'a mut dyn FnMut(&[u8]) -> Bytes),
}

impl Payloads<'_> {
    /// Consumes the frame of `total` bytes at the front of `buf` and returns its bytes from
    /// `skip` on.
    fn take(self, buf: &mut BytesMut, total: usize, skip: usize) -> Bytes {
        match self {
            Payloads::Shared => buf.split_to(total).freeze().slice(skip..),
            Payloads::Copied(copy) => {
                let payload = copy(buf.get(skip..total).unwrap_or_default());
                buf.advance(total);
                payload
            }
        }
    }
}

fn decode_as(
    buf: &mut BytesMut,
    max_len: u32,
    payloads: Payloads,
) -> Result<Option<Message>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32_at(buf, 0);
    if len > max_len {
        return Err(WireError::TooLong {
            declared: len,
            max: max_len,
        });
    }
    if len == 0 {
        buf.advance(4);
        return Ok(Some(Message::KeepAlive));
    }
    let Some(&id) = buf.get(4) else {
        return Ok(None);
    };
    check_size(id, len)?;
    // `len <= max_len <= u32::MAX`, so this cannot overflow a 64-bit usize; on 32-bit
    // targets saturate rather than wrap.
    let total = (len as usize).saturating_add(4);
    if buf.len() < total {
        // The frame is within the cap: make room for it so the next read fills it.
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(decode_frame(buf, id, total, payloads)))
}

/// Decodes a whole frame of `total` bytes (prefix included) at the front of `buf`, whose
/// size was checked against its id.
fn decode_frame(buf: &mut BytesMut, id: u8, total: usize, payloads: Payloads) -> Message {
    let fixed = |buf: &mut BytesMut, msg: Message| {
        buf.advance(total);
        msg
    };
    match id {
        message::CHOKE => fixed(buf, Message::Choke),
        message::UNCHOKE => fixed(buf, Message::Unchoke),
        message::INTERESTED => fixed(buf, Message::Interested),
        message::NOT_INTERESTED => fixed(buf, Message::NotInterested),
        message::HAVE_ALL => fixed(buf, Message::HaveAll),
        message::HAVE_NONE => fixed(buf, Message::HaveNone),
        message::HAVE => fixed(buf, Message::Have(PieceIndex(u32_at(buf, 5)))),
        message::SUGGEST => fixed(buf, Message::Suggest(PieceIndex(u32_at(buf, 5)))),
        message::ALLOWED_FAST => fixed(buf, Message::AllowedFast(PieceIndex(u32_at(buf, 5)))),
        message::REQUEST => fixed(buf, Message::Request(block_at(buf, 5))),
        message::CANCEL => fixed(buf, Message::Cancel(block_at(buf, 5))),
        message::REJECT_REQUEST => fixed(buf, Message::RejectRequest(block_at(buf, 5))),
        message::PORT => {
            let port = match buf.get(5..7) {
                Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
                _ => 0,
            };
            fixed(buf, Message::Port(port))
        }
        message::PIECE => {
            let (index, begin) = (u32_at(buf, 5), u32_at(buf, 9));
            Message::Piece {
                index: PieceIndex(index),
                begin,
                data: payloads.take(buf, total, PIECE_HEADER_LEN),
            }
        }
        message::BITFIELD => Message::Bitfield(payloads.take(buf, total, 5)),
        message::EXTENDED => {
            let ext = buf.get(5).copied().unwrap_or(0);
            Message::Extended {
                id: ext,
                payload: payloads.take(buf, total, 6),
            }
        }
        id => Message::Unknown {
            id,
            payload: payloads.take(buf, total, 5),
        },
    }
}

/// Appends `msg` to `out`, length prefix included. Fails only for a payload longer than a
/// 32-bit length can declare.
pub fn encode(msg: &Message, out: &mut BytesMut) -> Result<(), WireError> {
    let body = msg.body_len();
    let len = u32::try_from(body).map_err(|_| WireError::Unencodable(body))?;
    out.reserve(body + 4);
    out.put_u32(len);
    let Some(id) = msg.id() else {
        return Ok(());
    };
    out.put_u8(id);
    match msg {
        Message::KeepAlive
        | Message::Choke
        | Message::Unchoke
        | Message::Interested
        | Message::NotInterested
        | Message::HaveAll
        | Message::HaveNone => {}
        Message::Have(p) | Message::Suggest(p) | Message::AllowedFast(p) => out.put_u32(p.0),
        Message::Request(b) | Message::Cancel(b) | Message::RejectRequest(b) => {
            out.put_u32(b.piece.0);
            out.put_u32(b.begin);
            out.put_u32(b.length);
        }
        Message::Port(port) => out.put_u16(*port),
        Message::Piece { index, begin, data } => {
            out.put_u32(index.0);
            out.put_u32(*begin);
            out.extend_from_slice(data);
        }
        Message::Bitfield(payload) | Message::Unknown { payload, .. } => {
            out.extend_from_slice(payload);
        }
        Message::Extended { id, payload } => {
            out.put_u8(*id);
            out.extend_from_slice(payload);
        }
    }
    Ok(())
}

/// The 13 bytes that precede a block's data in a `piece` message, so the data can be sent
/// vectored (header, then the block's `Bytes`) without copying it.
pub fn piece_header(index: PieceIndex, begin: u32, data_len: usize) -> Result<[u8; 13], WireError> {
    let len = data_len
        .checked_add(9)
        .and_then(|len| u32::try_from(len).ok())
        .ok_or(WireError::Unencodable(data_len))?;
    let mut header = [0u8; PIECE_HEADER_LEN];
    let mut out = &mut header[..];
    out.put_u32(len);
    out.put_u8(message::PIECE);
    out.put_u32(index.0);
    out.put_u32(begin);
    Ok(header)
}
