use proptest::prelude::*;
use rill_common::bitfield::{Bitfield, BitfieldError};
use rill_common::info_hash::InfoHash;
use rill_common::pieces::PieceIndex;

use super::{
    FileStamp, RESUME_VERSION, ResumeData, ResumeError, pieces_to_recheck, trusted_pieces,
};
use crate::storage::layout::Layout;

const HASH: InfoHash = InfoHash::from_bytes([7; 20]);

/// A layout with files `(length, pad)`.
fn layout(piece_length: u32, files: &[(u64, bool)]) -> Layout {
    Layout::new(&crate::storage::layout::tests::info(piece_length, files))
}

fn bitfield(count: u32, pieces: &[u32]) -> Bitfield {
    let mut field = Bitfield::new(count);
    for &piece in pieces {
        field.set(PieceIndex::new(piece), true);
    }
    field
}

/// `bytes` with the first occurrence of `from` replaced by `to`.
fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let from = from.as_bytes();
    let at = bytes
        .windows(from.len())
        .position(|window| window == from)
        .expect("pattern present");
    [&bytes[..at], to.as_bytes(), &bytes[at + from.len()..]].concat()
}

fn stamp(size: u64, mtime: i64) -> FileStamp {
    FileStamp { size, mtime }
}

fn sample() -> ResumeData {
    ResumeData {
        info_hash: HASH,
        have: bitfield(10, &[0, 3, 9]),
        files: vec![stamp(100, 1_700_000_000), stamp(0, -5)],
        file_priorities: vec![1, 0],
        uploaded: 12345,
        downloaded: 67890,
    }
}

#[test]
fn round_trip() {
    let data = sample();
    let bytes = data.to_bytes();
    assert_eq!(ResumeData::from_bytes(&bytes, &HASH, 10), Ok(data));
}

#[test]
fn known_encoding() {
    let data = ResumeData {
        info_hash: HASH,
        have: bitfield(3, &[1]),
        files: vec![stamp(5, 9)],
        file_priorities: vec![2],
        uploaded: 1,
        downloaded: 4,
    };
    let mut expected = b"d10:downloadedi4e5:filesll i5ei9eee4:have1:\x40".to_vec();
    expected.retain(|&b| b != b' ');
    expected.extend_from_slice(b"9:info-hash20:");
    expected.extend_from_slice(&[7; 20]);
    expected.extend_from_slice(b"6:piecesi3e10:priorities1:\x028:uploadedi1e7:versioni1ee");
    assert_eq!(data.to_bytes(), expected);
}

#[test]
fn refuses_another_torrent() {
    let bytes = sample().to_bytes();
    let other = InfoHash::from_bytes([8; 20]);
    assert_eq!(
        ResumeData::from_bytes(&bytes, &other, 10),
        Err(ResumeError::OtherTorrent {
            expected: other,
            found: HASH
        })
    );
}

#[test]
fn refuses_wrong_piece_count_and_bitfield_length() {
    let bytes = sample().to_bytes();
    assert!(matches!(
        ResumeData::from_bytes(&bytes, &HASH, 11),
        Err(ResumeError::PieceCount {
            expected: 11,
            found: 10
        })
    ));
    // A bitfield of the wrong length for a matching piece count.
    let text = replace(&bytes, "6:piecesi10e", "6:piecesi17e");
    assert!(matches!(
        ResumeData::from_bytes(&text, &HASH, 17),
        Err(ResumeError::Bitfield(BitfieldError::WrongLength { .. }))
    ));
}

#[test]
fn refuses_unknown_version() {
    let bytes = sample().to_bytes();
    let text = replace(&bytes, "7:versioni1e", "7:versioni2e");
    assert_eq!(
        ResumeData::from_bytes(&text, &HASH, 10),
        Err(ResumeError::UnknownVersion(2))
    );
    assert_eq!(RESUME_VERSION, 1);
}

#[test]
fn refuses_garbage() {
    for bytes in [
        &b""[..],
        b"i1e",
        b"de",
        b"d7:versioni1e",
        b"d7:versioni1e9:info-hash3:abce",
    ] {
        assert!(
            ResumeData::from_bytes(bytes, &HASH, 10).is_err(),
            "{bytes:?}"
        );
    }
    let text = replace(&sample().to_bytes(), "i12345e", "i-1e");
    assert_eq!(
        ResumeData::from_bytes(&text, &HASH, 10),
        Err(ResumeError::Invalid("negative count"))
    );
    let text = replace(&sample().to_bytes(), "2:\x01\x00", "1:\x01");
    assert_eq!(
        ResumeData::from_bytes(&text, &HASH, 10),
        Err(ResumeError::Invalid("not one priority per file"))
    );
}

#[test]
fn unchanged_files_keep_every_piece() {
    // Files [0,10) [10,25) [25,40), piece length 8: pieces 0..=4.
    let layout = layout(8, &[(10, false), (15, false), (15, false)]);
    let files = vec![stamp(10, 1), stamp(15, 2), stamp(15, 3)];
    let data = ResumeData {
        info_hash: HASH,
        have: bitfield(5, &[0, 1, 2, 4]),
        files: files.clone(),
        file_priorities: vec![1; 3],
        uploaded: 0,
        downloaded: 0,
    };
    assert_eq!(trusted_pieces(&data, &files, &layout), data.have);
    assert!(pieces_to_recheck(&data, &files, &layout).none());
}

