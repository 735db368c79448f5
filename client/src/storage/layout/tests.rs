use proptest::prelude::*;
use rill_common::metainfo::{FileAttr, FileEntry, Info};
use rill_common::pieces::PieceIndex;

use super::{Layout, Span};

/// An `Info` with files `(length, pad)` named f0, f1, ...; multi-file unless one file.
pub(crate) fn info(piece_length: u32, files: &[(u64, bool)]) -> Info {
    let mut offset = 0;
    let entries: Vec<FileEntry> = files
        .iter()
        .enumerate()
        .map(|(i, &(length, pad))| {
            let entry = FileEntry {
                path: vec!["dir".to_owned(), format!("f{i}")],
                length,
                offset,
                attr: FileAttr {
                    pad,
                    ..FileAttr::default()
                },
                symlink_path: None,
            };
            offset += length;
            entry
        })
        .collect();
    let count = offset.div_ceil(u64::from(piece_length)) as usize;
    Info {
        name: "t".to_owned(),
        piece_length,
        pieces: vec![[0; 20]; count],
        files: entries,
        private: false,
        multi_file: true,
    }
}

fn spans(layout: &Layout, piece: u32, begin: u32, len: u32) -> Vec<Span> {
    layout.spans(PieceIndex::new(piece), begin, len).collect()
}

fn span(file: usize, offset: u64, len: u32) -> Span {
    Span {
        file,
        offset,
        len,
        pad: false,
    }
}

#[test]
fn single_file() {
    let mut info = info(16, &[(40, false)]);
    info.multi_file = false;
    info.files[0].path = vec!["t".to_owned()];
    let layout = Layout::new(&info);
    assert_eq!(layout.piece_count(), 3);
    assert_eq!(layout.total_length(), 40);
    assert_eq!(spans(&layout, 1, 4, 8), vec![span(0, 20, 8)]);
    assert_eq!(layout.piece_range(PieceIndex::new(1)), 16..32);
    assert_eq!(layout.files_of_piece(PieceIndex::new(2)), 0..1);
    assert_eq!(
        layout.pieces_of_file(0),
        Some(PieceIndex::new(0)..=PieceIndex::new(2))
    );
    assert_eq!(layout.relative_path(0), Some("t".into()));
    assert_eq!(layout.relative_path(1), None);
}

#[test]
fn last_piece_is_short() {
    let layout = Layout::new(&info(16, &[(40, false)]));
    assert_eq!(layout.piece_range(PieceIndex::new(2)), 32..40);
    assert_eq!(layout.piece_size(PieceIndex::new(2)), 8);
    assert_eq!(layout.piece_size(PieceIndex::new(0)), 16);
    // A whole-piece request on the last piece stops at the end of the torrent.
    assert_eq!(spans(&layout, 2, 0, 16), vec![span(0, 32, 8)]);
    // Past the end: nothing.
    assert_eq!(spans(&layout, 3, 0, 16), vec![]);
    assert_eq!(layout.piece_size(PieceIndex::new(3)), 0);
    assert_eq!(layout.files_of_piece(PieceIndex::new(3)), 0..0);
}

#[test]
fn multi_file_piece_straddles_three_files() {
    // Files: [0,10) [10,13) [13,20) [20,45); piece length 16.
    let layout = Layout::new(&info(
        16,
        &[(10, false), (3, false), (7, false), (25, false)],
    ));
    assert_eq!(
        spans(&layout, 0, 0, 16),
        vec![span(0, 0, 10), span(1, 0, 3), span(2, 0, 3)]
    );
    assert_eq!(layout.files_of_piece(PieceIndex::new(0)), 0..3);
    assert_eq!(
        spans(&layout, 1, 0, 16),
        vec![span(2, 3, 4), span(3, 0, 12)]
    );
    assert_eq!(layout.files_of_piece(PieceIndex::new(1)), 2..4);
    // A block inside a piece, starting mid-file.
    assert_eq!(
        spans(&layout, 0, 9, 6),
        vec![span(0, 9, 1), span(1, 0, 3), span(2, 0, 2)]
    );
    assert_eq!(
        layout.pieces_of_file(2),
        Some(PieceIndex::new(0)..=PieceIndex::new(1))
    );
    assert_eq!(
        layout.pieces_of_file(3),
        Some(PieceIndex::new(1)..=PieceIndex::new(2))
    );
    assert_eq!(layout.relative_path(3), Some("t/dir/f3".into()));
}

#[test]
fn empty_files_are_skipped() {
    // Empty files first, in the middle (two in a row) and last.
    let layout = Layout::new(&info(
        8,
        &[
            (0, false),
            (5, false),
            (0, false),
            (0, false),
            (6, false),
            (0, false),
        ],
    ));
    assert_eq!(spans(&layout, 0, 0, 8), vec![span(1, 0, 5), span(4, 0, 3)]);
    assert_eq!(spans(&layout, 1, 0, 8), vec![span(4, 3, 3)]);
    assert_eq!(layout.pieces_of_file(0), None);
    assert_eq!(layout.pieces_of_file(2), None);
    assert_eq!(layout.pieces_of_file(5), None);
    assert_eq!(layout.pieces_of_file(6), None);
    assert_eq!(layout.files_of_piece(PieceIndex::new(0)), 1..5);
    assert_eq!(layout.files_of_piece(PieceIndex::new(1)), 4..5);
}

