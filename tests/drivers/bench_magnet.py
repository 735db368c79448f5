#!/usr/bin/python3
"""Benchmark: a magnet link on a private loopback DHT, rill against libtorrent in the same run
(issue 5).

    cargo build --release -p rill
    /usr/bin/python3 tests/drivers/bench_magnet.py                 # 256 MiB, 6 runs
    /usr/bin/python3 tests/drivers/bench_magnet.py --size 16M --runs 5 --nodes 12

Set-up (once): --nodes libtorrent DHT sessions inside this process, node i on 127.0.1.(i+1)
(each its own address; routing/search IP restrictions and rate-limit blocking off, see
/work/shared/PEERS.md), all bootstrapped from node 0, which fill their tables with random
lookups; a libtorrent seed of a trackerless v1 torrent (random data on --tmp, a tmpfs) on
127.0.2.1 in the same DHT, announcing until some node other than node 0 returns it.
Each run, in alternating order, with nothing but the magnet link and node 0's address:
  rill        `rill download MAGNET --dht-bootstrap NODE0 --json --port 0 -o EMPTY`
              (RUST_LOG adds rill's magnet log on stderr).
  libtorrent  a leecher session on 127.0.3.1 in a child process (this file, --lt-leech),
              DHT bootstrapped from node 0 only.
Moments, timed when this process reads them, each from two origins, the same kind for both
clients:
  exec        the process started (Popen): rill's whole start-up, and libtorrent's Python
              interpreter and `import libtorrent`, are charged.
  session     the client's session is up, about to add the magnet: rill's log line
              "fetching metadata of ..." (listen socket bound, DHT node started; the line's
              own timestamp); libtorrent: lt.session() returned (the child's own
              CLOCK_MONOTONIC time). startup_s = session - exec.
  first peer  the first ESTABLISHED TCP connection to the seed's port (polled in
              /proc/net/tcp every 2 ms from before the process starts, none being left
              from the previous run; the same measure for both clients), or the metadata
              moment if earlier (no metadata without a peer). (The Python binding of
              libtorrent 2.0.8 has no peer_connected_alert.)
  metadata    rill: its log line "metadata of ... fetched" (the line's own timestamp);
              libtorrent: metadata_received_alert (the child's own CLOCK_MONOTONIC time).
  complete    rill: the JSON line with "final": true (else its exit); libtorrent:
              torrent_finished_alert.
Both copies are compared byte for byte with the seed's data. Target: rill no slower than
libtorrent on each moment (ratio rill/libtorrent <= 1), from either origin. transfer_s
(complete - metadata, the download proper) is shown with the same target for information.

Why 256 MiB and an even number of runs: the libtorrent seed serves a new connection at
about 160 MiB/s for the first part of a second whose length varies from run to run (seen
for both clients; likely its send-buffer watermark, which follows the rate it measures for
the peer at its one-second tick), then at its full rate. A 64 MiB transfer ends inside that
window: over 6 runs either client took 0.22-0.26 s in some runs and 0.45-0.74 s in others,
so per-run ratios ran from 0.45 to 3.0 whichever client was faster. At 256 MiB most of the
transfer runs at the seed's full rate. An even count gives each client the first turn
equally often (the order alternates).

Options:
  --size SIZE     payload (default 256M)
  --runs N        runs (default 6); the summary gives medians
  --nodes N       DHT nodes (default 16)
  --rill PATH     rill binary (default target/release/rill of this repository)
  --tmp DIR       data folder parent (default /dev/shm)
  --timeout S     bound on each wait (default 120 s)
  --json FILE     also write every figure as JSON
Only /usr/bin/python3 imports python3-libtorrent. Every process started here is killed at the
end and the temporary folder removed. Exit code 0 when every copy matched, 1 otherwise.
"""

import argparse
import datetime
import json
import os
import secrets
import shutil
import sys
import threading
import time
import warnings

import libtorrent as lt

