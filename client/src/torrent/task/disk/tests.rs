use std::sync::Mutex;

use rill_common::bitfield::Bitfield;
use sha1::Sha1;

use super::*;
use crate::torrent::task::store::PieceInfo;

const PIECE: u32 = 64;
const BLOCK: u32 = 16;

/// Pieces in memory with their hashes, counting the bytes read back and the write calls.
struct MemStore {
    data: Mutex<Vec<u8>>,
    hashes: Vec<[u8; 20]>,
    read_back: Mutex<usize>,
    write_calls: Mutex<usize>,
    fail_writes: bool,
}

impl MemStore {
    /// `pieces` pieces whose right content is [`content`].
    fn new(pieces: u32) -> Self {
        let good = content(pieces);
        let hashes = good
            .chunks(PIECE as usize)
            .map(|piece| Sha1::digest(piece).into())
            .collect();
        MemStore {
            data: Mutex::new(vec![0; good.len()]),
            hashes,
            read_back: Mutex::new(0),
            write_calls: Mutex::new(0),
            fail_writes: false,
        }
    }

    fn at(piece: PieceIndex, begin: u32) -> usize {
        (piece.get() * PIECE + begin) as usize
    }
}

fn content(pieces: u32) -> Vec<u8> {
    (0..pieces * PIECE).map(|i| (i * 7 % 251) as u8).collect()
}

impl BlockStore for MemStore {
    fn write(&self, block: BlockRef, data: &Bytes) -> Result<(), StoreError> {
        self.write_run(block.piece, block.begin, std::slice::from_ref(data))
    }
    fn write_run(&self, piece: PieceIndex, begin: u32, blocks: &[Bytes]) -> Result<(), StoreError> {
        if self.fail_writes {
            return Err("No space left on device".into());
        }
        *self.write_calls.lock().unwrap() += 1;
        let mut at = MemStore::at(piece, begin);
        let mut disk = self.data.lock().unwrap();
        for data in blocks {
            disk[at..at + data.len()].copy_from_slice(data);
            at += data.len();
        }
        Ok(())
    }
    fn read(&self, block: BlockRef) -> Result<Bytes, StoreError> {
        let at = MemStore::at(block.piece, block.begin);
        let disk = self.data.lock().unwrap();
        Ok(Bytes::copy_from_slice(
            &disk[at..at + block.length as usize],
        ))
    }
    fn read_range(
        &self,
        piece: PieceIndex,
        begin: u32,
        buf: &mut [u8],
    ) -> Result<bool, StoreError> {
        *self.read_back.lock().unwrap() += buf.len();
        let at = MemStore::at(piece, begin);
        buf.copy_from_slice(&self.data.lock().unwrap()[at..at + buf.len()]);
        Ok(true)
    }
    fn verify(&self, _piece: PieceIndex) -> Result<bool, StoreError> {
        unreachable!("the worker hashes itself when it knows the piece's hash")
    }
    fn piece_info(&self, piece: PieceIndex) -> Option<PieceInfo> {
        Some(PieceInfo {
            hash: *self.hashes.get(piece.as_usize())?,
            len: PIECE,
        })
    }
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn save_resume(&self, _have: &Bitfield, _up: u64, _down: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

fn block(piece: u32, index: u32) -> BlockRef {
    BlockRef {
        piece: PieceIndex(piece),
        begin: index * BLOCK,
        length: BLOCK,
    }
}

fn write(data: &[u8], piece: u32, index: u32) -> Job {
    let block = block(piece, index);
    let at = MemStore::at(block.piece, block.begin);
    Job::Write(
        block,
        Bytes::copy_from_slice(&data[at..at + BLOCK as usize]),
    )
}

fn run(worker: &mut Worker, jobs: Vec<Job>) -> Vec<Event> {
    let count = jobs.len();
    let mut batch = jobs;
    let done = worker.process(&mut batch);
    assert_eq!(done.events.len(), count, "one answer per job");
    done.events
}

fn verified(events: &[Event]) -> Vec<(u32, bool)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::PieceVerified(piece, good) => Some((piece.get(), *good)),
            _ => None,
        })
        .collect()
}

fn setup(pieces: u32) -> (Arc<MemStore>, Worker) {
    let store = Arc::new(MemStore::new(pieces));
    let worker = Worker::new(Arc::clone(&store) as Arc<dyn BlockStore>);
    (store, worker)
}

#[test]
fn blocks_in_order_are_written_together_and_verified_without_reading_back() {
    let (store, mut worker) = setup(2);
    let data = content(2);
    // One batch, shuffled across two pieces: sorted into one run per piece.
    let jobs = vec![
        write(&data, 1, 2),
        write(&data, 0, 0),
        write(&data, 1, 0),
        write(&data, 0, 1),
        write(&data, 1, 1),
        write(&data, 0, 2),
        write(&data, 0, 3),
        write(&data, 1, 3),
    ];
    let events = run(&mut worker, jobs);
    assert!(events.iter().all(|e| matches!(e, Event::BlockWritten(_))));
    assert_eq!(*store.write_calls.lock().unwrap(), 2, "one write per piece");
    let events = run(
        &mut worker,
        vec![Job::Verify(PieceIndex(0)), Job::Verify(PieceIndex(1))],
    );
    assert_eq!(verified(&events), [(0, true), (1, true)]);
    assert_eq!(*store.read_back.lock().unwrap(), 0);
    assert_eq!(*store.data.lock().unwrap(), data);
}

