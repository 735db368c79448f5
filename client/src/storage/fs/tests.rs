use std::sync::atomic::AtomicU64;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use tempfile::TempDir;

use super::*;
use crate::storage::layout::tests::info;

/// A torrent's storage in a temp dir, with the data it should hold.
pub(crate) struct Fixture {
    pub dir: TempDir,
    pub storage: Arc<Storage>,
    /// The torrent's bytes, zeros in pad files.
    pub data: Vec<u8>,
}

impl Fixture {
    /// Files `(length, pad)` named `t/dir/f0`, `t/dir/f1`..., random content.
    pub fn new(piece_length: u32, files: &[(u64, bool)], seed: u64) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        Fixture::in_dir(dir, piece_length, files, seed)
    }

    /// The same torrent (same `seed`) in an existing folder.
    pub fn in_dir(dir: TempDir, piece_length: u32, files: &[(u64, bool)], seed: u64) -> Fixture {
        let layout = Layout::new(&info(piece_length, files));
        let mut data = vec![0u8; layout.total_length() as usize];
        StdRng::seed_from_u64(seed).fill_bytes(&mut data);
        for file in 0..layout.file_count() {
            if layout.is_pad(file) {
                let start = layout.file_offset(file).unwrap() as usize;
                let end = start + layout.file_length(file).unwrap() as usize;
                data[start..end].fill(0);
            }
        }
        let hashes = data
            .chunks(piece_length as usize)
            .map(|piece| Sha1::digest(piece).into())
            .collect();
        let storage = Arc::new(Storage::open(dir.path(), layout, hashes).unwrap());
        Fixture { dir, storage, data }
    }

    /// Reopens the storage (as a restarted process would).
    pub fn reopen(self, piece_length: u32, files: &[(u64, bool)], seed: u64) -> Fixture {
        Fixture::in_dir(self.dir, piece_length, files, seed)
    }

    pub fn layout(&self) -> &Layout {
        self.storage.layout()
    }

    /// The torrent bytes of `block`.
    pub fn bytes(&self, block: BlockRef) -> &[u8] {
        let start = self.layout().piece_range(block.piece).start as usize + block.begin as usize;
        &self.data[start..start + block.length as usize]
    }

    /// Every block of `piece`, `size` bytes each (the last may be short).
    pub fn blocks_of(&self, piece: u32, size: u32) -> Vec<BlockRef> {
        let piece = PieceIndex::new(piece);
        let piece_len = self.layout().piece_size(piece);
        (0..piece_len.div_ceil(size))
            .map(|n| BlockRef {
                piece,
                begin: n * size,
                length: size.min(piece_len - n * size),
            })
            .collect()
    }

    /// Every block of the torrent.
    pub fn all_blocks(&self, size: u32) -> Vec<BlockRef> {
        (0..self.layout().piece_count())
            .flat_map(|piece| self.blocks_of(piece, size))
            .collect()
    }

    /// Writes all of `piece`'s blocks with the right data.
    pub fn write_piece(&self, piece: u32) {
        for block in self.blocks_of(piece, 8) {
            self.storage.write_block(block, self.bytes(block)).unwrap();
        }
    }

    pub fn path(&self, file: usize) -> PathBuf {
        self.storage.path(file).unwrap()
    }
}

pub(crate) fn bitfield(count: u32, pieces: &[u32]) -> Bitfield {
    let mut field = Bitfield::new(count);
    for &piece in pieces {
        field.set(PieceIndex::new(piece), true);
    }
    field
}

fn pieces(field: &Bitfield) -> Vec<u32> {
    field.iter().map(PieceIndex::get).collect()
}

/// Pad file, empty files at the start, middle and end, a piece length that does not
/// divide the files.
const FILES: &[(u64, bool)] = &[
    (0, false),
    (20, false),
    (0, false),
    (12, true),
    (50, false),
    (7, false),
    (25, true),
    (40, false),
    (0, false),
];

#[test]
fn storage_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Storage>();
}

#[test]
fn refuses_wrong_hash_count() {
    let layout = Layout::new(&info(16, &[(40, false)]));
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Storage::open(dir.path(), layout, vec![]),
        Err(StorageError::PieceHashes {
            expected: 3,
            found: 0
        })
    ));
}

