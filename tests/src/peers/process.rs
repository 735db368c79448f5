//! A child process whose stdout lines arrive on a channel and whose stderr is kept, with
//! bounded waits. [`Process::stop`] (also run on drop) ends it gracefully: it closes stdin
//! (the libtorrent driver exits on that), sends the configured signal by PID if any, waits
//! a bounded time, then kills it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a process gets to exit by itself after stdin closes or SIGTERM, before SIGKILL
/// (libtorrent alone may wait its 5 s `stop_tracker_timeout` for a tracker's `stopped` reply).
const GRACE: Duration = Duration::from_secs(15);
/// Lines of output kept for error messages.
const KEPT_LINES: usize = 40;

/// A running child with its output streamed line by line.
pub(crate) struct Process {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    recent: Vec<String>,
    stderr: Arc<Mutex<String>>,
    stop_signal: Option<&'static str>,
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts `command` with piped stdio. Stdout is split on `\n` and `\r` (transmission-cli
    /// rewrites its status line with `\r`); empty lines are dropped. `stop_signal`: the signal
    /// (`kill -s` name, e.g. `"INT"`) that asks the program to exit, for programs that do not
    /// exit when stdin closes.
    pub(crate) fn spawn(
        name: &str,
        mut command: Command,
        stop_signal: Option<&'static str>,
    ) -> anyhow::Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let stderr_pipe = child.stderr.take().context("stderr is piped")?;
        let (sender, lines) = channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        for line in text.split(['\r', '\n']).map(str::trim) {
                            if !line.is_empty() && sender.send(line.to_owned()).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut chunk) {
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            }
        });
        Ok(Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            recent: Vec::new(),
            stderr,
            stop_signal,
            status: None,
        })
    }

    /// The child's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line to the child's stdin.
    pub(crate) fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .with_context(|| format!("writing {line:?} to {}", self.name))
    }

    /// Waits up to `timeout` for a line that `accept` maps to `Some`, returning that value.
    /// Lines seen are kept (the last few) for error messages. Fails with the recent output
    /// and stderr if the process ends first or the time runs out.
    pub(crate) fn wait_line<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut accept: impl FnMut(&str) -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let accepted = accept(&line);
                    self.keep(line);
                    match accepted {
                        Ok(Some(value)) => return Ok(value),
                        Ok(None) => {}
                        Err(err) => return Err(err.context(self.report(what))),
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!("timed out after {timeout:?} {}", self.report(what))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.reap();
                    bail!("{} exited ({status}) {}", self.name, self.report(what))
                }
            }
        }
    }

    /// Waits up to `timeout` for `done` to hold, checking it after every line of output and at
    /// least every 100 ms. Fails as [`Process::wait_line`] does.
    pub(crate) fn wait_until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut done: impl FnMut() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !done() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out after {timeout:?} {}", self.report(what));
            }
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(line) => self.keep(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    if done() {
                        return Ok(());
                    }
                    let status = self.reap();
                    bail!("{} exited ({status}) {}", self.name, self.report(what));
                }
            }
        }
        Ok(())
    }

    /// Moves every line already printed into the kept lines and returns them.
    pub(crate) fn drain(&mut self) -> Vec<String> {
        let mut fresh = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            fresh.push(line.clone());
            self.keep(line);
        }
        fresh
    }

    /// A shared handle on the child's stderr so far (it grows as the child writes).
    pub(crate) fn stderr_handle(&self) -> Arc<Mutex<String>> {
        Arc::clone(&self.stderr)
    }

    /// The child's stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr
            .lock()
            .map(|text| text.clone())
            .unwrap_or_default()
    }

    fn keep(&mut self, line: String) {
        if self.recent.len() == KEPT_LINES {
            self.recent.remove(0);
        }
        self.recent.push(line);
    }

    fn reap(&mut self) -> String {
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) => thread::park_timeout(Duration::from_millis(20)),
                Err(err) => return format!("status unknown: {err}"),
            }
        }
        "still running, stdout closed".to_owned()
    }

    fn report(&self, what: &str) -> String {
        let stderr = self.stderr();
        let tail: Vec<&str> = stderr.lines().rev().take(KEPT_LINES).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "waiting for {what} from {} (pid {})\n--- last stdout lines ---\n{}\n--- stderr ---\n{}",
            self.name,
            self.child.id(),
            self.recent.join("\n"),
            tail.join("\n")
        )
    }
}

impl Process {
    /// Waits up to `timeout` for the process to exit by itself (no signal sent) and returns
    /// its status; fails with its recent output if it is still running then.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.status = Some(status);
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} {}", self.report("the exit"));
            }
            self.drain();
            thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Ends the process gracefully and returns its exit status: closes stdin, sends the stop
    /// signal (if any) by PID, waits up to a few seconds, then kills it. Idempotent.
    pub(crate) fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        self.stdin = None;
        if let Some(signal) = self.stop_signal {
            // std can only send SIGKILL; `kill` sends the signal to this PID alone.
            let _ = Command::new("kill")
                .args(["-s", signal, &self.child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                self.status = Some(status);
                return Ok(status);
            }
            thread::park_timeout(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait()?;
        self.status = Some(status);
        bail!("{} did not exit within {GRACE:?}; killed", self.name)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
