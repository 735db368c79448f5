//! One TCP connection to a peer (BEP 3): the handshake, then a read loop and a write loop.
//!
//! Invariants:
//! - Every wait is bounded: dialling by [`Timeouts::connect`], the handshake by
//!   [`Timeouts::handshake`], and a connection that receives nothing (not even a keep-alive)
//!   for [`Timeouts::idle`] is closed. The writer sends a keep-alive after
//!   [`Timeouts::keep_alive`] of silence.
//! - The handshake's info hash is checked before anything else is read; bytes the peer sent
//!   right after its handshake stay in the buffer handed to the read loop.
//! - The read loop receives into a buffer of the [`pool`] with at least [`READ_ROOM`] / 2
//!   bytes of room before each read, and decodes capped by the torrent's
//!   [`codec::max_len_for`], so a peer cannot make it allocate more than one capped frame. A
//!   block's payload is a slice of that buffer ([`codec::decode`]: never copied on its way to
//!   the disk); other payloads are copied out ([`codec::decode_detached`]), so only blocks
//!   pin a receive buffer. When a shared buffer's room runs low it is retired to the pool
//!   (reused once its blocks are written) and the partial frame at its end moves to a fresh
//!   one.
//! - The write loop sends a `piece` as its 13-byte header and the block's own `Bytes`, in one
//!   vectored write with whatever else is queued (up to [`GATHER_LIMIT`] bytes): the block is
//!   never copied, and headers and small messages are encoded together into one reused buffer.
//! - Each connection reports on the torrent's bounded channel: its messages in order, then
//!   exactly one [`PeerEvent::Closed`] (from whichever loop stops first; later ones are
//!   dropped by the torrent, which knows the key is gone).
#![deny(clippy::indexing_slicing, clippy::panic, clippy::unwrap_used)]

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use rill_common::InfoHash;
use rill_common::pieces::BLOCK_SIZE;
use rill_common::wire::handshake::{HANDSHAKE_LEN, HandshakePrefix, PREFIX_LEN};
use rill_common::wire::{Handshake, HandshakeError, Message, Reserved, WireError, codec, message};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::AbortHandle;
use tokio::time::timeout;

use super::pool;
use super::throttle::Throttle;
use crate::torrent::PeerKey;

/// How long each step of a connection may take.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Dialling a peer.
    pub connect: Duration,
    /// Receiving the peer's handshake.
    pub handshake: Duration,
    /// Receiving nothing at all before the connection is closed.
    pub idle: Duration,
    /// Sending nothing before a keep-alive goes out.
    pub keep_alive: Duration,
}

impl Default for Timeouts {
    /// 10 s to connect, 20 s to handshake, closed after 3 min of silence, keep-alives every 90 s
    /// (BEP 3 suggests two minutes; peers usually drop a connection after two to three).
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            handshake: Duration::from_secs(20),
            idle: Duration::from_secs(180),
            keep_alive: Duration::from_secs(90),
        }
    }
}

/// Why a connection could not be set up.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A step took too long.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The peer did not speak BitTorrent.
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    /// The peer's handshake named another torrent.
    #[error("peer answered for torrent {0}")]
    WrongTorrent(InfoHash),
    /// The peer closed the connection during the handshake.
    #[error("closed during the handshake")]
    Closed,
    /// No torrent of ours has this info hash (incoming connections).
    #[error("unknown torrent {0}")]
    UnknownTorrent(InfoHash),
}

/// The reserved bits we send: BEP 6 fast extension and BEP 10 extension protocol.
pub fn our_reserved() -> Reserved {
    Reserved::NONE.with_fast(true).with_extension_protocol(true)
}

/// A connection whose handshakes are done, ready for [`spawn`].
#[derive(Debug)]
pub struct Established {
    /// The socket.
    pub stream: TcpStream,
    /// The peer's address.
    pub addr: SocketAddr,
    /// The peer's handshake.
    pub handshake: Handshake,
    /// Bytes received after the handshake (the start of the message stream).
    pub buffered: BytesMut,
    /// We dialled it.
    pub outgoing: bool,
}

/// Reads from `stream` into `buf` until it holds at least `want` bytes, or `check` fails.
async fn fill(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    want: usize,
    mut check: impl FnMut(&[u8]) -> Result<(), ConnectionError>,
) -> Result<(), ConnectionError> {
    while buf.len() < want {
        buf.reserve(want - buf.len());
        if stream.read_buf(buf).await? == 0 {
            return Err(ConnectionError::Closed);
        }
        check(buf)?;
    }
    Ok(())
}