#[test]
fn blocks_in_random_order_verify_and_read_back() {
    let fixture = Fixture::new(32, FILES, 1);
    let mut blocks = fixture.all_blocks(8);
    blocks.shuffle(&mut StdRng::seed_from_u64(2));
    for &block in &blocks {
        fixture
            .storage
            .write_block(block, fixture.bytes(block))
            .unwrap();
    }
    fixture.storage.sync().unwrap();
    for piece in 0..fixture.layout().piece_count() {
        assert!(
            fixture
                .storage
                .verify_piece(PieceIndex::new(piece))
                .unwrap(),
            "piece {piece}"
        );
    }
    for &block in &blocks {
        let read = fixture.storage.read_block(block).unwrap();
        assert_eq!(&read[..], fixture.bytes(block), "{block:?}");
    }
    // On disk, byte for byte; pad files never created, empty files only on request.
    for file in 0..fixture.layout().file_count() {
        let path = fixture.path(file);
        let length = fixture.layout().file_length(file).unwrap();
        if fixture.layout().is_pad(file) || length == 0 {
            assert!(!path.exists(), "{}", path.display());
            continue;
        }
        let start = fixture.layout().file_offset(file).unwrap() as usize;
        let expected = &fixture.data[start..start + length as usize];
        assert_eq!(fs::read(&path).unwrap(), expected, "{}", path.display());
    }
    fixture.storage.create_empty_files().unwrap();
    for file in [0, 2, 8] {
        assert_eq!(fs::metadata(fixture.path(file)).unwrap().len(), 0);
    }
    assert!(!fixture.path(3).exists(), "pad files are never created");
}

#[test]
fn piece_spanning_three_files() {
    let files = &[(5, false), (10, false), (5, false), (20, false)];
    let fixture = Fixture::new(16, files, 3);
    let piece = PieceIndex::new(0);
    let spanned: Vec<usize> = fixture
        .layout()
        .spans(piece, 0, 16)
        .map(|span| span.file)
        .collect();
    assert_eq!(spanned, vec![0, 1, 2]);
    let block = BlockRef {
        piece,
        begin: 0,
        length: 16,
    };
    fixture
        .storage
        .write_block(block, fixture.bytes(block))
        .unwrap();
    assert!(fixture.storage.verify_piece(piece).unwrap());
    assert!(!fixture.storage.verify_piece(PieceIndex::new(1)).unwrap());
    assert_eq!(fs::read(fixture.path(0)).unwrap(), &fixture.data[0..5]);
    assert_eq!(fs::read(fixture.path(1)).unwrap(), &fixture.data[5..15]);
    // File 2 was sized to its full length; its first byte is piece 0's last.
    let third = fs::read(fixture.path(2)).unwrap();
    assert_eq!(third.len(), 5);
    assert_eq!(third[0], fixture.data[15]);
    assert_eq!(
        &fixture.storage.read_block(block).unwrap()[..],
        fixture.bytes(block)
    );
}

#[test]
fn new_files_are_sparse() {
    const LEN: u64 = 16 << 20;
    let fixture = Fixture::new(1 << 20, &[(LEN, false)], 4);
    let block = BlockRef {
        piece: PieceIndex::new(10),
        begin: 0,
        length: 16384,
    };
    fixture
        .storage
        .write_block(block, fixture.bytes(block))
        .unwrap();
    let meta = fs::metadata(fixture.path(0)).unwrap();
    assert_eq!(meta.len(), LEN);
    // st_blocks counts 512-byte units actually allocated.
    let allocated = meta.blocks() * 512;
    assert!(allocated < LEN / 8, "{allocated} bytes allocated of {LEN}");
}

