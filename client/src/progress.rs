//! Progress display. Bars draw on stderr and only when it is a terminal, so scripts and
//! pipes get clean output; `--json` prints one JSON object per torrent per second on stdout.
//!
//! Logs go through [`LogWriter`], which hides the bars while a line is written, so tracing
//! output never tears a bar.

use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::config::Display;
use crate::session::{Reporter, TorrentView};
use crate::torrent::task::Phase;

/// A byte-counting bar for work of known size, hidden when `quiet` or stderr is not a terminal.
pub fn bytes_bar(total: u64, message: &str, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40.cyan/blue}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message.to_owned());
    bar
}

/// The process's bars, shared with [`LogWriter`].
fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(MultiProgress::new)
}

/// A `tracing_subscriber` writer that prints log lines above the bars.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        multi().suspend(|| io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// How often `--json` prints.
const JSON_EVERY: Duration = Duration::from_secs(1);

/// The session's display: bars, JSON lines, or nothing.
pub struct Progress {
    display: Display,
    checking: Option<ProgressBar>,
    bars: Vec<ProgressBar>,
    file_bars: Vec<Vec<ProgressBar>>,
    last_json: Option<Instant>,
}

impl Progress {
    /// A display of the given kind.
    pub fn new(display: Display) -> Self {
        if matches!(display, Display::Json | Display::Quiet) {
            multi().set_draw_target(ProgressDrawTarget::hidden());
        }
        Progress {
            display,
            checking: None,
            bars: Vec::new(),
            file_bars: Vec::new(),
            last_json: None,
        }
    }