from bench_common import (DEFAULT_RILL, MIB, PYTHON, Child, Failure, check_copy, median_run,
                          parse_size, scratch_dir, v1_torrent, write_payload)
from lt_loopback import loopback_dht, plain_loopback, relax_dht_node_checks

warnings.filterwarnings("ignore", category=DeprecationWarning)

SEED_ADDR = "127.0.2.1"
LEECH_ADDR = "127.0.3.1"
ORIGINS = ["exec", "session"]
POINTS = ["first_peer_s", "metadata_s", "complete_s"]
MOMENTS = [f"{o}_{p}" for o in ORIGINS for p in POINTS] + ["startup_s", "transfer_s"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=parse_size, default=parse_size("256M"))
    p.add_argument("--runs", type=int, default=6)
    p.add_argument("--nodes", type=int, default=16)
    p.add_argument("--rill", default=DEFAULT_RILL)
    p.add_argument("--tmp", default="/dev/shm")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--json")
    # Internal: the libtorrent leecher child.
    p.add_argument("--lt-leech", nargs=3, metavar=("MAGNET", "SAVE", "BOOTSTRAP"))
    return p.parse_args(argv)


def session_settings(listen, bootstrap, alerts):
    host = listen.rsplit(":", 1)[0]
    return {
        "listen_interfaces": listen,
        **plain_loopback(host),
        **loopback_dht(bootstrap),
        "alert_mask": alerts,
    }


def new_session(listen, bootstrap, alerts=0):
    session = lt.session(session_settings(listen, bootstrap, alerts))
    relax_dht_node_checks(session)
    return session


def lt_leech_main(magnet, save, bootstrap):
    """The libtorrent leecher child: JSON events on stdout, exits when finished or stdin closes."""
    def emit(**event):
        # CLOCK_MONOTONIC is system-wide: the parent compares this time with its own.
        print(json.dumps(dict(event, t=time.monotonic())), flush=True)
    mask = (lt.alert.category_t.status_notification | lt.alert.category_t.error_notification)
    session = new_session(f"{LEECH_ADDR}:0", bootstrap, mask)
    emit(event="listening")
    params = lt.parse_magnet_uri(magnet)
    params.save_path = save
    params.flags &= ~lt.torrent_flags.auto_managed
    handle = session.add_torrent(params)
    handle.resume()
    while True:
        session.wait_for_alert(100)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.metadata_received_alert):
                emit(event="metadata")
            elif isinstance(alert, lt.torrent_finished_alert):
                emit(event="finished")
                return 0
            elif isinstance(alert, lt.torrent_error_alert):
                emit(event="error", message=alert.message())
                return 1


class PeerWatch:
    """Times the first ESTABLISHED TCP connection to a local port (from /proc/net/tcp)."""

    def __init__(self, port):
        self.port = port
        self.first = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _established(self):
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == self.port and fields[3] == "01":
                    return True
        return False

    def _run(self):
        while not self._stop.is_set():
            if self._established():
                self.first = time.monotonic()
                return
            time.sleep(0.002)

    def close(self):
        self._stop.set()
        self._thread.join(2)


def make_data(tmp, size):
    data_dir = os.path.join(tmp, "seed")
    torrent, piece_length = v1_torrent(write_payload(data_dir, size))
    return lt.torrent_info(torrent), data_dir, piece_length


def start_dht(count, timeout):
    """count libtorrent DHT nodes; returns (sessions, node 0's address) once tables filled."""
    nodes = [new_session("127.0.1.1:0", "")]
    port0 = nodes[0].listen_port()
    bootstrap = f"127.0.1.1:{port0}"
    for i in range(1, count):
        nodes.append(new_session(f"127.0.1.{i + 1}:0", bootstrap))
    deadline = time.monotonic() + timeout
    want = min(count - 1, 8)
    while True:
        for node in nodes:
            node.dht_get_peers(lt.sha1_hash(secrets.token_bytes(20)))
        sizes = [node.status().dht_nodes for node in nodes]
        if min(sizes) >= want:
            return nodes, bootstrap, sizes
        if time.monotonic() > deadline:
            raise Failure(f"DHT tables did not fill: {sizes}")
        time.sleep(0.5)


