use super::*;

#[test]
fn resume_path_is_under_dot_rill() {
    let hash = InfoHash::from_bytes([0xab; 20]);
    assert_eq!(
        resume_path(Path::new("/dl"), &hash),
        Path::new("/dl/.rill").join(format!("{}.resume", "ab".repeat(20)))
    );
}
