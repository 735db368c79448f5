use std::net::{Ipv6Addr, SocketAddrV6};

use proptest::prelude::*;

use super::*;

const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
const BASE32: &str = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";
const V2: &str = "urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e";

fn hash() -> InfoHash {
    InfoHash::from_hex(HEX).unwrap()
}

#[test]
fn hex_link_with_name_and_trackers() {
    let text = format!(
        "magnet:?xt=urn:btih:{HEX}&dn=Big+Buck%20Bunny%2B1&tr=udp%3A%2F%2Ftracker.example%3A6969%2Fannounce\
         &tr.1=http://a.example/announce?key=1%262&tr.2=https%3A%2F%2Fb.example%2Fannounce&x.foo=ignored&flag"
    );
    let magnet = Magnet::parse(&text).unwrap();
    assert_eq!(magnet.info_hash, hash());
    assert_eq!(magnet.display_name.as_deref(), Some("Big Buck Bunny+1"));
    assert_eq!(
        magnet.trackers,
        vec![
            "udp://tracker.example:6969/announce",
            "http://a.example/announce?key=1&2",
            "https://b.example/announce",
        ]
    );
    assert!(magnet.peers.is_empty() && magnet.web_seeds.is_empty());
    assert!(magnet.select_only.is_empty());
    assert!(magnet.selects(12345));
}

#[test]
fn base32_link_and_case_insensitive_prefixes() {
    let magnet = Magnet::parse(&format!("  MAGNET:?XT=URN:BTIH:{BASE32}\n")).unwrap();
    assert_eq!(magnet, Magnet::new(hash()));
    let lower = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", BASE32.to_lowercase())).unwrap();
    assert_eq!(lower.info_hash, hash());
}

#[test]
fn peers_web_seeds_and_selection() {
    let text = format!(
        "magnet:?xt=urn:btih:{HEX}&x.pe=192.0.2.7:6881&x.pe=%5B2001:db8::1%5D:51413\
         &x.pe=[::1]:1&x.pe=peer.example:6882&ws=https%3A%2F%2Fseed.example%2Ffiles%2F&so=0,2,4-6"
    );
    let magnet = Magnet::parse(&text).unwrap();
    assert_eq!(
        magnet.peers,
        vec![
            PeerAddress::Ip("192.0.2.7:6881".parse().unwrap()),
            PeerAddress::Ip(SocketAddr::V6(SocketAddrV6::new(
                "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
                51413,
                0,
                0
            ))),
            PeerAddress::Ip("[::1]:1".parse().unwrap()),
            PeerAddress::Host {
                host: "peer.example".into(),
                port: 6882
            },
        ]
    );
    assert_eq!(magnet.web_seeds, vec!["https://seed.example/files/"]);
    assert_eq!(
        magnet.select_only,
        vec![
            FileSelection::Index(0),
            FileSelection::Index(2),
            FileSelection::Range(4..=6)
        ]
    );
    let selected: Vec<usize> = (0..8).filter(|&i| magnet.selects(i)).collect();
    assert_eq!(selected, vec![0, 2, 4, 5, 6]);
}

/// BEP 53's own example, `so=0,2,4,6-8`, applied to torrents of several sizes.
#[test]
fn select_only_follows_bep_53_example() {
    let magnet = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=NAME&so=0,2,4,6-8")).unwrap();
    assert_eq!(magnet.selected_files(10), Some(vec![0, 2, 4, 6, 7, 8]));
    // Indices past the last file select nothing; they are not an error.
    assert_eq!(magnet.selected_files(7), Some(vec![0, 2, 4, 6]));
    assert_eq!(magnet.selected_files(1), Some(vec![0]));
    assert_eq!(magnet.selected_files(0), Some(vec![]));
    // Without `so` every file is wanted.
    assert_eq!(Magnet::new(hash()).selected_files(5), None);
}

#[test]
fn select_only_items_overlap_repeat_and_accumulate_over_parameters() {
    let magnet = Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{HEX}&so=3,1-2&so=2-4,3&so.1=9"
    ))
    .unwrap();
    assert_eq!(magnet.selected_files(12), Some(vec![1, 2, 3, 4, 9]));
    // Percent-encoded commas and dashes are the same list.
    let encoded = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so=1%2C3%2D4")).unwrap();
    assert_eq!(encoded.selected_files(6), Some(vec![1, 3, 4]));
    // A range to the largest index is cheap to apply: only the torrent's files are visited.
    let huge = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so=2-{}", usize::MAX)).unwrap();
    assert_eq!(huge.selected_files(4), Some(vec![2, 3]));
}