def start_seed(info, data_dir, bootstrap, nodes, timeout):
    session = new_session(f"{SEED_ADDR}:0", bootstrap)
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = data_dir
    params.flags &= ~lt.torrent_flags.auto_managed
    handle = session.add_torrent(params)
    handle.resume()
    target = info.info_hashes().v1
    probe = new_session("127.0.4.1:0", bootstrap, lt.alert.category_t.dht_operation_notification)
    deadline = time.monotonic() + timeout
    while True:
        if handle.status().is_seeding:
            handle.force_dht_announce()
            probe.dht_get_peers(target)
        for alert in probe.pop_alerts():
            if isinstance(alert, lt.dht_get_peers_reply_alert) and alert.peers():
                del probe
                return session, handle
        if time.monotonic() > deadline:
            raise Failure("the seed was never found in the DHT")
        time.sleep(0.5)


def log_time(line, read_at):
    """The monotonic time of a tracing log line from its RFC 3339 stamp, else when it was read."""
    stamp = line.split(None, 1)[0] if line.strip() else ""
    try:
        wall = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return read_at
    return wall - (time.time() - time.monotonic())


def moments(started, session, first, metadata, complete):
    """Every figure of one client's run from its monotonic times."""
    first = min(first, metadata) if first is not None else metadata
    out = {"startup_s": session - started, "transfer_s": complete - metadata}
    for origin, at in (("exec", started), ("session", session)):
        out[f"{origin}_first_peer_s"] = first - at
        out[f"{origin}_metadata_s"] = metadata - at
        out[f"{origin}_complete_s"] = complete - at
    return out


def rill_run(args, magnet, bootstrap, out, seed_port):
    os.mkdir(out)
    env = dict(os.environ, RUST_LOG="warn,rill::session::magnet=info")
    watch = PeerWatch(seed_port)
    child = Child("rill download", [args.rill, "download", magnet, "--dht-bootstrap", bootstrap,
                                    "--json", "--port", "0", "-o", out],
                  env=env, stderr_lines=True)
    session = metadata = complete = None
    deadline = child.started + args.timeout
    open_streams = 2
    try:
        while open_streams:
            item = child.next_line(deadline)
            if item is None:
                continue
            at, tag, line = item
            if line is None:
                open_streams -= 1
                continue
            if tag == "err" and session is None and "fetching metadata of" in line:
                session = log_time(line, at)
            if tag == "err" and metadata is None and "metadata of" in line and "fetched" in line:
                metadata = log_time(line, at)
            if tag == "out" and complete is None:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("final") and event.get("left") == 0:
                    complete = at
        end, _ = child.wait_exit(args.timeout)
    finally:
        child.stop()
        watch.close()
    if complete is None:
        complete = end
    if metadata is None or watch.first is None:
        raise Failure(f"rill: a moment was not seen ({child.tail()})")
    if session is None:
        # A rill from before the "fetching metadata of" line: session figures are NaN.
        session = float("nan")
    result = moments(child.started, session, watch.first, metadata, complete)
    result["exit_s"] = end - child.started
    return result


def lt_run(args, magnet, bootstrap, out, seed_port):
    os.mkdir(out)
    watch = PeerWatch(seed_port)
    child = Child("libtorrent leech", [PYTHON, os.path.abspath(__file__), "--lt-leech", magnet,
                                       out, bootstrap])
    session = metadata = complete = None
    try:
        timeout = args.timeout
        _, event = child.wait_event(lambda e: e.get("event") == "listening", timeout)
        session = event["t"]
        _, event = child.wait_event(lambda e: e.get("event") == "metadata", timeout)
        metadata = event["t"]
        _, event = child.wait_event(lambda e: e.get("event") == "finished", timeout)
        complete = event["t"]
        child.wait_exit(timeout)
    finally:
        child.stop()
        watch.close()
    if watch.first is None:
        raise Failure("libtorrent: no connection to the seed was seen")
    return moments(child.started, session, watch.first, metadata, complete)


