use super::*;

#[test]
fn refuses_wrong_hash_count() {
    let layout = Layout::new(&crate::storage::layout::tests::info(16, &[(40, false)]));
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Storage::open(dir.path(), layout, vec![]),
        Err(StorageError::PieceHashes {
            expected: 3,
            found: 0
        })
    ));
}
