//! The `rill-tracker` command: flags, errors, a graceful stop on SIGTERM.

use rill_tests::tracker_bin;
use rill_tracker::Config;

fn run_tracker(args: &[&str]) -> std::process::Output {
    std::process::Command::new(tracker_bin())
        .args(args)
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

    let mut child = Command::new(tracker_bin())
        .args(["serve", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
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