#[test]
fn blocks_out_of_order_are_hashed_once_the_gap_fills() {
    let (store, mut worker) = setup(1);
    let data = content(1);
    run(&mut worker, vec![write(&data, 0, 0)]);
    run(&mut worker, vec![write(&data, 0, 2)]);
    run(&mut worker, vec![write(&data, 0, 1)]);
    run(&mut worker, vec![write(&data, 0, 3)]);
    let events = run(&mut worker, vec![Job::Verify(PieceIndex(0))]);
    assert_eq!(verified(&events), [(0, true)]);
    assert_eq!(
        *store.read_back.lock().unwrap(),
        0,
        "block 2 was kept until block 1 came"
    );
}

#[test]
fn a_corrupt_piece_fails_and_passes_once_fetched_again() {
    let (store, mut worker) = setup(1);
    let data = content(1);
    let mut bad = data.clone();
    bad[20] ^= 0xff;
    run(&mut worker, (0..4).map(|i| write(&bad, 0, i)).collect());
    let events = run(&mut worker, vec![Job::Verify(PieceIndex(0))]);
    assert_eq!(verified(&events), [(0, false)]);
    run(&mut worker, (0..4).map(|i| write(&data, 0, i)).collect());
    let events = run(&mut worker, vec![Job::Verify(PieceIndex(0))]);
    assert_eq!(verified(&events), [(0, true)]);
    assert_eq!(*store.read_back.lock().unwrap(), 0);
}

#[test]
fn a_block_written_twice_is_checked_as_on_disk() {
    let (_store, mut worker) = setup(1);
    let data = content(1);
    let mut bad = data.clone();
    bad[5] ^= 1;
    // Block 0 good, then again corrupt (in one batch and across batches), the rest good:
    // the disk holds the corrupt copy, so the piece fails.
    run(&mut worker, vec![write(&data, 0, 0), write(&data, 0, 1)]);
    run(
        &mut worker,
        vec![write(&bad, 0, 0), write(&data, 0, 2), write(&data, 0, 3)],
    );
    let events = run(&mut worker, vec![Job::Verify(PieceIndex(0))]);
    assert_eq!(verified(&events), [(0, false)]);
    // And a good duplicate of a good block keeps the piece good.
    run(&mut worker, vec![write(&data, 0, 0), write(&data, 0, 0)]);
    run(&mut worker, (1..4).map(|i| write(&data, 0, i)).collect());
    let events = run(&mut worker, vec![Job::Verify(PieceIndex(0))]);
    assert_eq!(verified(&events), [(0, true)]);
}

#[test]
fn failed_writes_are_answered_one_failure_per_block() {
    let store = Arc::new(MemStore {
        fail_writes: true,
        ..MemStore::new(1)
    });
    let mut worker = Worker::new(Arc::clone(&store) as Arc<dyn BlockStore>);
    let data = content(1);
    let events = run(&mut worker, (0..3).map(|i| write(&data, 0, i)).collect());
    assert!(events.iter().all(
        |e| matches!(e, Event::StorageFailed(message) if message == "No space left on device")
    ));
}

#[test]
fn reads_are_served_from_one_read_ahead_of_the_piece() {
    let (store, mut worker) = setup(2);
    let data = content(2);
    *store.data.lock().unwrap() = data.clone();
    let peer = PeerKey(1);
    let jobs = (0..4).rev().map(|i| Job::Read(peer, block(1, i))).collect();
    let events = run(&mut worker, jobs);
    assert_eq!(
        *store.read_back.lock().unwrap(),
        PIECE as usize,
        "the piece read once"
    );
    for event in events {
        let Event::BlockRead(_, block, bytes) = event else {
            panic!("{event:?}");
        };
        let at = MemStore::at(block.piece, block.begin);
        assert_eq!(&bytes[..], &data[at..at + BLOCK as usize]);
    }
    // Cached: no further read; a write into the piece drops the cache.
    run(&mut worker, vec![Job::Read(peer, block(1, 2))]);
    assert_eq!(*store.read_back.lock().unwrap(), PIECE as usize);
    run(&mut worker, vec![write(&data, 1, 0)]);
    run(&mut worker, vec![Job::Read(peer, block(1, 2))]);
    assert_eq!(
        *store.read_back.lock().unwrap(),
        PIECE as usize + 2 * BLOCK as usize
    );
}

#[tokio::test]
async fn the_thread_answers_batches_and_ends_with_its_sender() {
    let store = Arc::new(MemStore::new(1));
    let Link { jobs, mut done, .. } = spawn(store as Arc<dyn BlockStore>);
    let data = content(1);
    jobs.send(vec![write(&data, 0, 0)]).unwrap();
    jobs.send((1..4).map(|i| write(&data, 0, i)).collect())
        .unwrap();
    jobs.send(vec![Job::Verify(PieceIndex(0))]).unwrap();
    let mut events = Vec::new();
    while events.len() < 5 {
        events.extend(done.recv().await.unwrap().events);
    }
    assert_eq!(verified(&events), [(0, true)]);
    drop(jobs);
    assert!(done.recv().await.is_none(), "the worker ends");
}
