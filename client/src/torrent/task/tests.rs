use std::sync::Mutex;

use bytes::Bytes;
use rill_common::pieces::{BlockRef, PieceIndex};
use rill_common::wire::{Message, Reserved};
use rill_common::{InfoHash, PeerId};

use super::*;
use crate::torrent::choker::ChokerConfig;
use crate::torrent::state::Config;

/// Storage in memory that records the resume saves.
#[derive(Default)]
struct MemoryStore {
    saves: Mutex<Vec<(u32, u64, u64)>>,
}

impl BlockStore for MemoryStore {
    fn write(&self, _block: BlockRef, _data: &Bytes) -> Result<(), StoreError> {
        Ok(())
    }
    fn read(&self, block: BlockRef) -> Result<Bytes, StoreError> {
        Ok(Bytes::from(vec![0; block.length as usize]))
    }
    fn verify(&self, _piece: PieceIndex) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn save_resume(&self, have: &Bitfield, up: u64, down: u64) -> Result<(), StoreError> {
        self.saves.lock().unwrap().push((have.count(), up, down));
        Ok(())
    }
}

fn setup(have: Bitfield, finish: Finish, store: Arc<MemoryStore>) -> Setup {
    let info_hash = InfoHash::from_bytes([3; 20]);
    let peer_id = PeerId::from_bytes([4; 20]);
    let config = Config {
        info_hash,
        peer_id,
        client: "Rill test".to_owned(),
        listen_port: None,
        max_peers: 10,
        choker: ChokerConfig::default(),
        sequential: false,
        piece_priorities: Vec::new(),
        private: false,
        metadata: None,
    };
    let pieces = have.piece_count();
    let state = TorrentState::new(
        config,
        u64::from(pieces) * 32_768,
        32_768,
        have,
        std::time::Instant::now(),
        7,
    )
    .unwrap();
    let (_found_tx, found) = mpsc::channel(1);
    Setup {
        state,
        ours: Handshake::new(Reserved::NONE, info_hash, peer_id),
        store,
        trackers: Box::new(NoTrackers),
        found,
        initial_peers: Vec::new(),
        timeouts: Timeouts::default(),
        throttles: Arc::new(Throttles::unlimited()),
        finish,
        total_len: u64::from(pieces) * 32_768,
        earlier: (5, 6),
        dht: None,
    }
}

#[tokio::test]
async fn stop_saves_resume_data_and_ends_done() {
    let store = Arc::new(MemoryStore::default());
    let mut have = Bitfield::new(8);
    have.set(PieceIndex(2), true);
    let handle = spawn(setup(have, Finish::WhenComplete, Arc::clone(&store)));
    let mut progress = handle.progress.clone();
    handle.stop();
    handle.join().await.unwrap();
    let saves = store.saves.lock().unwrap().clone();
    assert_eq!(saves.last(), Some(&(1, 5, 6)), "{saves:?}");
    progress.mark_changed();
    assert_eq!(progress.borrow_and_update().phase, Phase::Done);
}

#[tokio::test]
async fn a_complete_torrent_stops_by_itself_unless_seeding() {
    let store = Arc::new(MemoryStore::default());
    let handle = spawn(setup(
        Bitfield::full(4),
        Finish::WhenComplete,
        Arc::clone(&store),
    ));
    handle.join().await.unwrap();
    assert_eq!(store.saves.lock().unwrap().len(), 1);

    let seed = Finish::Seed {
        ratio: None,
        time: None,
    };
    let store = Arc::new(MemoryStore::default());
    let handle = spawn(setup(Bitfield::full(4), seed, Arc::clone(&store)));
    let mut progress = handle.progress.clone();
    // It publishes, still seeding, and keeps running until told to stop.
    progress.changed().await.unwrap();
    assert_eq!(progress.borrow().phase, Phase::Seeding);
    assert!(!handle.is_finished());
    handle.stop();
    handle.join().await.unwrap();
    let saves = store.saves.lock().unwrap().clone();
    assert_eq!(saves.last(), Some(&(4, 5, 6)), "{saves:?}");
}

/// A connected pair for the torrent of [`setup`]: the remote end, and ours established.
async fn connected_pair() -> (tokio::net::TcpStream, Established) {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let theirs = Handshake::new(
        Reserved::NONE,
        InfoHash::from_bytes([3; 20]),
        PeerId::from_bytes([9; 20]),
    );
    let (dialled, accepted) = tokio::join!(
        connection::connect(addr, theirs, Timeouts::default()),
        async {
            let (stream, from) = socket.accept().await.unwrap();
            connection::accept(stream, from, Timeouts::default(), |_| Some((theirs, ())))
                .await
                .unwrap()
                .0
        }
    );
    (dialled.unwrap().stream, accepted)
}

