use std::time::Duration;

use bytes::Bytes;
use rill_common::PeerId;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::wire::{DEFAULT_MAX_LEN, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::peer::listener::{self, Route, Routes};

fn handshake(hash: u8, id: u8) -> Handshake {
    Handshake::new(
        our_reserved(),
        InfoHash::from_bytes([hash; 20]),
        PeerId::from_bytes([id; 20]),
    )
}

fn quick() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        handshake: Duration::from_secs(5),
        idle: Duration::from_secs(30),
        keep_alive: Duration::from_secs(30),
    }
}

/// A listener routing info hash 1 to a queue; returns its address and the queue.
async fn listening() -> (SocketAddr, mpsc::Receiver<Established>, Routes) {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let routes = Routes::default();
    let (incoming, queue) = mpsc::channel(4);
    routes.insert(
        InfoHash::from_bytes([1; 20]),
        Route {
            ours: handshake(1, 0xbb),
            incoming,
        },
    );
    tokio::spawn(listener::run(socket, routes.clone(), quick()));
    (addr, queue, routes)
}

#[tokio::test]
async fn outgoing_and_incoming_handshakes_meet() {
    let (addr, mut queue, _routes) = listening().await;
    let ours = handshake(1, 0xaa);
    let dialled = connect(addr, ours, quick()).await.unwrap();
    assert!(dialled.outgoing);
    assert_eq!(dialled.handshake.peer_id, PeerId::from_bytes([0xbb; 20]));
    assert!(dialled.handshake.reserved.fast());
    assert!(dialled.handshake.reserved.extension_protocol());
    let accepted = queue.recv().await.unwrap();
    assert!(!accepted.outgoing);
    assert_eq!(accepted.handshake, ours);
}

#[tokio::test]
async fn unknown_torrent_is_closed_without_a_reply() {
    let (addr, _queue, _routes) = listening().await;
    let err = connect(addr, handshake(2, 0xaa), quick())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectionError::Closed), "{err}");
}

#[tokio::test]
async fn a_peer_answering_for_another_torrent_is_refused() {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = socket.accept().await.unwrap();
        let mut theirs = [0u8; 68];
        stream.read_exact(&mut theirs).await.unwrap();
        stream
            .write_all(&handshake(9, 0xcc).to_bytes())
            .await
            .unwrap();
        // Hold the socket until the other side hangs up.
        let _ = stream.read(&mut theirs).await;
    });
    let err = connect(addr, handshake(1, 0xaa), quick())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectionError::WrongTorrent(_)), "{err}");
}

#[tokio::test]
async fn not_bittorrent_fails_at_the_first_wrong_byte() {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = socket.accept().await.unwrap();
        stream.write_all(b"HTTP/1.1 400 Bad\r\n").await.unwrap();
        let mut sink = [0u8; 128];
        let _ = stream.read(&mut sink).await;
    });
    let err = connect(addr, handshake(1, 0xaa), quick())
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectionError::Handshake(_)), "{err}");
}

#[tokio::test]
async fn a_silent_peer_times_out_the_handshake() {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let (stream, _) = socket.accept().await.unwrap();
        // Never answer; keep the socket open.
        std::future::pending::<()>().await;
        drop(stream);
    });
    let timeouts = Timeouts {
        handshake: Duration::from_millis(50),
        ..quick()
    };
    let err = connect(addr, handshake(1, 0xaa), timeouts)
        .await
        .unwrap_err();
    assert!(matches!(err, ConnectionError::Timeout(_)), "{err}");
    holder.abort();
}

/// Two established connections to each other, each with its own event queue.
async fn pair(
    timeouts: Timeouts,
) -> (
    (Link, mpsc::Receiver<PeerEvent>),
    (Link, mpsc::Receiver<PeerEvent>),
) {
    let (addr, mut queue, _routes) = listening().await;
    let dialled = connect(addr, handshake(1, 0xaa), quick()).await.unwrap();
    let accepted = queue.recv().await.unwrap();
    let throttles = Arc::new(Throttles::unlimited());
    let (tx_a, rx_a) = mpsc::channel(64);
    let (tx_b, rx_b) = mpsc::channel(64);
    let a = spawn(
        PeerKey(1),
        dialled,
        DEFAULT_MAX_LEN,
        timeouts,
        tx_a,
        Arc::clone(&throttles),
    );
    let b = spawn(
        PeerKey(2),
        accepted,
        DEFAULT_MAX_LEN,
        timeouts,
        tx_b,
        throttles,
    );
    ((a, rx_a), (b, rx_b))
}

async fn next_message(events: &mut mpsc::Receiver<PeerEvent>) -> Message {
    match events.recv().await.unwrap() {
        PeerEvent::Message(_, message) => message,
        PeerEvent::Closed(_, why) => panic!("closed: {why}"),
    }
}

