use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::*;
use crate::storage::fs::tests::Fixture;

const FILES: &[(u64, bool)] = &[
    (20, false),
    (12, true),
    (50, false),
    (0, false),
    (40, false),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reads_verifies_and_checks_off_the_async_threads() {
    let fixture = Fixture::new(32, FILES, 1);
    // A budget of three blocks, two operations at once: writes wait for each other.
    let disk = Disk::with_limits(Arc::clone(&fixture.storage), 24, 2);
    let mut blocks = fixture.all_blocks(8);
    blocks.shuffle(&mut StdRng::seed_from_u64(2));
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    for &block in &blocks {
        let sender = sender.clone();
        let data = Bytes::copy_from_slice(fixture.bytes(block));
        disk.queue_write(block, data, move |result| {
            sender.send((block, result)).unwrap();
        })
        .await;
    }
    drop(sender);
    disk.drain().await;
    assert!(disk.verify(PieceIndex::new(0)).await.unwrap(), "drained");
    let mut written = Vec::new();
    while let Some((block, result)) = receiver.recv().await {
        result.unwrap();
        written.push(block);
    }
    written.sort();
    blocks.sort();
    assert_eq!(written, blocks);
    assert_eq!(
        disk.write_budget.available_permits(),
        24,
        "all budget returned"
    );

    let count = fixture.layout().piece_count();
    for piece in 0..count {
        assert!(
            disk.verify(PieceIndex::new(piece)).await.unwrap(),
            "{piece}"
        );
    }
    for &block in &blocks {
        assert_eq!(&disk.read(block).await.unwrap()[..], fixture.bytes(block));
    }
    disk.sync().await.unwrap();
    let checked = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&checked);
    let have = disk
        .check(Bitfield::full(count), move |bytes| {
            counter.fetch_add(bytes, Ordering::Relaxed);
        })
        .await
        .unwrap();
    assert!(have.all());
    assert_eq!(
        checked.load(Ordering::Relaxed),
        fixture.layout().total_length()
    );
    let stamps = disk.file_stamps().await.unwrap();
    assert_eq!(stamps[2].size, 50);
}

#[tokio::test]
async fn a_block_larger_than_the_budget_still_goes_through() {
    let fixture = Fixture::new(32, FILES, 3);
    let disk = Disk::with_limits(Arc::clone(&fixture.storage), 4, 1);
    for block in fixture.blocks_of(0, 16) {
        let data = Bytes::copy_from_slice(fixture.bytes(block));
        disk.write(block, data).await.unwrap();
    }
    assert!(disk.verify(PieceIndex::new(0)).await.unwrap());
}

#[tokio::test]
async fn writes_wait_while_the_budget_is_spent() {
    let fixture = Fixture::new(32, FILES, 4);
    let disk = Disk::with_limits(Arc::clone(&fixture.storage), 16, 1);
    let held = Arc::clone(&disk.write_budget)
        .acquire_many_owned(16)
        .await
        .unwrap();
    let block = fixture.blocks_of(0, 8)[0];
    let data = Bytes::copy_from_slice(fixture.bytes(block));
    let mut write = pin!(disk.write(block, data));
    let mut context = Context::from_waker(Waker::noop());
    assert!(matches!(write.as_mut().poll(&mut context), Poll::Pending));
    assert!(
        !fixture.path(0).exists(),
        "nothing written while the budget is spent"
    );
    drop(held);
    write.await.unwrap();
    assert_eq!(&disk.read(block).await.unwrap()[..], fixture.bytes(block));
}

#[tokio::test]
async fn errors_come_back_as_storage_errors() {
    let fixture = Fixture::new(32, FILES, 5);
    let disk = Disk::new(Arc::clone(&fixture.storage));
    let path = fixture.path(0);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(Path::new("/dev/full"), &path).unwrap();
    let block = fixture.blocks_of(0, 8)[0];
    let data = Bytes::copy_from_slice(fixture.bytes(block));
    let error = disk.write(block, data).await.unwrap_err();
    assert!(matches!(error, StorageError::DiskFull { .. }), "{error}");
    let missing = fixture.blocks_of(3, 8)[0];
    let error = disk.read(missing).await.unwrap_err();
    assert!(matches!(error, StorageError::Missing { .. }), "{error}");
    assert!(!disk.verify(PieceIndex::new(3)).await.unwrap());
}

#[tokio::test]
async fn startup_have_and_empty_files() {
    let fixture = Fixture::new(32, FILES, 6);
    fixture.write_piece(0);
    fixture.write_piece(2);
    let disk = Disk::new(Arc::clone(&fixture.storage));
    let have = disk.startup_have(None, |_| {}).await.unwrap();
    assert_eq!(
        have.iter().map(PieceIndex::get).collect::<Vec<_>>(),
        vec![0, 2]
    );
    // An existing "empty" file with content is left alone.
    std::fs::write(fixture.path(3), b"kept").unwrap();
    disk.create_empty_files().await.unwrap();
    assert_eq!(std::fs::read(fixture.path(3)).unwrap(), b"kept");
}

#[tokio::test]
async fn drain_waits_for_writes_in_flight() {
    let fixture = Fixture::new(32, FILES, 7);
    let disk = Disk::with_limits(Arc::clone(&fixture.storage), 16, 1);
    // A write in flight holds part of the budget.
    let in_flight = Arc::clone(&disk.write_budget)
        .acquire_many_owned(8)
        .await
        .unwrap();
    let mut drain = pin!(disk.drain());
    let mut context = Context::from_waker(Waker::noop());
    assert!(matches!(drain.as_mut().poll(&mut context), Poll::Pending));
    drop(in_flight);
    drain.await;
    assert_eq!(disk.write_budget.available_permits(), 16);
}