#[tokio::test]
async fn connections_over_the_process_limit_are_closed() {
    let seed = Finish::Seed {
        ratio: None,
        time: None,
    };
    let mut setup = setup(Bitfield::full(4), seed, Arc::new(MemoryStore::default()));
    setup.throttles = Arc::new(Throttles {
        connections: Arc::new(tokio::sync::Semaphore::new(0)),
        ..Throttles::unlimited()
    });
    let handle = spawn(setup);
    let (mut remote, accepted) = connected_pair().await;
    handle.incoming.send(accepted).await.unwrap();
    // Closed at once, while the torrent runs on.
    let mut sink = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut remote, &mut sink);
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the connection over the limit is closed")
        .unwrap();
    assert!(!handle.is_finished());
    handle.stop();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn incoming_connections_are_taken_and_closed_on_stop() {
    let store = Arc::new(MemoryStore::default());
    let seed = Finish::Seed {
        ratio: None,
        time: None,
    };
    let handle = spawn(setup(Bitfield::full(4), seed, store));
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let theirs = Handshake::new(
        Reserved::NONE,
        InfoHash::from_bytes([3; 20]),
        PeerId::from_bytes([9; 20]),
    );
    let ours = theirs;
    let (dialled, accepted) = tokio::join!(
        connection::connect(addr, theirs, Timeouts::default()),
        async {
            let (stream, from) = socket.accept().await.unwrap();
            connection::accept(stream, from, Timeouts::default(), |_| Some((ours, ())))
                .await
                .unwrap()
                .0
        }
    );
    let mut remote = dialled.unwrap().stream;
    handle.incoming.send(accepted).await.unwrap();
    handle.stop();
    handle.join().await.unwrap();
    // The task closed its side: the remote reads end of stream.
    let mut sink = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut remote, &mut sink)
        .await
        .unwrap();
}

/// A task built but not running, so a test can queue connection events and take them.
fn idle_task(have: Bitfield) -> Task {
    let store = Arc::new(MemoryStore::default());
    let setup = setup(have, Finish::WhenComplete, store);
    let progress = Progress {
        stats: setup.state.stats(std::time::Instant::now()),
        have: setup.state.have().clone(),
        phase: Phase::Downloading,
        verified_this_run: 0,
        failed_this_run: 0,
    };
    Task::new(setup, watch::channel(progress).0)
}

fn queue_closed(task: &Task, keys: std::ops::Range<u32>) {
    for key in keys {
        let closed = PeerEvent::Closed(PeerKey(key), "test".to_owned());
        task.peer_events.0.try_send(closed).unwrap();
    }
}

#[tokio::test]
async fn queued_peer_events_are_taken_in_bursts() {
    let mut task = idle_task(Bitfield::new(8));
    let extra = 5;
    queue_closed(&task, 0..PEER_BURST as u32 + extra);
    // The loop took one event; the burst takes the rest of PEER_BURST and leaves the others.
    let _ = task.peer_events.1.try_recv().unwrap();
    task.take_queued_peer_events();
    assert_eq!(task.peer_events.1.len(), extra as usize);
    task.take_queued_peer_events();
    assert!(task.peer_events.1.is_empty());
}

#[tokio::test]
async fn no_burst_while_the_disk_is_behind() {
    let mut task = idle_task(Bitfield::new(8));
    queue_closed(&task, 0..3);
    task.disk_bytes = MAX_DISK_BYTES;
    task.take_queued_peer_events();
    assert_eq!(task.peer_events.1.len(), 3, "the blocks wait in the queue");
    task.disk_bytes = 0;
    task.take_queued_peer_events();
    assert!(task.peer_events.1.is_empty());
}

#[tokio::test]
async fn a_burst_drops_what_a_closed_connection_sent_after_closing() {
    let mut task = idle_task(Bitfield::new(8));
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let theirs = Handshake::new(
        Reserved::NONE,
        InfoHash::from_bytes([3; 20]),
        PeerId::from_bytes([9; 20]),
    );
    let ours = task.ours;
    let (dialled, accepted) = tokio::join!(
        connection::connect(addr, theirs, Timeouts::default()),
        async {
            let (stream, from) = socket.accept().await.unwrap();
            connection::accept(stream, from, Timeouts::default(), |_| Some((ours, ())))
                .await
                .unwrap()
                .0
        }
    );
    let _remote = dialled.unwrap().stream;
    task.on_connected(accepted);
    let peer = PeerKey(0);
    assert!(task.links.contains_key(&peer));
    assert_eq!(task.state.stats(std::time::Instant::now()).peers, 1);
    // In order: a message, the close, then a message that must not bring the peer back.
    let events = [
        PeerEvent::Message(peer, Message::Interested),
        PeerEvent::Closed(peer, "test".to_owned()),
        PeerEvent::Message(peer, Message::Have(PieceIndex(1))),
    ];
    for event in events {
        task.peer_events.0.try_send(event).unwrap();
    }
    task.take_queued_peer_events();
    assert!(task.peer_events.1.is_empty());
    assert!(task.links.is_empty());
    assert_eq!(task.state.stats(std::time::Instant::now()).peers, 0);
}