fn check_prefix(buf: &[u8]) -> Result<(), ConnectionError> {
    HandshakePrefix::peek(buf)?;
    Ok(())
}

/// Dials `addr`, sends `ours` and reads the peer's handshake, which must be for the same
/// torrent.
pub async fn connect(
    addr: SocketAddr,
    ours: Handshake,
    timeouts: Timeouts,
) -> Result<Established, ConnectionError> {
    let mut stream = timeout(timeouts.connect, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectionError::Timeout("connecting"))??;
    stream.set_nodelay(true)?;
    let exchange = async {
        stream.write_all(&ours.to_bytes()).await?;
        let mut buf = BytesMut::with_capacity(4096);
        fill(&mut stream, &mut buf, HANDSHAKE_LEN, check_prefix).await?;
        let theirs = Handshake::decode(&mut buf)?.ok_or(ConnectionError::Closed)?;
        Ok::<_, ConnectionError>((theirs, buf))
    };
    let (handshake, buffered) = timeout(timeouts.handshake, exchange)
        .await
        .map_err(|_| ConnectionError::Timeout("waiting for the handshake"))??;
    if handshake.info_hash != ours.info_hash {
        return Err(ConnectionError::WrongTorrent(handshake.info_hash));
    }
    Ok(Established {
        stream,
        addr,
        handshake,
        buffered,
        outgoing: true,
    })
}

/// Answers an incoming connection: reads the first 48 bytes of its handshake, asks `route`
/// which torrent has that info hash (it returns our handshake for it and what the caller
/// needs to hand the connection over), sends our handshake, then reads the peer id.
pub async fn accept<T>(
    mut stream: TcpStream,
    addr: SocketAddr,
    timeouts: Timeouts,
    route: impl FnOnce(InfoHash) -> Option<(Handshake, T)>,
) -> Result<(Established, T), ConnectionError> {
    stream.set_nodelay(true)?;
    let exchange = async {
        let mut buf = BytesMut::with_capacity(4096);
        fill(&mut stream, &mut buf, PREFIX_LEN, check_prefix).await?;
        let prefix = HandshakePrefix::peek(&buf)?.ok_or(ConnectionError::Closed)?;
        let (ours, target) =
            route(prefix.info_hash).ok_or(ConnectionError::UnknownTorrent(prefix.info_hash))?;
        stream.write_all(&ours.to_bytes()).await?;
        fill(&mut stream, &mut buf, HANDSHAKE_LEN, |_| Ok(())).await?;
        let theirs = Handshake::decode(&mut buf)?.ok_or(ConnectionError::Closed)?;
        Ok::<_, ConnectionError>((theirs, buf, target))
    };
    let (handshake, buffered, target) = timeout(timeouts.handshake, exchange)
        .await
        .map_err(|_| ConnectionError::Timeout("waiting for the handshake"))??;
    Ok((
        Established {
            stream,
            addr,
            handshake,
            buffered,
            outgoing: false,
        },
        target,
    ))
}

/// What a connection tells its torrent.
#[derive(Debug)]
pub enum PeerEvent {
    /// A message arrived.
    Message(PeerKey, Message),
    /// The connection ended; the text says why, for logs.
    Closed(PeerKey, String),
}

/// The limits every connection of a process shares: byte rates and the connection count.
#[derive(Debug)]
pub struct Throttles {
    /// Block payload received.
    pub down: Throttle,
    /// Block payload sent.
    pub up: Throttle,
    /// One permit per established connection, across all torrents.
    pub connections: Arc<Semaphore>,
}

impl Throttles {
    /// No limits.
    pub fn unlimited() -> Self {
        Throttles {
            down: Throttle::unlimited(),
            up: Throttle::unlimited(),
            connections: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        }
    }
}

/// A running connection as its torrent holds it. Dropping it stops the read loop at once and
/// lets the write loop send what is queued, then close the socket.
#[derive(Debug)]
pub struct Link {
    /// The peer's address.
    pub addr: SocketAddr,
    writer: mpsc::UnboundedSender<Message>,
    reader: AbortHandle,
    permit: Option<OwnedSemaphorePermit>,
}