#[test]
fn pad_files_are_marked() {
    // BEP 47: a pad file aligns the next file to a piece boundary.
    let layout = Layout::new(&info(8, &[(5, false), (3, true), (8, false)]));
    assert_eq!(
        spans(&layout, 0, 0, 8),
        vec![
            span(0, 0, 5),
            Span {
                file: 1,
                offset: 0,
                len: 3,
                pad: true
            }
        ]
    );
    assert_eq!(spans(&layout, 1, 0, 8), vec![span(2, 0, 8)]);
    assert!(layout.is_pad(1));
    assert!(!layout.is_pad(0));
    assert!(!layout.is_pad(9));
}

#[test]
fn priorities_take_the_highest_wanted_file() {
    // Files: [0,10) [10,13) [13,20) [20,45); piece length 16: pieces 0,1,2.
    let layout = Layout::new(&info(
        16,
        &[(10, false), (3, false), (7, false), (25, false)],
    ));
    assert_eq!(layout.piece_priorities(&[0, 0, 0, 0]), vec![0, 0, 0]);
    assert_eq!(layout.piece_priorities(&[1, 1, 1, 1]), vec![1, 1, 1]);
    assert_eq!(layout.piece_priorities(&[0, 3, 0, 0]), vec![3, 0, 0]);
    assert_eq!(layout.piece_priorities(&[2, 0, 5, 0]), vec![5, 5, 0]);
    assert_eq!(layout.piece_priorities(&[0, 0, 0, 4]), vec![0, 4, 4]);
    // Missing entries are the default priority.
    assert_eq!(layout.piece_priorities(&[0, 0, 0]), vec![0, 1, 1]);
    assert_eq!(layout.piece_priorities(&[]), vec![1, 1, 1]);
}

#[test]
fn pad_files_never_make_a_piece_wanted() {
    // Piece 1 holds only the tail of a pad file and file 2's start.
    let layout = Layout::new(&info(8, &[(5, false), (11, true), (8, false)]));
    assert_eq!(layout.piece_priorities(&[1, 7, 0]), vec![1, 0, 0]);
    assert_eq!(layout.piece_priorities(&[0, 7, 2]), vec![0, 0, 2]);
}

fn file_list() -> impl Strategy<Value = (u32, Vec<(u64, bool)>)> {
    (
        1u32..64,
        prop::collection::vec((prop_oneof![Just(0u64), 1u64..200], any::<bool>()), 1..12),
    )
        .prop_filter("torrent must not be empty", |(_, files)| {
            files.iter().map(|f| f.0).sum::<u64>() > 0
        })
}

proptest! {
    #[test]
    fn spans_cover_the_range_exactly(
        (piece_length, files) in file_list(),
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let info = info(piece_length, &files);
        let layout = Layout::new(&info);
        let pieces = u64::from(layout.piece_count());
        let piece = a % pieces;
        let range = layout.piece_range(PieceIndex::new(piece as u32));
        let size = range.end - range.start;
        let begin = b % size;
        let len = 1 + (b / size) % (size - begin);
        let mut pos = range.start + begin;
        let mut covered = 0u64;
        let mut last_file = None;
        for span in layout.spans(PieceIndex::new(piece as u32), begin as u32, len as u32) {
            let file = &info.files[span.file];
            prop_assert!(span.len > 0);
            prop_assert!(span.offset + u64::from(span.len) <= file.length);
            prop_assert_eq!(file.offset + span.offset, pos, "contiguous");
            prop_assert_eq!(span.pad, file.attr.pad);
            prop_assert!(last_file < Some(span.file), "files in order");
            last_file = Some(span.file);
            pos += u64::from(span.len);
            covered += u64::from(span.len);
        }
        prop_assert_eq!(covered, len);
        let files_of = layout.files_of_piece(PieceIndex::new(piece as u32));
        let whole: Vec<usize> = layout
            .spans(PieceIndex::new(piece as u32), 0, size as u32)
            .map(|s| s.file)
            .collect();
        prop_assert_eq!(whole.first().copied(), Some(files_of.start));
        prop_assert_eq!(whole.last().copied(), Some(files_of.end - 1));
    }

    #[test]
    fn pieces_of_file_agree_with_spans((piece_length, files) in file_list()) {
        let layout = Layout::new(&info(piece_length, &files));
        for file in 0..files.len() {
            let expected: Vec<u32> = (0..layout.piece_count())
                .filter(|&p| {
                    layout
                        .spans(PieceIndex::new(p), 0, piece_length)
                        .any(|s| s.file == file)
                })
                .collect();
            let got: Vec<u32> = layout
                .pieces_of_file(file)
                .map(|r| (r.start().get()..=r.end().get()).collect())
                .unwrap_or_default();
            prop_assert_eq!(got, expected);
        }
    }
}

proptest! {
    #[test]
    fn piece_priorities_match_a_brute_force(
        (piece_length, files) in file_list(),
        priorities in prop::collection::vec(0u8..4, 0..12),
    ) {
        let layout = Layout::new(&info(piece_length, &files));
        let got = layout.piece_priorities(&priorities);
        prop_assert_eq!(got.len(), layout.piece_count() as usize);
        for (piece, &priority) in got.iter().enumerate() {
            let expected = layout
                .spans(PieceIndex::new(piece as u32), 0, piece_length)
                .filter(|span| !span.pad)
                .map(|span| priorities.get(span.file).copied().unwrap_or(super::DEFAULT_FILE_PRIORITY))
                .max()
                .unwrap_or(0);
            prop_assert_eq!(priority, expected, "piece {}", piece);
        }
    }
}
