"""Helpers shared by the side-by-side benchmarks (bench_download.py, bench_magnet.py).

Not run by itself. What is here:
  parse_size       "64M", "1G", "262144" -> bytes
  Failure          the exception a benchmark step raises; the benchmark then exits 1
  Child            a process started by a benchmark: reaped with wait4 (exit time and rusage),
                   stderr kept for error messages, stdout (and optionally stderr) lines queued
                   with the monotonic time they were read, JSON events read from stdout,
                   bounded waits, stop (stdin closed + a signal) then kill; optionally run
                   under GNU time for its peak RSS
  stop_all         stops every Child still running (call it in a `finally`)
  scratch_dir      a temporary folder (tmpfs by default) removed, with every Child, on exit
  write_payload    SIZE bytes of random data in DIR/payload.bin
  v1_torrent       a v1-only libtorrent torrent of that data (libtorrent imported lazily)
  check_copy       byte-for-byte comparison of a copy with the seed's data
  median_run       the median of every figure over several runs, in the shape of one run

Invariants: every wait is bounded (a stuck process fails the benchmark instead of hanging it);
every process started through Child is in STARTED until the benchmark ends, and stop_all
ends them by their own handle (never by name).
"""

import contextlib
import filecmp
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"  # the one interpreter that imports python3-libtorrent
GNU_TIME = "/usr/bin/time"  # Debian package `time`
MIB = 1024 * 1024
DEFAULT_RILL = os.path.join(REPO, "target", "release", "rill")


def parse_size(text):
    """Bytes from "262144", "256K", "64M", "1G" (a trailing "iB" or "B" is allowed)."""
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class Failure(Exception):
    """A step failed: the run stops and the benchmark exits 1."""


# Every process started here, so that stop_all can end the ones still running at the end.
STARTED = []