#[test]
fn check_finds_exactly_the_good_pieces() {
    let fixture = Fixture::new(32, FILES, 5);
    let count = fixture.layout().piece_count();
    assert_eq!(count, 5);
    // Before anything is written: nothing had, no error.
    let all = Bitfield::full(count);
    let none = fixture.storage.check(&all, &|_| {}).unwrap();
    assert!(none.none());
    fixture.write_piece(0);
    fixture.write_piece(2);
    fixture.write_piece(4);
    // Piece 1: half written. Piece 3: all written, one byte wrong.
    let half = fixture.blocks_of(1, 8);
    for &block in &half[..half.len() / 2] {
        fixture
            .storage
            .write_block(block, fixture.bytes(block))
            .unwrap();
    }
    for (n, block) in fixture.blocks_of(3, 8).into_iter().enumerate() {
        let mut bytes = fixture.bytes(block).to_vec();
        // The last block lies in f7 (the others partly in a pad file, never written).
        if n == 3 {
            bytes[3] ^= 1;
        }
        fixture.storage.write_block(block, &bytes).unwrap();
    }
    let checked = AtomicU64::new(0);
    let have = fixture
        .storage
        .check(&all, &|bytes| {
            checked.fetch_add(bytes, Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(pieces(&have), vec![0, 2, 4]);
    assert_eq!(checked.into_inner(), fixture.layout().total_length());
    // Only the pieces asked about are checked.
    let some = fixture
        .storage
        .check(&bitfield(count, &[1, 2]), &|_| {})
        .unwrap();
    assert_eq!(pieces(&some), vec![2]);
}

#[test]
fn missing_files_mean_not_had() {
    let fixture = Fixture::new(32, FILES, 6);
    fixture.write_piece(0);
    // Piece 4 lies in the last file only, never written: no file, not an error.
    assert!(!fixture.storage.verify_piece(PieceIndex::new(4)).unwrap());
    assert_eq!(pieces(&fixture.storage.pieces_on_disk()), vec![0]);
    let block = fixture.blocks_of(4, 8)[0];
    let error = fixture.storage.read_block(block).unwrap_err();
    assert!(matches!(error, StorageError::Missing { .. }), "{error}");
    assert!(error.to_string().contains("f7"), "{error}");
}

#[test]
fn existing_files_are_never_truncated() {
    let files = &[(40, false), (40, false)];
    let fixture = Fixture::new(16, files, 7);
    fs::create_dir_all(fixture.path(0).parent().unwrap()).unwrap();
    // File 0 longer than the torrent says, file 1 shorter: foreign bytes everywhere.
    let long = vec![0xAA; 100];
    let short = vec![0xBB; 10];
    fs::write(fixture.path(0), &long).unwrap();
    fs::write(fixture.path(1), &short).unwrap();
    let block = BlockRef {
        piece: PieceIndex::new(0),
        begin: 0,
        length: 8,
    };
    fixture
        .storage
        .write_block(block, fixture.bytes(block))
        .unwrap();
    let block = BlockRef {
        piece: PieceIndex::new(4),
        begin: 8,
        length: 8,
    };
    fixture
        .storage
        .write_block(block, fixture.bytes(block))
        .unwrap();
    let first = fs::read(fixture.path(0)).unwrap();
    assert_eq!(first.len(), 100, "never shrunk");
    assert_eq!(&first[..8], &fixture.data[..8]);
    assert_eq!(&first[8..], &long[8..]);
    let second = fs::read(fixture.path(1)).unwrap();
    assert_eq!(second.len(), 40, "grown to its length");
    assert_eq!(&second[..10], &short[..], "kept");
    assert_eq!(&second[32..40], &fixture.data[72..80]);
}

fn assert_one_line_with_path(error: &StorageError, path: &Path, cause: &str) {
    let text = error.to_string();
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains(cause), "{text}");
    assert_eq!(error.path(), Some(path));
}

#[test]
fn disk_full_is_one_line_naming_the_file() {
    let fixture = Fixture::new(16, &[(40, false)], 8);
    let path = fixture.path(0);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let block = fixture.blocks_of(1, 16)[0];
    let error = fixture
        .storage
        .write_block(block, fixture.bytes(block))
        .unwrap_err();
    assert!(matches!(error, StorageError::DiskFull { .. }), "{error:?}");
    assert_one_line_with_path(&error, &path, "disk full");
}

#[test]
fn not_a_directory_is_one_line_naming_the_file() {
    let fixture = Fixture::new(16, &[(40, false)], 9);
    // `t/dir` should be a directory; make it a file.
    let path = fixture.path(0);
    let parent = path.parent().unwrap();
    fs::create_dir_all(parent.parent().unwrap()).unwrap();
    fs::write(parent, b"in the way").unwrap();
    let block = fixture.blocks_of(0, 16)[0];
    let error = fixture
        .storage
        .write_block(block, fixture.bytes(block))
        .unwrap_err();
    assert!(
        matches!(error, StorageError::NotADirectory { .. }),
        "{error:?}"
    );
    assert_one_line_with_path(&error, &path, "not a directory");
    assert_eq!(fs::read(parent).unwrap(), b"in the way", "left alone");
}

#[test]
fn root_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("file");
    fs::write(&root, b"x").unwrap();
    let layout = Layout::new(&info(16, &[(40, false)]));
    let error = Storage::open(&root, layout, vec![[0; 20]; 3])
        .err()
        .unwrap();
    assert_one_line_with_path(&error, &root, "not a directory");
}

#[test]
fn invalid_blocks_are_refused() {
    let fixture = Fixture::new(16, &[(40, false)], 10);
    let block = |piece, begin, length| BlockRef {
        piece: PieceIndex::new(piece),
        begin,
        length,
    };
    for bad in [
        block(3, 0, 8),
        block(2, 4, 8),
        block(0, 0, 0),
        block(0, 10, 8),
    ] {
        let data = vec![0; bad.length as usize];
        let error = fixture.storage.write_block(bad, &data).unwrap_err();
        assert!(
            matches!(error, StorageError::InvalidBlock { .. }),
            "{bad:?}: {error}"
        );
        assert!(fixture.storage.read_block(bad).is_err(), "{bad:?}");
    }
    // Data of the wrong length.
    let error = fixture
        .storage
        .write_block(block(0, 0, 8), &[0; 7])
        .unwrap_err();
    assert!(
        matches!(error, StorageError::DataLength { len: 7, .. }),
        "{error}"
    );
    assert!(fixture.storage.verify_piece(PieceIndex::new(3)).is_err());
    assert!(!fixture.path(0).exists(), "nothing written");
}

#[test]
fn many_files_from_many_threads_through_a_small_cache() {
    // More files than the handle cache holds, written from several threads at once.
    let files: Vec<(u64, bool)> = (0..150).map(|i| (5 + i % 7, false)).collect();
    let fixture = Fixture::new(64, &files, 11);
    let mut blocks = fixture.all_blocks(8);
    blocks.shuffle(&mut StdRng::seed_from_u64(12));
    std::thread::scope(|scope| {
        for chunk in blocks.chunks(blocks.len().div_ceil(4)) {
            let fixture = &fixture;
            scope.spawn(move || {
                for &block in chunk {
                    fixture
                        .storage
                        .write_block(block, fixture.bytes(block))
                        .unwrap();
                }
            });
        }
    });
    assert!(fixture.storage.handles.len() <= DEFAULT_CAPACITY);
    fixture.storage.sync().unwrap();
    let count = fixture.layout().piece_count();
    let have = fixture
        .storage
        .check(&Bitfield::full(count), &|_| {})
        .unwrap();
    assert!(have.all(), "{} of {count}", have.count());
}

#[test]
fn file_stamps_follow_the_files() {
    let fixture = Fixture::new(32, FILES, 13);
    let before = fixture.storage.file_stamps();
    assert_eq!(before, vec![FileStamp::default(); FILES.len()]);
    fixture.write_piece(0);
    fixture.write_piece(1);
    let after = fixture.storage.file_stamps();
    let meta = fs::metadata(fixture.path(1)).unwrap();
    assert_eq!(
        after[1],
        FileStamp {
            size: 20,
            mtime: meta.mtime()
        }
    );
    assert_eq!(after[3], FileStamp::default(), "pad file");
    assert_eq!(after[4].size, 50, "grown to its length on first write");
    assert_eq!(after[7], FileStamp::default(), "not written yet");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Any layout (empty and pad files anywhere), any block size, any write order: every
    /// piece verifies and every block reads back as written.
    #[test]
    fn any_layout_round_trips(
        files in proptest::collection::vec((0u64..70, proptest::bool::weighted(0.2)), 1..8),
        piece_length in 1u32..40,
        block_size in 1u32..20,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let total: u64 = files.iter().map(|(length, _)| length).sum();
        proptest::prop_assume!(total > 0);
        let fixture = Fixture::new(piece_length, &files, seed);
        let mut blocks = fixture.all_blocks(block_size);
        blocks.shuffle(&mut StdRng::seed_from_u64(seed));
        for &block in &blocks {
            fixture.storage.write_block(block, fixture.bytes(block)).unwrap();
        }
        let count = fixture.layout().piece_count();
        let have = fixture.storage.check(&Bitfield::full(count), &|_| {}).unwrap();
        proptest::prop_assert!(have.all());
        for &block in &blocks {
            let read = fixture.storage.read_block(block).unwrap();
            proptest::prop_assert_eq!(&read[..], fixture.bytes(block));
        }
    }
}

/// The blocks of `blocks` as the `Bytes` a peer's messages would carry.
fn block_bytes(fixture: &Fixture, blocks: &[BlockRef]) -> Vec<Bytes> {
    blocks
        .iter()
        .map(|block| Bytes::copy_from_slice(fixture.bytes(*block)))
        .collect()
}

#[test]
fn runs_of_blocks_are_written_across_files_and_pad_files() {
    // 32-byte pieces of 4-byte blocks over files (and a pad file) that cut through blocks.
    let files = &[(7, false), (3, true), (13, false), (1, false), (40, false)];
    let fixture = Fixture::new(32, files, 21);
    for piece in 0..fixture.layout().piece_count() {
        let blocks = fixture.blocks_of(piece, 4);
        // The first two blocks alone, then the rest as one run.
        let (head, tail) = blocks.split_at(2);
        let piece = PieceIndex::new(piece);
        fixture
            .storage
            .write_run(piece, 0, &block_bytes(&fixture, head))
            .unwrap();
        fixture
            .storage
            .write_run(piece, tail[0].begin, &block_bytes(&fixture, tail))
            .unwrap();
        assert!(fixture.storage.verify_piece(piece).unwrap());
        let mut back = vec![0; fixture.layout().piece_size(piece) as usize];
        assert!(fixture.storage.read_range(piece, 0, &mut back).unwrap());
        let whole = BlockRef {
            piece,
            begin: 0,
            length: back.len() as u32,
        };
        assert_eq!(back, fixture.bytes(whole));
    }
    assert!(!fixture.path(1).exists(), "pad files are never created");
    assert_eq!(fs::read(fixture.path(4)).unwrap(), &fixture.data[24..]);
}

#[test]
fn a_run_past_its_piece_is_refused_before_writing() {
    let fixture = Fixture::new(16, &[(40, false)], 22);
    let blocks = fixture.blocks_of(0, 8);
    let mut data = block_bytes(&fixture, &blocks);
    data.push(data[0].clone());
    let error = fixture
        .storage
        .write_run(PieceIndex::new(0), 0, &data)
        .unwrap_err();
    assert!(
        matches!(error, StorageError::InvalidBlock { .. }),
        "{error:?}"
    );
    assert!(!fixture.path(0).exists(), "nothing written");
    let mut past = vec![0; 8];
    assert!(
        !fixture
            .storage
            .read_range(PieceIndex::new(0), 12, &mut past)
            .unwrap()
    );
}

#[test]
fn a_run_on_a_full_disk_is_one_line_naming_the_file() {
    let fixture = Fixture::new(16, &[(40, false)], 23);
    let path = fixture.path(0);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    let blocks = fixture.blocks_of(1, 8);
    let error = fixture
        .storage
        .write_run(PieceIndex::new(1), 0, &block_bytes(&fixture, &blocks))
        .unwrap_err();
    assert!(matches!(error, StorageError::DiskFull { .. }), "{error:?}");
    assert_one_line_with_path(&error, &path, "disk full");
}
