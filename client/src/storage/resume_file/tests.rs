use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime};

use rill_common::pieces::PieceIndex;

use super::*;
use crate::storage::fs::tests::{Fixture, bitfield};
use crate::torrent::resume::FileStamp;

const HASH: InfoHash = InfoHash::from_bytes([0x5a; 20]);
/// Two files of 40 bytes, pieces of 16: piece 2 straddles them.
const FILES: &[(u64, bool)] = &[(40, false), (40, false)];

fn pieces(field: &Bitfield) -> Vec<u32> {
    field.iter().map(PieceIndex::get).collect()
}

/// What the shell saves: sync first, then stamps and the verified pieces.
fn resume_data(fixture: &Fixture, have: &[u32]) -> ResumeData {
    fixture.storage.sync().unwrap();
    ResumeData {
        info_hash: HASH,
        have: bitfield(fixture.layout().piece_count(), have),
        files: fixture.storage.file_stamps(),
        file_priorities: vec![1; fixture.layout().file_count()],
        uploaded: 10,
        downloaded: 20,
    }
}

fn path(fixture: &Fixture) -> PathBuf {
    resume_path(fixture.dir.path(), &HASH)
}

/// Overwrites bytes of a file in place, then sets its mtime to `mtime` seconds.
fn tamper(path: &Path, offset: u64, bytes: &[u8], mtime: i64) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(mtime).unwrap());
    file.set_modified(time).unwrap();
}

#[test]
fn resume_path_is_under_dot_rill() {
    let hash = InfoHash::from_bytes([0xab; 20]);
    assert_eq!(
        resume_path(Path::new("/dl"), &hash),
        Path::new("/dl/.rill").join(format!("{}.resume", "ab".repeat(20)))
    );
}

#[test]
fn save_and_load_round_trip() {
    let fixture = Fixture::new(16, FILES, 1);
    fixture.write_piece(0);
    let path = path(&fixture);
    assert_eq!(load(&path, &HASH, 5).unwrap(), None, "no file yet");
    let data = resume_data(&fixture, &[0]);
    save(&path, &data).unwrap();
    assert_eq!(load(&path, &HASH, 5).unwrap(), Some(data.clone()));
    // Saved again over the old one; no temporary file left behind.
    let mut newer = data;
    newer.uploaded = 99;
    save(&path, &newer).unwrap();
    assert_eq!(load(&path, &HASH, 5).unwrap(), Some(newer));
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![path.file_name().unwrap().to_owned()]);
}

#[test]
fn corrupt_or_foreign_resume_files_are_ignored() {
    let fixture = Fixture::new(16, FILES, 2);
    let path = path(&fixture);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, b"d7:versioni1e").unwrap();
    assert_eq!(load(&path, &HASH, 5).unwrap(), None, "truncated");
    fs::write(&path, b"\x00\xffnot bencode").unwrap();
    assert_eq!(load(&path, &HASH, 5).unwrap(), None, "garbage");
    save(&path, &resume_data(&fixture, &[])).unwrap();
    let other = InfoHash::from_bytes([1; 20]);
    assert_eq!(load(&path, &other, 5).unwrap(), None, "another torrent's");
    assert_eq!(load(&path, &HASH, 6).unwrap(), None, "another piece count");
    assert!(load(&path, &HASH, 5).unwrap().is_some());
}