#[test]
fn malformed_or_oversized_select_only_is_refused() {
    for bad in [
        "a", "1,", ",1", "1,,2", "-1", "1-", "5-3", "+1", "1-+2", " 1", "1.5", "1-2-3",
    ] {
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so={bad}")),
            Err(MagnetError::BadSelection(bad.into())),
            "so={bad}"
        );
    }
    let too_long = "99999999999999999999999999".to_owned();
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so={too_long}")),
        Err(MagnetError::BadSelection(too_long))
    );
    let at_cap = vec!["1"; MAX_SELECTION_ITEMS].join(",");
    let magnet = Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so={at_cap}")).unwrap();
    assert_eq!(magnet.select_only.len(), MAX_SELECTION_ITEMS);
    assert_eq!(
        Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so={at_cap}&so=2")),
        Err(MagnetError::TooManySelections(MAX_SELECTION_ITEMS + 1))
    );
    assert_eq!(
        MagnetError::TooManySelections(2000).to_string(),
        format!("file selection in magnet link has 2000 items, more than {MAX_SELECTION_ITEMS}")
    );
}

#[test]
fn hybrid_link_uses_btih_and_same_hash_twice_is_fine() {
    let magnet = Magnet::parse(&format!("magnet:?xt={V2}&xt=urn:btih:{HEX}")).unwrap();
    assert_eq!(magnet.info_hash, hash());
    let magnet = Magnet::parse(&format!(
        "magnet:?xt.1=urn:btih:{HEX}&xt.2=urn:btih:{BASE32}"
    ))
    .unwrap();
    assert_eq!(magnet.info_hash, hash());
}

#[test]
fn display_is_exact_and_escapes_separators() {
    let magnet = Magnet {
        info_hash: hash(),
        display_name: Some("a b&c+d=é".into()),
        trackers: vec!["http://t.example/announce?passkey=x&y=1#z".into()],
        peers: vec![
            PeerAddress::Ip("[::1]:6881".parse().unwrap()),
            PeerAddress::Host {
                host: "h.example".into(),
                port: 1,
            },
        ],
        web_seeds: vec!["https://w.example/a b".into()],
        select_only: vec![FileSelection::Index(1), FileSelection::Range(3..=9)],
    };
    let text = magnet.to_string();
    assert_eq!(
        text,
        format!(
            "magnet:?xt=urn:btih:{HEX}&dn=a%20b%26c%2Bd%3D%C3%A9\
             &tr=http://t.example/announce%3Fpasskey%3Dx%26y%3D1%23z\
             &ws=https://w.example/a%20b&x.pe=%5B::1%5D:6881&x.pe=h.example:1&so=1,3-9"
        )
    );
    assert_eq!(Magnet::parse(&text), Ok(magnet));
    assert_eq!(
        Magnet::new(hash()).to_string(),
        format!("magnet:?xt=urn:btih:{HEX}")
    );
}

#[test]
fn errors_say_what_is_wrong() {
    let other = "0123456789012345678901234567890123456789";
    let cases = [
        ("http://example.com/", MagnetError::NotMagnet),
        ("magnet:", MagnetError::NotMagnet),
        ("magnet:?dn=x&tr=y", MagnetError::NoInfoHash),
        ("magnet:?xt=urn:sha1:abc", MagnetError::NoInfoHash),
        (
            "magnet:?xt=urn:btih:abc",
            MagnetError::BadInfoHash("abc".into()),
        ),
        (
            &format!("magnet:?xt=urn:btih:{}", "z".repeat(40)),
            MagnetError::BadInfoHash("z".repeat(40)),
        ),
        (&format!("magnet:?xt={V2}"), MagnetError::V2Only),
        (
            "magnet:?xt=urn:btmh:1220abc",
            MagnetError::BadV2InfoHash("1220abc".into()),
        ),
        (
            &format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{other}"),
            MagnetError::ConflictingInfoHashes(hash(), InfoHash::from_hex(other).unwrap()),
        ),
        (
            &format!("magnet:?xt=urn:btih:{HEX}&x.pe=nohost"),
            MagnetError::BadPeer("nohost".into()),
        ),
        (
            &format!("magnet:?xt=urn:btih:{HEX}&x.pe=[::1]:99999"),
            MagnetError::BadPeer("[::1]:99999".into()),
        ),
        (
            &format!("magnet:?xt=urn:btih:{HEX}&so=1,6-4"),
            MagnetError::BadSelection("1,6-4".into()),
        ),
        (
            &format!("magnet:?xt=urn:btih:{HEX}&so="),
            MagnetError::BadSelection(String::new()),
        ),
    ];
    for (text, error) in cases {
        assert_eq!(Magnet::parse(text), Err(error), "{text}");
    }
    let long = format!("magnet:?xt=urn:btih:{HEX}&dn={}", "a".repeat(MAX_LEN));
    assert_eq!(Magnet::parse(&long), Err(MagnetError::TooLong(long.len())));
    assert_eq!(
        MagnetError::NoInfoHash.to_string(),
        "magnet link has no xt=urn:btih: parameter"
    );
    assert_eq!(
        MagnetError::BadInfoHash("abc".into()).to_string(),
        "info-hash `abc` in magnet link is not 40 hex or 32 base32 characters"
    );
    assert_eq!(
        MagnetError::V2Only.to_string(),
        "v2-only magnet links are not supported yet"
    );
}

