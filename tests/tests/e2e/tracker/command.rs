//! The `rill-tracker` command: flags, errors, a graceful stop on SIGTERM.

use rill_tests::tracker_bin;
use rill_tracker::Config;

/// Runs the command to its end in a fresh working directory (where the default database
/// would go).
fn run_tracker(args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::process::Command::new(tracker_bin())
        .args(args)
        .current_dir(dir.path())
        .output()
        .expect("run rill-tracker")
}

#[test]
fn print_config_prints_the_default() {
    let output = run_tracker(&["--print-config"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(Config::from_toml(&text).unwrap(), Config::default());
}

#[test]
fn config_errors_name_the_key_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracker.toml");
    std::fs::write(&path, "[announce]\nnumwant_max = 3\n").unwrap();
    let output = run_tracker(&["--config", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("numwant_max"), "{stderr}");
    assert!(output.stdout.is_empty());

    std::fs::write(&path, "mode = \"private\"\ndatabase = \"mysql://db\"\n").unwrap();
    let output = run_tracker(&["--config", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mysql://db"), "{stderr}");
}

#[test]
fn bind_error_is_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run_tracker(&["--http", &addr, "--udp", "off"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with(&format!(
            "rill-tracker: error: cannot listen for HTTP on {addr}"
        )),
        "{stderr}"
    );
}

#[cfg(unix)]
#[test]
fn serves_then_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(tracker_bin())
        .args(["serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rill-tracker");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "rill-tracker: public tracker on http://127.0.0.1:PORT/announce and udp://..."
    let http = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("http://"))
        .and_then(|rest| rest.strip_suffix("/announce"))
        .unwrap_or_else(|| panic!("no HTTP address in {line:?}"))
        .to_owned();
    assert!(line.contains("udp://127.0.0.1:"), "{line}");
    // With no configuration, the database is created (and migrated) on first start.
    assert!(
        line.trim_end()
            .ends_with("(database sqlite://rill-tracker.db)"),
        "{line}"
    );
    assert!(dir.path().join("rill-tracker.db").is_file());

    let mut stream = std::net::TcpStream::connect(&http).unwrap();
    stream
        .set_read_timeout(Some(rill_tests::tracker::REPLY_TIMEOUT))
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("ok"), "{reply}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful stop exits 0, got {status}");
}

/// A database that cannot be opened is a one-line error naming it, not a panic: a
/// directory that does not exist, a file that is not a database; `--db memory` needs none.
#[test]
fn a_database_that_cannot_be_opened_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let missing = dir.path().join("no-such-dir").join("x.db");
    for path in [&garbage, &missing] {
        let url = format!("sqlite://{}", path.display());
        let output = run_tracker(&["--db", &url, "--http", "127.0.0.1:0", "--udp", "off"]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(
            errors[0].starts_with(&format!(
                "rill-tracker: error: cannot open the database {url}: "
            )),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
    // A file where a directory should be: the same, whoever runs the test (root ignores
    // a read-only directory's mode, not this).
    let url = format!("sqlite://{}/x.db", garbage.display());
    let output = run_tracker(&["--db", &url, "--http", "127.0.0.1:0", "--udp", "off"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("rill-tracker: error: cannot open the database"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// `--db memory` opens no database and writes no file; private mode refuses it.
#[test]
fn memory_means_no_database() {
    let output = run_tracker(&["--private", "--db", "memory", "--http", "127.0.0.1:0"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("private mode needs a database"), "{stderr}");
}

/// The README's "private tracker in three commands", with a user disabled from another
/// process while the tracker runs.
#[cfg(unix)]
#[test]
fn private_tracker_in_three_commands() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use rill_common::tracker::http::{AnnounceRequest, AnnounceResponse};
    use rill_common::{InfoHash, PeerId};

    let dir = tempfile::tempdir().unwrap();
    let admin = |args: &[&str]| {
        let output = Command::new(tracker_bin())
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run rill-tracker");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let added = admin(&["user", "add", "alice"]);
    let passkey = added
        .lines()
        .find_map(|l| l.strip_prefix("passkey: "))
        .unwrap_or_else(|| panic!("no passkey in {added:?}"))
        .to_owned();
    let info_hash = InfoHash::from_bytes([7; 20]);
    admin(&["torrent", "add", &info_hash.to_hex()]);
    assert!(dir.path().join("rill-tracker.db").exists());

    std::fs::write(
        dir.path().join("fast.toml"),
        "[private]\nflush_interval_secs = 1\nreload_interval_secs = 1\n",
    )
    .unwrap();
    let mut child = Command::new(tracker_bin())
        .args(["--private", "--config", "fast.toml"])
        .args(["--http", "127.0.0.1:0", "--udp", "off"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rill-tracker");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let http = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("http://"))
        .and_then(|rest| rest.strip_suffix("/announce/<passkey>"))
        .unwrap_or_else(|| panic!("no HTTP address in {line:?}"))
        .to_owned();
    let announce = || {
        let mut request = AnnounceRequest::new(
            info_hash,
            PeerId::from_bytes(*b"-RL0100-aaaaaaaaaaaa"),
            6001,
        );
        request.left = 10;
        let url = request.announce_url(&format!("http://{http}/announce/{passkey}"));
        let (status, body) = rill_tests::http_get(&url).unwrap();
        assert_eq!(status, 200);
        AnnounceResponse::from_bytes(&body).unwrap()
    };
    assert!(matches!(announce(), AnnounceResponse::Success(_)));

    // Disabled from another process: refused within a reload interval (bounded wait).
    admin(&["user", "disable", "alice", "--reason", "gone"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match announce() {
            AnnounceResponse::Failure(reason) => {
                assert_eq!(reason, "account disabled: gone");
                break;
            }
            AnnounceResponse::Success(_) => {
                assert!(Instant::now() < deadline, "the disable never took effect");
                // The wait is for the other process's reload timer.
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
}
