use super::*;
use crate::storage::layout::Layout;
use crate::storage::layout::tests::info;
use rill_common::bitfield::Bitfield;
use rill_common::pieces::PieceIndex;

/// Files of 100 KiB, 0 bytes and 50 KiB in 32 KiB pieces: 5 pieces, the second file empty,
/// piece 3 shared by the first and third files.
fn layout() -> Layout {
    Layout::new(&info(
        32 * 1024,
        &[(100 * 1024, false), (0, false), (50 * 1024, false)],
    ))
}

#[test]
fn file_priorities_follow_only_files() {
    let layout = layout();
    assert_eq!(file_priorities(&layout, &[]).unwrap(), vec![1, 1, 1]);
    assert_eq!(file_priorities(&layout, &[2]).unwrap(), vec![0, 0, 1]);
    let err = file_priorities(&layout, &[3]).unwrap_err().to_string();
    assert!(err.contains("no file 3"), "{err}");
}

#[test]
fn wanted_left_counts_missing_wanted_pieces() {
    let layout = layout();
    let total = 150 * 1024;
    let mut have = Bitfield::new(layout.piece_count());
    assert_eq!(wanted_left(&layout, &have, &[]), total);
    have.set(PieceIndex(4), true);
    // The last piece is 150 - 128 = 22 KiB.
    assert_eq!(wanted_left(&layout, &have, &[]), total - 22 * 1024);
    // Only the third file: pieces 3 and 4; piece 4 is had.
    let priorities = layout.piece_priorities(&[0, 0, 1]);
    assert_eq!(wanted_left(&layout, &have, &priorities), 32 * 1024);
}

#[test]
fn file_views_skip_pad_files_and_map_pieces() {
    let views = file_views(&layout(), &[0, 0, 1]);
    assert_eq!(views.len(), 3);
    assert_eq!(views[0].pieces, Some((0, 3)));
    assert_eq!(views[1].pieces, None, "an empty file has no pieces");
    assert_eq!(views[2].pieces, Some((3, 4)));
    assert!(!views[0].wanted && views[2].wanted);
    let padded = Layout::new(&info(
        32 * 1024,
        &[(10, false), (32 * 1024 - 10, true), (5, false)],
    ));
    assert_eq!(file_views(&padded, &[]).len(), 2);
}

#[test]
fn seed_root_accepts_the_parent_or_the_torrent_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("t")).unwrap();
    assert_eq!(seed_root(dir.path(), "t"), dir.path());
    assert_eq!(seed_root(&dir.path().join("t"), "t"), dir.path());
    // Neither: the folder as given (the check then finds nothing).
    assert_eq!(seed_root(&dir.path().join("x"), "t"), dir.path().join("x"));
}

#[tokio::test]
async fn bind_takes_the_given_port_or_any() {
    let (listener, port) = bind(Some(0)).await.unwrap();
    assert_ne!(port, 0);
    assert_eq!(listener.local_addr().unwrap().port(), port);
    // The port is taken now: asking for it again fails in one line.
    let err = bind(Some(port)).await.unwrap_err().to_string();
    assert!(err.contains(&port.to_string()), "{err}");
}