impl Link {
    /// Holds `permit` (of [`Throttles::connections`]) for as long as the link lives.
    pub fn hold(&mut self, permit: OwnedSemaphorePermit) {
        self.permit = Some(permit);
    }

    /// Queues a message; `false` if the connection is already gone.
    pub fn send(&self, message: Message) -> bool {
        self.writer.send(message).is_ok()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Starts the read and write loops of an established connection. Messages arrive on `events`
/// tagged with `key`; `max_len` caps a message's declared length
/// ([`codec::max_len_for`] the torrent's piece count).
pub fn spawn(
    key: PeerKey,
    established: Established,
    max_len: u32,
    timeouts: Timeouts,
    events: mpsc::Sender<PeerEvent>,
    throttles: Arc<Throttles>,
) -> Link {
    let Established {
        stream,
        addr,
        buffered,
        ..
    } = established;
    let (read_half, write_half) = stream.into_split();
    let (writer, queue) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_loop(
        key,
        read_half,
        buffered,
        max_len,
        timeouts.idle,
        events.clone(),
        Arc::clone(&throttles),
    ))
    .abort_handle();
    tokio::spawn(write_loop(
        key,
        write_half,
        queue,
        timeouts.keep_alive,
        events,
        throttles,
    ));
    Link {
        addr,
        writer,
        reader,
        permit: None,
    }
}

/// The room a receive buffer is brought back to when less than half of it is left (in
/// place if no block shares the buffer, else in a fresh one of [`pool::BUFFER_LEN`]): one
/// `recv` takes at least half of this (four blocks), so a fast peer costs one system call
/// per several blocks.
pub const READ_ROOM: usize = 128 * 1024;

/// The longest frame of a block we ask for: its 13-byte header and 16 KiB.
const BLOCK_FRAME: usize = message::PIECE_HEADER_LEN + BLOCK_SIZE as usize;

/// Reads shorter than this (requests, `have`s: no block) are ACKed at once; see `read_loop`.
#[cfg(any(target_os = "linux", target_os = "android"))]
const QUICKACK_BELOW: usize = 16 * 1024;

async fn read_loop(
    key: PeerKey,
    mut socket: OwnedReadHalf,
    mut buf: BytesMut,
    max_len: u32,
    idle: Duration,
    events: mpsc::Sender<PeerEvent>,
    throttles: Arc<Throttles>,
) {
    // Whether `buf` came from the pool (the handshake's buffer did not).
    let mut pooled = false;
    let why = loop {
        match decode_all(key, &mut buf, max_len, &events, &throttles).await {
            Ok(true) => {}
            Ok(false) => return, // the torrent is gone
            Err(err) => break err.to_string(),
        }
        if buf.capacity() - buf.len() < READ_ROOM / 2 && !buf.try_reclaim(READ_ROOM) {
            // Blocks still share this buffer: carry the partial frame at its end over to a
            // fresh one, and retire this one until the disk has written them.
            let mut fresh = pool::POOL.fresh();
            fresh.extend_from_slice(&buf);
            let old = std::mem::replace(&mut buf, fresh);
            if pooled {
                pool::POOL.retire(old);
            }
            pooled = true;
        }
        // Room is left for the rest of a block frame the read may end inside, so the
        // decoder never has to move a shared buffer to grow it.
        let room = (buf.capacity() - buf.len())
            .saturating_sub(BLOCK_FRAME)
            .max(1);
        match timeout(idle, socket.read_buf(&mut (&mut buf).limit(room))).await {
            Err(_) => break "nothing received for too long".to_owned(),
            Ok(Ok(0)) => break "closed by the peer".to_owned(),
            Ok(Ok(read)) => {
                // Linux delays the ACK of a segment we do not answer (a `have`) by up to
                // 40 ms, and a peer using Nagle's algorithm (libtorrent) holds its next
                // requests until that ACK comes: a seed sat idle for most of its time.
                // Asking for a quick ACK sends the pending one at once. Bulk reads (blocks
                // coming in) keep the kernel's usual ACK pacing. Failing costs only speed.
                // A short read inside a block (the first frame in the buffer is a `piece`)
                // is the tail of a burst, not a message to acknowledge at once.
                #[cfg(any(target_os = "linux", target_os = "android"))]
                if read < QUICKACK_BELOW && buf.get(4) != Some(&message::PIECE) {
                    let _ = socket.as_ref().set_quickack(true);
                }
            }
            Ok(Err(err)) => break err.to_string(),
        }
    };
    let _ = events.send(PeerEvent::Closed(key, why)).await;
}

/// Sends every whole message in `buf` to the torrent; `Ok(false)` if the torrent is gone.
async fn decode_all(
    key: PeerKey,
    buf: &mut BytesMut,
    max_len: u32,
    events: &mpsc::Sender<PeerEvent>,
    throttles: &Throttles,
) -> Result<bool, WireError> {
    while let Some(message) = decode(buf, max_len)? {
        if let Message::Piece { data, .. } = &message {
            throttles.down.consume(data.len()).await;
        }
        if events.send(PeerEvent::Message(key, message)).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Decodes one message: a block's payload as a slice of `buf`, any other payload copied out
/// (a bitfield or an extended message may live long; it must not pin a receive buffer).
fn decode(buf: &mut BytesMut, max_len: u32) -> Result<Option<Message>, WireError> {
    // The id byte of a keep-alive's successor may read as PIECE: both decoders handle a
    // keep-alive alike, so the choice only decides whether a payload is shared.
    if buf.get(4) == Some(&message::PIECE) {
        codec::decode(buf, max_len)
    } else {
        codec::decode_detached(buf, max_len)
    }
}

/// Queued bytes above which the writer stops gathering more messages into one write.
pub const GATHER_LIMIT: usize = 256 * 1024;

async fn write_loop(
    key: PeerKey,
    mut socket: OwnedWriteHalf,
    mut queue: mpsc::UnboundedReceiver<Message>,
    keep_alive: Duration,
    events: mpsc::Sender<PeerEvent>,
    throttles: Arc<Throttles>,
) {
    let mut batch = Batch::default();
    loop {
        let first = match timeout(keep_alive, queue.recv()).await {
            Err(_) => Message::KeepAlive,
            Ok(None) => break,
            Ok(Some(message)) => message,
        };
        let mut payload = batch.push(&first);
        while batch.len < GATHER_LIMIT {
            match queue.try_recv() {
                Ok(message) => payload += batch.push(&message),
                Err(_) => break,
            }
        }
        throttles.up.consume(payload).await;
        if let Err(err) = batch.write_to(&mut socket).await {
            let _ = events.send(PeerEvent::Closed(key, err.to_string())).await;
            return;
        }
    }
    let _ = socket.shutdown().await;
}

/// Messages gathered for one vectored write: small messages and blocks' headers encoded
/// together into `control` (one segment per run of them), blocks as their own `Bytes`.
/// `control` is reused from one write to the next: the segments split off it are dropped when
/// the write is done, so it is unique again and `reserve` reclaims it in place.
#[derive(Default)]
struct Batch {
    segments: Vec<Bytes>,
    control: BytesMut,
    len: usize,
}

impl Batch {
    /// Adds a message; returns its block payload length (0 for other messages).
    fn push(&mut self, message: &Message) -> usize {
        match message {
            Message::Piece { index, begin, data } => {
                let Ok(header) = codec::piece_header(*index, *begin, data.len()) else {
                    return 0;
                };
                self.control.extend_from_slice(&header);
                self.flush_control();
                self.segments.push(data.clone());
                self.len += header.len() + data.len();
                data.len()
            }
            other => {
                let before = self.control.len();
                if codec::encode(other, &mut self.control).is_ok() {
                    self.len += self.control.len() - before;
                }
                0
            }
        }
    }

    fn flush_control(&mut self) {
        if !self.control.is_empty() {
            self.segments.push(self.control.split().freeze());
        }
    }

    /// Writes everything gathered, vectored, and empties the batch.
    async fn write_to(&mut self, socket: &mut OwnedWriteHalf) -> io::Result<()> {
        self.flush_control();
        let mut first = 0;
        while first < self.segments.len() {
            let slices: Vec<IoSlice<'_>> = self
                .segments
                .iter()
                .skip(first)
                .take(64)
                .map(|segment| IoSlice::new(segment))
                .collect();
            let mut written = socket.write_vectored(&slices).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            while written > 0 {
                let Some(segment) = self.segments.get_mut(first) else {
                    break;
                };
                let step = written.min(segment.len());
                segment.advance(step);
                written -= step;
                if segment.is_empty() {
                    first += 1;
                }
            }
            while self.segments.get(first).is_some_and(Bytes::is_empty) {
                first += 1;
            }
        }
        self.segments.clear();
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
