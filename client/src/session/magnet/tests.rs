use super::*;

#[test]
fn torrent_bytes_keep_the_raw_info_dict() {
    let info = b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
    let bytes = torrent_bytes(info, &[vec!["http://t/a".to_owned()]]);
    let metainfo = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(metainfo.raw_info(), info);
    assert_eq!(metainfo.info_hash, InfoHash::of_info(info));
    assert_eq!(metainfo.trackers(), vec![vec!["http://t/a".to_owned()]]);
    let bare = Metainfo::from_bytes(&torrent_bytes(info, &[])).unwrap();
    assert!(bare.trackers().is_empty());
}

/// A torrent of three one-byte files `a`, `b`, `c` in one piece.
fn three_files() -> Metainfo {
    let info = b"d5:filesld6:lengthi1e4:pathl1:aeed6:lengthi1e4:pathl1:beed6:lengthi1e\
        4:pathl1:ceee4:name1:d12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
    Metainfo::from_bytes(&torrent_bytes(info, &[])).unwrap()
}

fn magnet(metainfo: &Metainfo, extra: &str) -> Magnet {
    Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{}{extra}",
        metainfo.info_hash
    ))
    .unwrap()
}

#[test]
fn so_selects_files_of_the_torrent_and_the_flag_wins() {
    let metainfo = three_files();
    assert_eq!(metainfo.info.files.len(), 3);
    let selected = select_only(&magnet(&metainfo, "&so=0,2-9"), &metainfo).unwrap();
    assert_eq!(selected, Some(vec![0, 2]));
    assert_eq!(select_only(&magnet(&metainfo, ""), &metainfo), Ok(None));
    let loaded = Loaded {
        metainfo: three_files(),
        peers: Vec::new(),
        only_files: selected,
    };
    assert_eq!(loaded.only_files(&[]), vec![0, 2]);
    assert_eq!(loaded.only_files(&[1]), vec![1]);
    let all = Loaded {
        only_files: None,
        ..loaded
    };
    assert_eq!(all.only_files(&[]), Vec::<usize>::new());
    assert_eq!(all.only_files(&[2]), vec![2]);
}

#[test]
fn so_naming_no_file_of_the_torrent_is_an_error() {
    let metainfo = three_files();
    let err = select_only(&magnet(&metainfo, "&so=3,7-9"), &metainfo).unwrap_err();
    assert_eq!(
        err,
        "the magnet link's file selection so=3,7-9 names none of the torrent's files (0 to 2)"
    );
}
