//! `rill create`: hash a file or folder into a new .torrent file.
//!
//! The output is written to a temporary file beside the target and renamed into place, so an
//! interrupted run or a full disk never leaves a half-written torrent, and an existing file is
//! replaced only with `--force`.

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use rill_common::metainfo::{Metainfo, create};

use crate::cli::CreateArgs;
use crate::progress;

/// The creation options that the arguments ask for.
pub fn options(args: &CreateArgs, now: SystemTime) -> create::CreateOptions {
    create::CreateOptions {
        piece_length: args.piece_size,
        private: args.private,
        trackers: tiers(&args.trackers),
        web_seeds: args.web_seeds.clone(),
        comment: args.comment.clone(),
        created_by: Some(format!("Rill {}", env!("CARGO_PKG_VERSION"))),
        creation_date: (!args.no_date)
            .then(|| now.duration_since(UNIX_EPOCH).ok())
            .flatten()
            .and_then(|d| i64::try_from(d.as_secs()).ok()),
        pad_files: args.pad_files,
        name: args.name.clone(),
    }
}

/// Each `--tracker` is a tier; commas inside one separate the URLs of that tier.
pub fn tiers(trackers: &[String]) -> Vec<Vec<String>> {
    trackers
        .iter()
        .map(|tier| {
            tier.split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect()
}

/// `rill create PATH -o OUT.torrent ...`.
pub fn run(args: &CreateArgs) -> anyhow::Result<()> {
    if args.output.exists() && !args.force {
        bail!(
            "{} already exists (use --force to replace it)",
            args.output.display()
        );
    }
    let options = options(args, SystemTime::now());
    let bar = progress::bytes_bar(0, "hashing", args.quiet);
    let bytes = create::create(&args.path, &options, &|bytes, total| {
        bar.set_length(total);
        bar.inc(bytes);
    })
    .with_context(|| format!("cannot create a torrent of {}", args.path.display()))?;
    bar.finish_and_clear();
    let meta = Metainfo::from_bytes(&bytes).context("the new torrent does not parse back")?;
    write_atomically(&args.output, &bytes)?;
    if !args.quiet {
        eprintln!(
            "{}: {} in {} pieces, info hash {}",
            args.output.display(),
            indicatif::BinaryBytes(meta.info.total_length()),
            meta.info.piece_count(),
            meta.info_hash
        );
    }
    Ok(())
}

/// Writes `bytes` to a temporary file in the target's folder, syncs it, and renames it over
/// `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_tiers() {
        let args = vec![
            "http://a/announce, udp://b:80".to_owned(),
            "http://c/announce".to_owned(),
            " , ".to_owned(),
        ];
        assert_eq!(
            tiers(&args),
            vec![
                vec!["http://a/announce".to_owned(), "udp://b:80".to_owned()],
                vec!["http://c/announce".to_owned()],
            ]
        );
    }
}