/// Found by `cargo fuzz run magnet`: `u16::from_str` accepts `+881`, so `1.2.3.4:+881` became
/// a host named `1.2.3.4`, which formats as `1.2.3.4:881` and parses back as an IP address.
#[test]
fn fuzz_signed_port_is_refused() {
    let input: &[u8] = b"magnet:?xt=urn:btih:000102030405060708090a0b0c0d0e0f10111213&w/w\
        /f&x.pe=1.2.3.4:+881&x\0\0,4-61&so=0,2,4-6&x.pxample:1&so=0,2,4-6";
    assert_eq!(
        Magnet::parse(&String::from_utf8_lossy(input)),
        Err(MagnetError::BadPeer("1.2.3.4:+881".into()))
    );
    for text in ["host.example:+1", "host.example:", "host.example:-1"] {
        assert_eq!(
            text.parse::<PeerAddress>(),
            Err(MagnetError::BadPeer(text.into()))
        );
    }
    assert_eq!(
        "1.2.3.4:0881".parse::<PeerAddress>(),
        Ok(PeerAddress::Ip("1.2.3.4:881".parse().unwrap()))
    );
}

fn peer() -> impl Strategy<Value = PeerAddress> {
    prop_oneof![
        any::<std::net::SocketAddrV4>().prop_map(|a| PeerAddress::Ip(SocketAddr::V4(a))),
        any::<([u8; 16], u16)>().prop_map(|(ip, port)| PeerAddress::Ip(SocketAddr::V6(
            SocketAddrV6::new(ip.into(), port, 0, 0)
        ))),
        ("[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5})?", any::<u16>())
            .prop_map(|(host, port)| PeerAddress::Host { host, port }),
    ]
}

fn selection() -> impl Strategy<Value = FileSelection> {
    prop_oneof![
        (0usize..10_000).prop_map(FileSelection::Index),
        (0usize..10_000, 0usize..100).prop_map(|(s, n)| FileSelection::Range(s..=s + n)),
    ]
}

fn magnet() -> impl Strategy<Value = Magnet> {
    let text = || proptest::collection::vec(".{1,30}", 0..4);
    (
        any::<[u8; 20]>(),
        proptest::option::of(".{0,30}"),
        text(),
        proptest::collection::vec(peer(), 0..4),
        text(),
        proptest::collection::vec(selection(), 0..4),
    )
        .prop_map(
            |(hash, display_name, trackers, peers, web_seeds, select_only)| Magnet {
                info_hash: InfoHash::from_bytes(hash),
                display_name,
                trackers,
                peers,
                web_seeds,
                select_only,
            },
        )
}

proptest! {
    #[test]
    fn format_then_parse_round_trips(magnet in magnet()) {
        prop_assert_eq!(Magnet::parse(&magnet.to_string()), Ok(magnet));
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = Magnet::parse(&text);
    }

    #[test]
    fn select_only_text_never_panics_and_selects_within_the_torrent(
        so in "[0-9,+ -]{0,40}",
        files in 0usize..64,
    ) {
        let text = format!("magnet:?xt=urn:btih:{HEX}&so={so}");
        match Magnet::parse(&text) {
            Ok(magnet) => {
                let selected = magnet.selected_files(files).unwrap_or_default();
                prop_assert!(selected.iter().all(|&i| i < files));
                prop_assert!(selected.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(selected.iter().all(|&i| magnet.selects(i)));
                prop_assert_eq!(Magnet::parse(&magnet.to_string()), Ok(magnet));
            }
            Err(err) => prop_assert!(matches!(
                err,
                MagnetError::BadSelection(_) | MagnetError::TooManySelections(_)
            )),
        }
    }

    #[test]
    fn magnet_like_text_never_panics(
        parts in proptest::collection::vec(
            "(xt|dn|tr|tr\\.[0-9]|ws|x\\.pe|so|xt\\.1)=(urn:bt(ih|mh):)?[%0-9a-zA-Z:/\\[\\].,+-]{0,45}",
            0..6,
        )
    ) {
        let text = format!("magnet:?{}", parts.join("&"));
        if let Ok(magnet) = Magnet::parse(&text) {
            // Whatever parses formats to a link that parses to the same magnet.
            prop_assert_eq!(Magnet::parse(&magnet.to_string()), Ok(magnet));
        }
    }
}
