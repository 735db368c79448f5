//! `Magnet::parse` on arbitrary bytes read as lossy UTF-8.
//!
//! Checks, for every input that parses: the documented invariants (non-empty trackers and
//! web seeds, `so` ranges in order), and `Magnet::parse(&magnet.to_string()) == magnet`
//! whenever the formatted link is within `MAX_LEN` (percent-encoding can triple a value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rill_common::magnet::{FileSelection, MAX_LEN, Magnet};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(magnet) = Magnet::parse(&text) else {
        return;
    };
    assert!(magnet.trackers.iter().all(|t| !t.is_empty()));
    assert!(magnet.web_seeds.iter().all(|w| !w.is_empty()));
    for item in &magnet.select_only {
        if let FileSelection::Range(range) = item {
            assert!(range.start() <= range.end());
        }
    }
    let formatted = magnet.to_string();
    if formatted.len() <= MAX_LEN {
        assert_eq!(
            Magnet::parse(&formatted).as_ref(),
            Ok(&magnet),
            "{formatted}"
        );
    }
});