class Child:
    """A process started by a benchmark, reaped with wait4 within bounded times.

    stdout="events": stdout lines are queued (JSON events are read from them);
    stdout=None: stdout is discarded. stderr_lines=True also queues stderr lines (for log
    timestamps); stderr's last lines are always kept for error messages. measure=True runs
    the command under GNU time, for its peak RSS (see peak_rss_mib). Queue items are
    (monotonic time read, "out" or "err", line or None at the end of that stream).
    """

    def __init__(self, name, argv, env=None, stdout="events", stderr_lines=False,
                 measure=False):
        self.name = name
        STARTED.append(self)
        # Linux carries the peak RSS of a forked copy of this (large) Python process across
        # exec into ru_maxrss, so the peak RSS comes from GNU time, forked from its own small
        # process; wait4's CPU figures are exact either way (they include time's, a few ms).
        self.rss_file = None
        if measure:
            fd, self.rss_file = tempfile.mkstemp(prefix="rill-bench-rss-")
            os.close(fd)
            argv = [GNU_TIME, "-f", "%M", "-o", self.rss_file, "--", *argv]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, bufsize=1, env=env)
        self.lines = queue.Queue()
        self.log = []
        self.stderr = []
        self.result = None  # (end time, wait status, rusage)
        self._reaper = threading.Thread(target=self._reap, daemon=True)
        self._reaper.start()
        threading.Thread(target=self._read, args=(self.proc.stderr, "err", stderr_lines),
                         daemon=True).start()
        if stdout:
            threading.Thread(target=self._read, args=(self.proc.stdout, "out", True),
                             daemon=True).start()

    @property
    def pid(self):
        """The measured process: GNU time's child when wrapped, else the process itself."""
        if self.rss_file is None:
            return self.proc.pid
        path = f"/proc/{self.proc.pid}/task/{self.proc.pid}/children"
        for _ in range(100):
            with open(path) as f:
                children = f.read().split()
            if children:
                return int(children[0])
            time.sleep(0.01)
        raise Failure(f"{self.name}: no process under {GNU_TIME}")

    def peak_rss_mib(self):
        """Peak RSS in MiB as GNU time reported it (after exit)."""
        with open(self.rss_file) as f:
            kib = f.read().split()[-1]
        os.unlink(self.rss_file)
        return int(kib) / 1024

    def _reap(self):
        _, status, rusage = os.wait4(self.proc.pid, 0)
        self.result = (time.monotonic(), status, rusage)
        self.proc.returncode = os.waitstatus_to_exitcode(status)

    def _read(self, stream, tag, queued):
        for line in stream:
            at = time.monotonic()
            if tag == "err":
                self.stderr.append(line.rstrip())
                del self.stderr[:-20]
            if queued:
                self.lines.put((at, tag, line))
        if queued:
            self.lines.put((time.monotonic(), tag, None))

    def next_line(self, deadline):
        """The next queued (time, tag, line), or None if nothing came within 0.5 s; fails
        past deadline (a monotonic time)."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(f"{self.name}: timed out ({self.tail()})")
        try:
            return self.lines.get(timeout=min(left, 0.5))
        except queue.Empty:
            return None

    def wait_event(self, predicate, timeout):
        """Returns (time read, event) of the first stdout JSON event that satisfies
        predicate; fails on an "error" event, at the end of stdout, or after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.next_line(deadline)
            if item is None:
                continue
            at, tag, line = item
            if tag != "out":
                continue
            if line is None:
                raise Failure(f"{self.name}: exited early ({self.tail()})")
            try:
                event = json.loads(line)
            except ValueError:
                continue
            self.log.append(event)
            if event.get("event") == "error":
                raise Failure(f"{self.name}: {event.get('message')}")
            if predicate(event):
                return at, event

    def wait_exit(self, timeout):
        """Waits for exit (killing the process after timeout); returns (end, rusage).
        Fails on a non-zero exit code."""
        self._reaper.join(timeout)
        if self._reaper.is_alive():
            self.kill()
            raise Failure(f"{self.name}: still running after {timeout:.0f} s ({self.tail()})")
        end, status, rusage = self.result
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise Failure(f"{self.name}: exit code {code} ({self.tail()})")
        return end, rusage

    def stop(self, sig=signal.SIGINT, timeout=10.0):
        """Asks the process to stop (stdin closed, then sig), then kills it if it has not
        within timeout."""
        if self.result is None:
            try:
                self.proc.stdin.close()  # the libtorrent drivers exit when stdin closes
                self.proc.send_signal(sig)
            except (ProcessLookupError, OSError):
                pass
        self._reaper.join(timeout)
        self.kill()

    def kill(self):
        """SIGKILL if still running, then a bounded wait for the reaper."""
        if self.result is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self._reaper.join(5)

    def tail(self):
        """The last lines of stderr, for error messages."""
        return "; ".join(self.stderr[-5:]) or "no stderr"


def stop_all():
    """Stops every Child started so far and removes their RSS files."""
    for child in STARTED:
        child.stop()
        if child.rss_file and os.path.exists(child.rss_file):
            os.unlink(child.rss_file)


@contextlib.contextmanager
def scratch_dir(parent, prefix):
    """A fresh folder under parent; on exit every Child is stopped and the folder removed."""
    tmp = tempfile.mkdtemp(prefix=prefix, dir=parent)
    try:
        yield tmp
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def write_payload(data_dir, size):
    """Writes size random bytes to data_dir/payload.bin (created) and returns its path."""
    os.mkdir(data_dir)
    path = os.path.join(data_dir, "payload.bin")
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = min(left, 16 * MIB)
            f.write(os.urandom(chunk))
            left -= chunk
    return path


def v1_torrent(path, piece_length=0):
    """A v1-only torrent of the file at path, made by libtorrent: (bencoded bytes, piece
    length). piece_length 0 lets libtorrent choose for the size."""
    import libtorrent as lt
    fs = lt.file_storage()
    lt.add_files(fs, path)
    ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, os.path.dirname(path))
    return lt.bencode(ct.generate()), ct.piece_length()


def check_copy(data_dir, out_dir):
    """Fails unless out_dir/payload.bin equals data_dir/payload.bin byte for byte."""
    same = filecmp.cmp(os.path.join(data_dir, "payload.bin"),
                       os.path.join(out_dir, "payload.bin"), shallow=False)
    if not same:
        raise Failure(f"{out_dir}: the copy differs from the seed's data")


def median_run(results):
    """The median of each figure over the runs, in the shape of one run."""
    out = {}
    for key, value in results[0].items():
        out[key] = {k: statistics.median(r[key][k] for r in results) for k in value}
    return out