#[tokio::test]
async fn messages_cross_in_order_blocks_intact() {
    let ((a, _events_a), (_b, mut events_b)) = pair(quick()).await;
    let block: Bytes = (0..16_384u32).map(|i| (i * 7 % 251) as u8).collect();
    let sent = vec![
        Message::Bitfield(Bytes::from_static(&[0b1010_0000])),
        Message::Interested,
        Message::Piece {
            index: PieceIndex(3),
            begin: 16_384,
            data: block.clone(),
        },
        Message::Have(PieceIndex(2)),
        Message::Request(BlockRef::new(PieceIndex(1), 0, 16_384).unwrap()),
        Message::Piece {
            index: PieceIndex(4),
            begin: 0,
            data: block.slice(..100),
        },
    ];
    for message in &sent {
        assert!(a.send(message.clone()));
    }
    for message in &sent {
        assert_eq!(&next_message(&mut events_b).await, message);
    }
}

#[tokio::test]
async fn dropping_a_link_closes_the_other_side() {
    let ((a, _events_a), (_b, mut events_b)) = pair(quick()).await;
    a.send(Message::Unchoke);
    drop(a);
    assert_eq!(next_message(&mut events_b).await, Message::Unchoke);
    match events_b.recv().await.unwrap() {
        PeerEvent::Closed(key, _) => assert_eq!(key, PeerKey(2)),
        PeerEvent::Message(_, message) => panic!("unexpected {message:?}"),
    }
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection() {
    let (addr, mut queue, _routes) = listening().await;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&handshake(1, 0xaa).to_bytes()).await.unwrap();
    let accepted = queue.recv().await.unwrap();
    let (tx, mut events) = mpsc::channel(8);
    let _link = spawn(
        PeerKey(5),
        accepted,
        DEFAULT_MAX_LEN,
        quick(),
        tx,
        Arc::new(Throttles::unlimited()),
    );
    let mut frames = BytesMut::new();
    encode(&Message::Interested, &mut frames).unwrap();
    frames.extend_from_slice(&u32::MAX.to_be_bytes());
    raw.write_all(&frames).await.unwrap();
    assert_eq!(next_message(&mut events).await, Message::Interested);
    match events.recv().await.unwrap() {
        PeerEvent::Closed(_, why) => assert!(why.contains("limit"), "{why}"),
        PeerEvent::Message(_, message) => panic!("unexpected {message:?}"),
    }
}

#[tokio::test]
async fn a_quiet_writer_sends_keep_alives() {
    let timeouts = Timeouts {
        keep_alive: Duration::from_millis(20),
        ..quick()
    };
    let ((_a, _events_a), (_b, mut events_b)) = pair(timeouts).await;
    // Nothing is queued on `a`: after `keep_alive` it must send one.
    assert_eq!(next_message(&mut events_b).await, Message::KeepAlive);
}

#[tokio::test]
async fn a_long_burst_arrives_intact_and_held_blocks_stay_intact() {
    let ((a, _events_a), (_b, mut events_b)) = pair(quick()).await;
    // Several times the read room, with small messages between blocks, so frames straddle
    // reads and the receive buffer is reused many times.
    let blocks = 4 * READ_ROOM / 16_384;
    let mut sent = Vec::new();
    for n in 0..blocks {
        let fill = u8::try_from(n % 251).unwrap();
        let data: Bytes = (0..16_384u32)
            .map(|i| fill ^ u8::try_from(i % 256).unwrap())
            .collect();
        sent.push(Message::Piece {
            index: PieceIndex(u32::try_from(n).unwrap()),
            begin: 0,
            data,
        });
        if n % 3 == 0 {
            sent.push(Message::Have(PieceIndex(u32::try_from(n).unwrap())));
        }
    }
    for message in &sent {
        assert!(a.send(message.clone()));
    }
    let mut received = Vec::new();
    for message in &sent {
        let got = next_message(&mut events_b).await;
        assert_eq!(&got, message);
        received.push(got);
    }
    // Every block received is still held here while the later ones were read: the receive
    // buffers they are slices of were never reused under them.
    assert_eq!(received, sent, "a held block changed");
    // Blocks are slices of the receive buffer, not copies: consecutive blocks read together
    // lie one piece header (13 bytes), or a `have` (9) and a header, apart.
    let mut starts: Vec<usize> = received
        .iter()
        .filter_map(|m| match m {
            Message::Piece { data, .. } => Some(data.as_ptr() as usize),
            _ => None,
        })
        .collect();
    starts.sort_unstable();
    let shared = starts
        .windows(2)
        .filter(|pair| matches!(pair[1] - pair[0], 16_397 | 16_406))
        .count();
    assert!(
        shared > 0,
        "every block was copied out of the receive buffer"
    );
}