    fn torrent_bar(view: &TorrentView) -> ProgressBar {
        let bar = multi().add(ProgressBar::new(view.wanted_len.max(1)));
        let style = ProgressStyle::with_template(
            "{prefix:.bold} [{bar:30.cyan/blue}] {binary_bytes}/{binary_total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(view.name.clone());
        bar
    }

    fn file_bar(path: &str, length: u64) -> ProgressBar {
        let bar = multi().add(ProgressBar::new(length.max(1)));
        let style = ProgressStyle::with_template(
            "  {prefix} [{bar:20.green/white}] {binary_bytes}/{binary_total_bytes}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(path.to_owned());
        bar
    }

    fn draw(&mut self, torrents: &[TorrentView], finished: bool) {
        if let Some(checking) = self.checking.take() {
            checking.finish_and_clear();
        }
        while self.bars.len() < torrents.len() {
            let view = &torrents[self.bars.len()];
            self.bars.push(Self::torrent_bar(view));
            let files = if self.display == Display::Verbose {
                view.files
                    .iter()
                    .filter(|file| file.wanted)
                    .map(|file| Self::file_bar(&file.path, file.length))
                    .collect()
            } else {
                Vec::new()
            };
            self.file_bars.push(files);
        }
        for ((view, bar), file_bars) in torrents.iter().zip(&self.bars).zip(&self.file_bars) {
            let progress = view.progress.borrow();
            let stats = progress.stats;
            bar.set_position(view.wanted_len.saturating_sub(stats.left));
            let (seeders, leechers, error) =
                view.trackers.as_ref().map_or((None, None, None), |status| {
                    let status = status.borrow();
                    (status.seeders, status.leechers, status.last_error.clone())
                });
            let swarm = match (seeders, leechers, error) {
                // With no peer, why the trackers gave none is what the user needs to see.
                (_, _, Some(error)) if stats.peers == 0 => format!(" ({error})"),
                (Some(s), Some(l), _) => format!(" (swarm {s}/{l})"),
                _ => String::new(),
            };
            let eta = if stats.download_rate > 1.0 && stats.left > 0 {
                let secs = stats.left as f64 / stats.download_rate;
                format!(" ETA {}", format_secs(secs))
            } else {
                String::new()
            };
            bar.set_message(format!(
                "↓ {}/s ↑ {}/s peers {} seeds {}{swarm}{eta} {}",
                indicatif::BinaryBytes(stats.download_rate as u64),
                indicatif::BinaryBytes(stats.upload_rate as u64),
                stats.peers,
                stats.seeds,
                phase_word(&progress.phase),
            ));
            let wanted = view.files.iter().filter(|file| file.wanted);
            for (file, file_bar) in wanted.zip(file_bars) {
                let done = file_done(file, &progress.have);
                file_bar.set_position(done);
            }
            if finished {
                bar.finish();
                for file_bar in file_bars {
                    file_bar.finish();
                }
            }
        }
    }

    fn print_json(&mut self, torrents: &[TorrentView], finished: bool) {
        let now = Instant::now();
        if !finished
            && self
                .last_json
                .is_some_and(|last| now.duration_since(last) < JSON_EVERY)
        {
            return;
        }
        self.last_json = Some(now);
        let mut out = io::stdout().lock();
        for view in torrents {
            let progress = view.progress.borrow();
            let stats = progress.stats;
            let line = json!({
                "name": view.name,
                "info_hash": view.info_hash,
                "phase": phase_word(&progress.phase),
                "pieces": progress.have.piece_count(),
                "have": progress.have.count(),
                "have_at_start": view.have_at_start,
                "verified_this_run": progress.verified_this_run,
                "failed_this_run": progress.failed_this_run,
                "total_bytes": view.total_len,
                "wanted_bytes": view.wanted_len,
                "left": stats.left,
                "downloaded": stats.downloaded,
                "uploaded": stats.uploaded,
                "download_rate": stats.download_rate.round() as u64,
                "upload_rate": stats.upload_rate.round() as u64,
                "peers": stats.peers,
                "seeds": stats.seeds,
                "listen_port": view.listen_port,
                "final": finished,
            });
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
}

impl Reporter for Progress {
    fn checking(&mut self, name: &str, done: u64, total: u64) {
        if matches!(self.display, Display::Json | Display::Quiet) {
            return;
        }
        let bar = self.checking.get_or_insert_with(|| {
            let bar = multi().add(bytes_bar(total, "checking", false));
            bar.set_message(format!("checking {name}"));
            bar
        });
        bar.set_length(total);
        bar.set_position(done);
    }

    fn update(&mut self, torrents: &[TorrentView], finished: bool) {
        match self.display {
            Display::Quiet => {}
            Display::Json => self.print_json(torrents, finished),
            Display::Bars | Display::Verbose => self.draw(torrents, finished),
        }
    }
}

/// Bytes of `file` in verified pieces (whole pieces counted, clipped to the file).
fn file_done(file: &crate::session::FileView, have: &rill_common::bitfield::Bitfield) -> u64 {
    let Some((first, last)) = file.pieces else {
        return 0;
    };
    let pieces = u64::from(last - first + 1);
    let had = (first..=last)
        .filter(|&piece| have.get(rill_common::pieces::PieceIndex(piece)))
        .count() as u64;
    if had == pieces {
        file.length
    } else {
        file.length * had / pieces
    }
}

fn phase_word(phase: &Phase) -> &'static str {
    match phase {
        Phase::Downloading => "downloading",
        Phase::Seeding => "seeding",
        Phase::Stopping => "stopping",
        Phase::Done => "done",
        Phase::Failed(_) => "failed",
    }
}

fn format_secs(secs: f64) -> String {
    let secs = secs.min(99.0 * 3600.0) as u64;
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use rill_common::bitfield::Bitfield;
    use rill_common::pieces::PieceIndex;

    use super::*;
    use crate::session::FileView;

    #[test]
    fn eta_is_short_and_capped() {
        assert_eq!(format_secs(42.4), "42s");
        assert_eq!(format_secs(125.0), "2m05s");
        assert_eq!(format_secs(3.0 * 3600.0 + 60.0), "3h01m");
        assert_eq!(format_secs(1e12), "99h00m");
    }

    #[test]
    fn file_progress_counts_its_verified_pieces() {
        let file = FileView {
            path: "a".to_owned(),
            length: 1000,
            pieces: Some((2, 5)),
            wanted: true,
        };
        let mut have = Bitfield::new(8);
        assert_eq!(file_done(&file, &have), 0);
        have.set(PieceIndex(0), true);
        have.set(PieceIndex(3), true);
        assert_eq!(file_done(&file, &have), 250);
        for piece in 2..=5 {
            have.set(PieceIndex(piece), true);
        }
        assert_eq!(file_done(&file, &have), 1000);
        let empty = FileView {
            pieces: None,
            length: 0,
            ..file
        };
        assert_eq!(file_done(&empty, &have), 0);
    }
}