def wait_quiet(port, timeout=10.0):
    """Waits until no connection to the seed's port is ESTABLISHED (the last leecher gone)."""
    watch = PeerWatch.__new__(PeerWatch)
    watch.port = port
    deadline = time.monotonic() + timeout
    while watch._established() and time.monotonic() < deadline:
        time.sleep(0.05)


def one_run(args, index, tmp, magnet, bootstrap, data_dir, seed_port):
    result = {}
    order = ["rill", "libtorrent"] if index % 2 == 0 else ["libtorrent", "rill"]
    for who in order:
        wait_quiet(seed_port)
        out = os.path.join(tmp, f"out-{who}-{index}")
        if who == "rill":
            result["rill"] = rill_run(args, magnet, bootstrap, out, seed_port)
        else:
            result["libtorrent"] = lt_run(args, magnet, bootstrap, out, seed_port)
        check_copy(data_dir, out)
        shutil.rmtree(out)
    result["ratios"] = {m: result["rill"][m] / result["libtorrent"][m] for m in MOMENTS}
    return result


def print_run(result):
    r, l = result["rill"], result["libtorrent"]
    for m in MOMENTS:
        ratio = result["ratios"][m]
        verdict = "met" if ratio <= 1.0 else "MISSED"
        print(f"  {m:<22} rill {r[m]:7.3f} s  libtorrent {l[m]:7.3f} s  "
              f"ratio {ratio:6.2f} (target <= 1: {verdict})")
    if "exit_s" in r:
        print(f"  {'rill exit (from exec)':<22} {r['exit_s']:7.3f} s")


def main(argv):
    args = parse_args(argv)
    if args.lt_leech:
        return lt_leech_main(*args.lt_leech)
    if not os.access(args.rill, os.X_OK):
        print(f"no rill binary at {args.rill}: cargo build --release -p rill", file=sys.stderr)
        return 1
    with scratch_dir(args.tmp, "rill-bench-magnet-") as tmp:
        return run_all(args, tmp)


def run_all(args, tmp):
    """Set-up and every run in tmp; 0 when every copy matched, 1 on a failed step."""
    results = []
    try:
        print(f"making {args.size / MIB:.0f} MiB of data in {tmp} ...", flush=True)
        info, data_dir, piece_length = make_data(tmp, args.size)
        magnet = f"magnet:?xt=urn:btih:{info.info_hashes().v1}"
        print(f"piece length {piece_length // 1024} KiB; libtorrent {lt.__version__}; "
              f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}", flush=True)
        t0 = time.monotonic()
        nodes, bootstrap, sizes = start_dht(args.nodes, args.timeout)
        print(f"DHT of {len(nodes)} nodes, bootstrap {bootstrap}, table sizes {sizes} "
              f"({time.monotonic() - t0:.1f} s)", flush=True)
        seed_session, seed_handle = start_seed(info, data_dir, bootstrap, nodes, args.timeout)
        seed_port = seed_session.listen_port()
        print(f"seed on {SEED_ADDR}:{seed_port}, found in the DHT; {magnet}", flush=True)
        for index in range(args.runs):
            print(f"run {index + 1}/{args.runs} (load {os.getloadavg()[0]:.1f})", flush=True)
            result = one_run(args, index, tmp, magnet, bootstrap, data_dir, seed_port)
            print_run(result)
            results.append(result)
        summary = median_run(results)
        print(f"median of {len(results)} run(s), {args.size / MIB:.0f} MiB, "
              f"{len(nodes)} DHT nodes:")
        print_run(summary)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"size": args.size, "nodes": len(nodes), "runs": results,
                           "median": summary}, f, indent=1)
        return 0
    except Failure as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