#[test]
fn unreadable_resume_file_is_an_error_naming_it() {
    let fixture = Fixture::new(16, FILES, 3);
    // A directory where the file should be: reading it fails (EISDIR), and says where.
    let path = path(&fixture);
    fs::create_dir_all(&path).unwrap();
    let error = load(&path, &HASH, 5).unwrap_err();
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn changed_files_are_rechecked_unchanged_ones_trusted() {
    let fixture = Fixture::new(16, FILES, 4);
    for piece in 0..5 {
        fixture.write_piece(piece);
    }
    let data = resume_data(&fixture, &[0, 1, 2, 3, 4]);
    let saved: Vec<FileStamp> = data.files.clone();
    // File 1 (pieces 2, 3, 4) changed since the save: piece 3 damaged, new mtime.
    tamper(&fixture.path(1), 20, b"XX", saved[1].mtime + 100);
    // File 0 damaged too, but its size and mtime kept: indistinguishable from unchanged,
    // so trusted without hashing (the documented limit of stamps).
    tamper(&fixture.path(0), 0, b"YY", saved[0].mtime);

    let plan = plan_startup(&fixture.storage, Some(&data));
    assert_eq!(pieces(&plan.trusted), vec![0, 1]);
    assert_eq!(pieces(&plan.to_check), vec![2, 3, 4]);
    assert_eq!(plan.bytes_to_check(&fixture.storage), 48);
    let checked = std::sync::atomic::AtomicU64::new(0);
    let have = startup_have(&fixture.storage, Some(&data), &|bytes| {
        checked.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(pieces(&have), vec![0, 1, 2, 4]);
    assert_eq!(checked.into_inner(), 48);
}

#[test]
fn after_kill_9_new_pieces_are_found_and_half_written_ones_not_trusted() {
    let files = &[(48, false), (48, false)];
    let fixture = Fixture::new(16, files, 5);
    fixture.write_piece(0);
    fixture.write_piece(1);
    let data = resume_data(&fixture, &[0, 1]);
    save(&path(&fixture), &data).unwrap();
    // After the last save: pieces 2 and 3 complete, piece 4 half written, piece 5 all
    // written with a bad block; then the process dies (no sync, no save).
    fixture.write_piece(2);
    fixture.write_piece(3);
    let half = fixture.blocks_of(4, 8)[0];
    fixture
        .storage
        .write_block(half, fixture.bytes(half))
        .unwrap();
    for block in fixture.blocks_of(5, 8) {
        let mut bytes = fixture.bytes(block).to_vec();
        bytes[0] ^= 0x80;
        fixture.storage.write_block(block, &bytes).unwrap();
    }

    let fixture = fixture.reopen(16, files, 5);
    let resume = load(&path(&fixture), &HASH, 6).unwrap();
    assert_eq!(resume.as_ref(), Some(&data));
    let have = startup_have(&fixture.storage, resume.as_ref(), &|_| {}).unwrap();
    assert_eq!(pieces(&have), vec![0, 1, 2, 3]);
    // Without the resume file the same pieces are found by hashing alone.
    let have = startup_have(&fixture.storage, None, &|_| {}).unwrap();
    assert_eq!(pieces(&have), vec![0, 1, 2, 3]);
}

#[test]
fn saved_pieces_whose_files_are_gone_are_not_trusted() {
    let fixture = Fixture::new(16, FILES, 6);
    for piece in 0..5 {
        fixture.write_piece(piece);
    }
    let data = resume_data(&fixture, &[0, 1, 2, 3, 4]);
    fs::remove_file(fixture.path(1)).unwrap();
    let fixture = fixture.reopen(16, FILES, 6);
    let plan = plan_startup(&fixture.storage, Some(&data));
    assert_eq!(pieces(&plan.trusted), vec![0, 1]);
    assert!(plan.to_check.none(), "piece 2 lacks its second file");
    let have = startup_have(&fixture.storage, Some(&data), &|_| {}).unwrap();
    assert_eq!(pieces(&have), vec![0, 1]);
}

#[test]
fn fresh_start_with_no_files_has_nothing() {
    let fixture = Fixture::new(16, FILES, 7);
    let plan = plan_startup(&fixture.storage, None);
    assert!(plan.trusted.none() && plan.to_check.none());
    let have = startup_have(&fixture.storage, None, &|_| {}).unwrap();
    assert!(have.none());
    assert!(!fixture.dir.path().join(RESUME_DIR).exists());
}

#[test]
fn checkpoint_stamps_the_files_after_syncing() {
    let fixture = Fixture::new(16, FILES, 8);
    fixture.write_piece(0);
    fixture.write_piece(4);
    let data = ResumeData {
        info_hash: HASH,
        have: bitfield(5, &[0, 4]),
        files: Vec::new(),
        file_priorities: vec![0],
        uploaded: 1,
        downloaded: 2,
    };
    checkpoint(&fixture.storage, &path(&fixture), data).unwrap();
    let saved = load(&path(&fixture), &HASH, 5).unwrap().unwrap();
    assert_eq!(saved.files, fixture.storage.file_stamps());
    assert_eq!(saved.file_priorities, vec![0, 1]);
    let fixture = fixture.reopen(16, FILES, 8);
    let plan = plan_startup(&fixture.storage, Some(&saved));
    assert_eq!(pieces(&plan.trusted), vec![0, 4]);
}