#[test]
fn a_changed_file_drops_the_pieces_it_touches() {
    // Files [0,10) [10,25) [25,40), piece length 8: file 1 is in pieces 1..=3.
    let layout = layout(8, &[(10, false), (15, false), (15, false)]);
    let saved = vec![stamp(10, 1), stamp(15, 2), stamp(15, 3)];
    let data = ResumeData {
        info_hash: HASH,
        have: bitfield(5, &[0, 1, 2, 3, 4]),
        files: saved,
        file_priorities: vec![1; 3],
        uploaded: 0,
        downloaded: 0,
    };
    let mtime_changed = vec![stamp(10, 1), stamp(15, 99), stamp(15, 3)];
    assert_eq!(
        trusted_pieces(&data, &mtime_changed, &layout),
        bitfield(5, &[0, 4])
    );
    assert_eq!(
        pieces_to_recheck(&data, &mtime_changed, &layout),
        bitfield(5, &[1, 2, 3])
    );
    let size_changed = vec![stamp(10, 1), stamp(15, 2), stamp(3, 3)];
    assert_eq!(
        trusted_pieces(&data, &size_changed, &layout),
        bitfield(5, &[0, 1, 2])
    );
    // A file count that does not match the torrent: trust nothing.
    assert!(trusted_pieces(&data, &mtime_changed[..2], &layout).none());
}

#[test]
fn pad_file_stamps_are_ignored() {
    let layout = layout(8, &[(5, false), (3, true), (8, false)]);
    let saved = vec![stamp(5, 1), stamp(0, 0), stamp(8, 2)];
    let data = ResumeData {
        info_hash: HASH,
        have: bitfield(2, &[0, 1]),
        files: saved,
        file_priorities: vec![1; 3],
        uploaded: 0,
        downloaded: 0,
    };
    let now = vec![stamp(5, 1), stamp(3, 77), stamp(8, 2)];
    assert_eq!(trusted_pieces(&data, &now, &layout), data.have);
}

#[test]
fn unverified_pieces_are_never_trusted() {
    // The saved bitfield is the only source of trust: a piece absent from it stays absent
    // whatever the files look like (a piece being written at a `kill -9` is not in it).
    let layout = layout(8, &[(40, false)]);
    let files = vec![stamp(40, 5)];
    let data = ResumeData {
        info_hash: HASH,
        have: bitfield(5, &[2]),
        files: files.clone(),
        file_priorities: vec![1],
        uploaded: 0,
        downloaded: 0,
    };
    assert_eq!(trusted_pieces(&data, &files, &layout), bitfield(5, &[2]));
}

fn resume_data() -> impl Strategy<Value = ResumeData> {
    (
        1u32..100,
        prop::collection::vec((0u64..=i64::MAX as u64, any::<i64>(), any::<u8>()), 0..8),
        0u64..=i64::MAX as u64,
        0u64..=i64::MAX as u64,
        any::<[u8; 20]>(),
        any::<u64>(),
    )
        .prop_map(|(count, files, uploaded, downloaded, hash, seed)| {
            let have: Vec<u32> = (0..count).filter(|p| (seed >> (p % 64)) & 1 == 1).collect();
            ResumeData {
                info_hash: InfoHash::from_bytes(hash),
                have: bitfield(count, &have),
                files: files.iter().map(|f| stamp(f.0, f.1)).collect(),
                file_priorities: files.iter().map(|f| f.2).collect(),
                uploaded,
                downloaded,
            }
        })
}

proptest! {
    #[test]
    fn round_trips(data in resume_data()) {
        let bytes = data.to_bytes();
        let back = ResumeData::from_bytes(&bytes, &data.info_hash, data.have.piece_count());
        prop_assert_eq!(back, Ok(data));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), count in 0u32..64) {
        let _ = ResumeData::from_bytes(&bytes, &HASH, count);
    }

    #[test]
    fn mutated_files_never_panic(data in resume_data(), index in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = data.to_bytes();
        let at = index % bytes.len();
        bytes[at] = byte;
        let _ = ResumeData::from_bytes(&bytes, &data.info_hash, data.have.piece_count());
    }
}

proptest! {
    #[test]
    fn trust_is_the_saved_pieces_minus_changed_files(
        piece_length in 1u32..32,
        files in prop::collection::vec((0u64..100, any::<bool>(), any::<bool>()), 1..8),
        seed in any::<u64>(),
    ) {
        prop_assume!(files.iter().any(|f| f.0 > 0));
        let shape: Vec<(u64, bool)> = files.iter().map(|f| (f.0, f.1)).collect();
        let layout = layout(piece_length, &shape);
        let count = layout.piece_count();
        let have: Vec<u32> = (0..count).filter(|p| (seed >> (p % 64)) & 1 == 1).collect();
        let saved: Vec<FileStamp> = files.iter().map(|f| stamp(f.0, 10)).collect();
        // The third flag changes the file's mtime.
        let now: Vec<FileStamp> = files
            .iter()
            .map(|f| stamp(f.0, if f.2 { 11 } else { 10 }))
            .collect();
        let data = ResumeData {
            info_hash: HASH,
            have: bitfield(count, &have),
            files: saved,
            file_priorities: vec![1; files.len()],
            uploaded: 0,
            downloaded: 0,
        };
        let trusted = trusted_pieces(&data, &now, &layout);
        let recheck = pieces_to_recheck(&data, &now, &layout);
        for piece in (0..count).map(PieceIndex::new) {
            let touches_changed = layout
                .spans(piece, 0, piece_length)
                .any(|span| !span.pad && files[span.file].2);
            let saved_have = data.have.get(piece);
            prop_assert_eq!(trusted.get(piece), saved_have && !touches_changed);
            prop_assert_eq!(recheck.get(piece), saved_have && touches_changed);
        }
    }
}
