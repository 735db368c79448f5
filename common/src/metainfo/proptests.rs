//! Property tests: no input panics the parser; generated torrents parse back to their fields.

use proptest::prelude::*;

use super::*;

/// A generated valid torrent, kept as owned data so the encoder can borrow it.
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    piece_length: u32,
    /// (folders, length); the file itself is named `f<index>` so paths never clash.
    files: Option<Vec<(Vec<String>, u64)>>,
    single_length: u64,
    private: bool,
    tiers: Vec<Vec<String>>,
    seeds: Vec<String>,
    comment: Option<String>,
    date: Option<i64>,
}

impl Spec {
    fn paths(&self) -> Vec<(Vec<String>, u64)> {
        match &self.files {
            None => vec![(vec![self.name.clone()], self.single_length)],
            Some(files) => files
                .iter()
                .enumerate()
                .map(|(i, (folders, length))| {
                    let mut path = folders.clone();
                    path.push(format!("f{i}"));
                    (path, *length)
                })
                .collect(),
        }
    }

    fn total(&self) -> u64 {
        self.paths().iter().map(|p| p.1).sum()
    }

    fn strings(list: &[String]) -> Vec<Value<'_>> {
        list.iter().map(|s| Value::Bytes(s.as_bytes())).collect()
    }

    fn hashes(&self) -> Vec<u8> {
        let count = self.total().div_ceil(u64::from(self.piece_length));
        (0..count * 20).map(|i| (i * 7) as u8).collect()
    }

    fn encode(&self) -> Vec<u8> {
        let hashes = self.hashes();
        let paths = self.paths();
        let int = |n: u64| Value::Int(n as i64);
        let mut info = Dict::new()
            .with(b"name", Value::Bytes(self.name.as_bytes()))
            .with(b"piece length", int(u64::from(self.piece_length)))
            .with(b"pieces", Value::Bytes(&hashes));
        if self.private {
            info.insert(b"private", Value::Int(1));
        }
        if self.files.is_some() {
            let list = paths
                .iter()
                .map(|(path, length)| {
                    let path = path.iter().map(|c| Value::Bytes(c.as_bytes())).collect();
                    Value::Dict(
                        Dict::new()
                            .with(b"length", int(*length))
                            .with(b"path", Value::List(path)),
                    )
                })
                .collect();
            info.insert(b"files", Value::List(list));
        } else {
            info.insert(b"length", int(self.single_length));
        }
        let mut root = Dict::new().with(b"info", Value::Dict(info));
        if let Some(first) = self.tiers.first().and_then(|t| t.first()) {
            root.insert(b"announce", Value::Bytes(first.as_bytes()));
        }
        let tiers = self
            .tiers
            .iter()
            .map(|t| Value::List(Self::strings(t)))
            .collect();
        root.insert(b"announce-list", Value::List(tiers));
        root.insert(b"url-list", Value::List(Self::strings(&self.seeds)));
        if let Some(comment) = &self.comment {
            root.insert(b"comment", Value::Bytes(comment.as_bytes()));
        }
        if let Some(date) = self.date {
            root.insert(b"creation date", Value::Int(date));
        }
        Value::Dict(root).to_bytes()
    }
}

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_ é-]{1,8}"
}

fn spec() -> impl Strategy<Value = Spec> {
    let folders = prop::collection::vec("d[a-z]{0,3}", 0..3);
    let files = prop::option::of(prop::collection::vec((folders, 0u64..50_000), 1..20));
    (
        word(),
        prop_oneof![(14u32..21).prop_map(|k| 1 << k), 1u32..100_000],
        files,
        1u64..100_000,
        any::<bool>(),
        prop::collection::vec(prop::collection::vec("http://[a-z]{1,6}/a", 1..3), 0..3),
        prop::collection::vec("http://[a-z]{1,6}/", 0..3),
        prop::option::of("[a-z ]{1,20}"),
        prop::option::of(any::<i64>()),
    )
        .prop_map(
            |(name, piece_length, files, single_length, private, tiers, seeds, comment, date)| {
                let mut spec = Spec {
                    name,
                    piece_length,
                    files,
                    single_length,
                    private,
                    tiers,
                    seeds,
                    comment,
                    date,
                };
                // At least one byte of content, or the torrent is rightly refused.
                if let Some(first) = spec.files.as_mut().and_then(|files| files.first_mut()) {
                    first.1 += 1;
                }
                spec
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metainfo::from_bytes(&bytes);
        let _ = Info::from_bytes(&bytes);
    }

    #[test]
    fn generated_torrents_parse_back(spec in spec()) {
        let bytes = spec.encode();
        let m = Metainfo::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&m.info.name, &spec.name);
        prop_assert_eq!(m.info.piece_length, spec.piece_length);
        prop_assert_eq!(m.info.pieces.concat(), spec.hashes());
        prop_assert_eq!(m.info.private, spec.private);
        prop_assert_eq!(m.info.multi_file, spec.files.is_some());
        let mut offset = 0;
        let paths = spec.paths();
        prop_assert_eq!(m.info.files.len(), paths.len());
        for (file, (path, length)) in m.info.files.iter().zip(paths) {
            prop_assert_eq!(&file.path, &path);
            prop_assert_eq!(file.length, length);
            prop_assert_eq!(file.offset, offset);
            offset += length;
        }
        prop_assert_eq!(m.info.total_length(), spec.total());
        let sizes: u64 = (0..m.info.piece_count() as u32)
            .map(|i| u64::from(m.info.piece_size(i).unwrap()))
            .sum();
        prop_assert_eq!(sizes, spec.total());
        prop_assert_eq!(&m.announce_list, &spec.tiers);
        prop_assert_eq!(&m.url_list, &spec.seeds);
        prop_assert_eq!(&m.comment, &spec.comment);
        prop_assert_eq!(m.creation_date, spec.date);
        prop_assert_eq!(m.info_hash, InfoHash::of_info(m.raw_info()));
        prop_assert_eq!(Info::from_bytes(m.raw_info()).unwrap(), m.info);
    }

    #[test]
    fn mutated_torrents_never_panic(
        spec in spec(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = spec.encode();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at.index(bytes.len());
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        if let Ok(m) = Metainfo::from_bytes(&bytes) {
            // Whatever parses keeps its invariants.
            prop_assert_eq!(
                m.info.total_length().div_ceil(u64::from(m.info.piece_length)),
                m.info.piece_count() as u64
            );
            for file in &m.info.files {
                prop_assert_eq!(path::path_problem(&file.path), None);
            }
        }
    }
}
