#!/usr/bin/python3
"""A libtorrent peer for interop tests: one torrent, seeding or leeching, on one loopback address.

Run by hand (Debian's interpreter: only /usr/bin/python3 imports python3-libtorrent):

    /usr/bin/python3 tests/drivers/lt_peer.py --seed  --torrent T.torrent --save-path DATA_PARENT \\
        --listen 127.0.0.2:0
    /usr/bin/python3 tests/drivers/lt_peer.py --leech --torrent T.torrent --save-path EMPTY_DIR \\
        --listen 127.0.0.3:0 --peer 127.0.0.2:PORT

Modes (exactly one):
  --seed            the data is under --save-path; libtorrent hashes it first and the driver
                    reports an `error` and exits 1 unless every piece is intact.
  --leech           download into --save-path (which may hold part of the data).

Options:
  --torrent FILE    the .torrent to add (required).
  --save-path DIR   libtorrent's save path: the torrent's top folder or single file is in it.
  --listen ADDR     IPv4 address and port, e.g. 127.0.0.2:0 (default 127.0.0.1:0). Give each
                    peer of a test its own 127.0.0.x so trackers see distinct peers and
                    libtorrent's one-connection-per-IP rule never applies.
  --peer ADDR       connect to this peer once the torrent is added (repeatable).
  --tracker URL     announce to URL (repeatable, each its own tier) instead of the torrent's
                    trackers; --keep-trackers adds them to the torrent's trackers instead.
  --max-seconds N   time box (default 120): the driver exits by itself after N seconds.
  --exit-when-finished  exit as soon as the torrent is complete (after the `finished` event).
  --progress-interval S  seconds between `progress` events (default 0.5; 0 turns them off).
  --utp             allow uTP (off by default: it stalls on a loaded 2-core machine).
  --encryption      allow RC4/obfuscated connections (default: plaintext only in and out).
  --download-limit B  the torrent's download rate limit in bytes/s (default: none), e.g. to
                    keep a leecher incomplete for the length of a test.
  --no-outgoing     never dial a peer (no outgoing TCP): every connection is one the other
                    side made, so a test can tell who learnt whose address.
  --dht-bootstrap NODES  turn the DHT on (off by default) with these bootstrap nodes
                    (comma-separated; "" for none), with the private loopback DHT settings:
                    no routing/search IP restrictions, no rate-limit blocking. The handshake
                    then carries the DHT bit, and libtorrent sends and takes `port` (BEP 5).

Output: one JSON object per line on stdout, flushed at once, each with an "event":
  {"event":"listening","address":"127.0.0.2","port":N}   TCP listen socket ready
  {"event":"checked","pieces_ok":M,"num_pieces":N}        data on disk hashed
  {"event":"progress","progress":0.42,"state":"downloading","total_done":B,
   "total_wanted":B,"total_upload":B,"total_download":B,"peers":N,"seeds":N,
   "download_rate":B,"upload_rate":B}                      at most once per --progress-interval
  {"event":"finished"}                                    every piece on disk and verified
                                                          (a seed reports it after `checked`)
  {"event":"tracker_announce","url":U}                    an announce was sent
  {"event":"tracker_announce","url":U,"stopped":true}     the `stopped` announce at exit
  {"event":"tracker_reply","url":U,"peers":N}             the tracker answered with N peers
  {"event":"tracker_warning","url":U,"message":M}
  {"event":"tracker_error","url":U,"message":M,"times_in_row":K}
  {"event":"scrape_reply","url":U,"complete":C,"incomplete":I}
  {"event":"peer_connected","address":"127.0.0.3","port":P}
  {"event":"peer_disconnected","address":A,"port":P,"message":M}
  {"event":"peers","peers":[{"address":A,"port":P,"client":C,"peer_id":HEX,
   "outgoing":BOOL,"seed":BOOL,"source":["tracker"|"dht"|"pex"|"lsd"|"resume_data",..],
   "total_download":B,"total_upload":B},..]}              answer to `peers` ("outgoing":
                                                          this session dialled the peer)
  {"event":"dht","node_id":HEX,"nodes":["ip:port",..],"dht_nodes":N}
                                                          answer to `dht`: the routing table
  {"event":"warning","message":M}                         not fatal (a bad command, say)
  {"event":"error","message":M}                           fatal (the driver then exits 1)
  {"event":"exit","reason":"stdin closed"|"quit"|"max-seconds"|"finished"|"error"}
                                                          last line, after the session has
                                                          sent `stopped` to its trackers

Commands on stdin (one per line; closing stdin makes the driver exit, so a parent that dies
takes the driver with it):
  connect HOST:PORT   connect to a peer now
  announce            re-announce to every tracker now, ignoring the minimum interval
  scrape              scrape the trackers now (answered by `scrape_reply` / `tracker_error`)
  status              print a `progress` event now
  peers               print the connected peers (a `peers` event)
  dht                 print the DHT routing table's nodes (a `dht` event; empty with the
                      DHT off)
  quit                exit
Stderr carries libtorrent's and Python's diagnostics only.

Session settings and the loopback facts behind them (libtorrent 2.0.8):
  - listen_interfaces is the one explicit address; outgoing_interfaces is set to it too, or
    outgoing peer connections leave from 127.0.0.1 whatever the listen address. Tracker
    announces (HTTP and UDP) already leave from the listen address, so a tracker records
    the peer at ADDRESS:PORT it really listens on.
  - DHT (unless --dht-bootstrap), LSD, UPnP, NAT-PMP off; PEX (ut_pex) on, as libtorrent's
    default: 2.0.8 sends its first ut_pex 0.5-1.5 s after a peer's extended handshake
    (at its next one-second tick, once it has two peers or more), then one a minute; uTP off unless --utp; plaintext only unless --encryption;
    no rate limits; allow_multiple_connections_per_ip on.
  - ssrf_mitigation off: otherwise libtorrent refuses a tracker on localhost whose path is
    not exactly /announce (passkey URLs like /announce/KEY).
  - The torrent is added paused and not auto-managed, its trackers set, then resumed, so the
    first announce already goes to --tracker.
  - At exit the torrent is paused and the driver waits (at most 3 s) for the answers to its
    `stopped` announces: destroying the session alone sends none over UDP.
  - libtorrent dials every peer of a tracker reply, seeding or not (Transmission does not
    dial 127.x peers from a tracker, so pair it with a libtorrent peer that announces last).
"""

import argparse
import json
import queue
import sys
import threading
import time
import warnings

import libtorrent as lt
from lt_loopback import loopback_dht, relax_dht_node_checks

# Longest wait for the trackers' answers to the `stopped` announce at exit.
STOP_SECONDS = 3


def emit(event, **fields):
    """Print one event as a JSON line and flush it, so the reader sees it at once."""
    fields = {"event": event, **fields}
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def parse_endpoint(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def parse_args(argv):
    parser = argparse.ArgumentParser(description="libtorrent peer for interop tests")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seed", action="store_true")
    mode.add_argument("--leech", action="store_true")
    parser.add_argument("--torrent", required=True)
    parser.add_argument("--save-path", required=True)
    parser.add_argument("--listen", default="127.0.0.1:0", type=parse_endpoint)
    parser.add_argument("--peer", action="append", default=[], type=parse_endpoint)
    parser.add_argument("--tracker", action="append", default=[])
    parser.add_argument("--keep-trackers", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--exit-when-finished", action="store_true")
    parser.add_argument("--progress-interval", type=float, default=0.5)
    parser.add_argument("--utp", action="store_true")
    parser.add_argument("--encryption", action="store_true")
    parser.add_argument("--download-limit", type=int, default=0)
    parser.add_argument("--no-outgoing", action="store_true")
    parser.add_argument("--dht-bootstrap", default=None)
    return parser.parse_args(argv)


def make_session(args):
    host, port = args.listen
    settings = {
        # An explicit address: libtorrent treats 0.0.0.0 differently (and runs no DHT on
        # sockets it considers local); each peer of a test gets its own 127.0.0.x.
        "listen_interfaces": f"{host}:{port}",
        # Without this, outgoing connections leave from 127.0.0.1 whatever the listen address.
        "outgoing_interfaces": host,
        "enable_dht": False,
        "dht_bootstrap_nodes": "",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": args.utp,
        "enable_outgoing_utp": args.utp,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": not args.no_outgoing,
        # Every peer of a test is on loopback; several may share an address.
        "allow_multiple_connections_per_ip": True,
        "upload_rate_limit": 0,
        "download_rate_limit": 0,
        # Trackers on localhost: by default libtorrent refuses local tracker URLs whose
        # path is not exactly /announce (SSRF mitigation), which would break passkey URLs.
        "ssrf_mitigation": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        # Connect to peers from a tracker reply at once.
        "connection_speed": 200,
        "alert_mask": (
            lt.alert.category_t.error_notification
            | lt.alert.category_t.status_notification
            | lt.alert.category_t.tracker_notification
            | lt.alert.category_t.connect_notification
            | lt.alert.category_t.peer_notification
            | lt.alert.category_t.storage_notification
        ),
    }
    if not args.encryption:
        settings["out_enc_policy"] = int(lt.enc_policy.disabled)
        settings["in_enc_policy"] = int(lt.enc_policy.disabled)
    if args.dht_bootstrap is not None:
        # A private loopback DHT (see /work/shared/PEERS.md): every node is on 127.x.
        settings.update(loopback_dht(args.dht_bootstrap))
    session = lt.session(settings)
    if args.dht_bootstrap is not None:
        relax_dht_node_checks(session)
    return session


def add_torrent(session, args):
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(args.torrent)
    params.save_path = args.save_path
    # Never auto-managed: a queued torrent would neither announce nor connect. Added paused
    # so that the trackers are set before the first announce.
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags |= lt.torrent_flags.paused
    handle = session.add_torrent(params)
    if args.tracker:
        entries = [] if not args.keep_trackers else list(handle.trackers())
        first_tier = 1 + max((entry["tier"] for entry in entries), default=-1)
        for offset, url in enumerate(args.tracker):
            entries.append({"url": url, "tier": first_tier + offset})
        handle.replace_trackers(entries)
    if args.download_limit > 0:
        handle.set_download_limit(args.download_limit)
    handle.resume()
    return handle


def status_fields(handle):
    status = handle.status()
    return {
        "progress": round(status.progress, 4),
        "state": str(status.state),
        "total_done": status.total_done,
        "total_wanted": status.total_wanted,
        "total_upload": status.total_upload,
        "total_download": status.total_download,
        "peers": status.num_peers,
        "seeds": status.num_seeds,
        "download_rate": status.download_rate,
        "upload_rate": status.upload_rate,
    }


# peer_info.source bits (the binding exposes no `incoming` bit: 0 there).
PEER_SOURCES = ("tracker", "dht", "pex", "lsd", "resume_data")


def peer_fields(info):
    """One connected peer of `handle.get_peer_info()` as JSON fields."""
    sources = [name for name in PEER_SOURCES if info.source & getattr(lt.peer_info, name, 0)]
    return {
        **endpoint_fields(info.ip),
        "client": info.client.decode("utf-8", "replace")
        if isinstance(info.client, bytes) else str(info.client),
        "peer_id": bytes(info.pid.to_bytes()).hex(),
        "outgoing": bool(info.flags & lt.peer_info.local_connection),
        "seed": bool(info.flags & lt.peer_info.seed),
        "source": sources,
        "total_download": info.total_download,
        "total_upload": info.total_upload,
    }


def dht_fields(session):
    """The DHT routing table's nodes (`session.dht_state()`: compact addresses)."""
    with warnings.catch_warnings():
        # dht_state() and session.status() are deprecated in 2.0, yet the binding's only
        # way to the routing table's nodes and their count.
        warnings.simplefilter("ignore", DeprecationWarning)
        state = session.dht_state()
        count = session.status().dht_nodes
    nodes = []
    for compact in state.get(b"nodes", []) if isinstance(state, dict) else []:
        if len(compact) == 6:
            ip = ".".join(str(octet) for octet in compact[:4])
            nodes.append(f"{ip}:{int.from_bytes(compact[4:6], 'big')}")
    ids = state.get(b"node-id", []) if isinstance(state, dict) else []
    node_id = bytes(ids[0][:20]).hex() if ids else ""
    return {"node_id": node_id, "nodes": nodes, "dht_nodes": count}


def read_stdin(commands):
    """Forward stdin lines as commands; None marks end of input."""
    try:
        for line in sys.stdin:
            line = line.strip()
            if line:
                commands.put(line)
    finally:
        commands.put(None)


def endpoint_fields(endpoint):
    try:
        address, port = endpoint
        return {"address": str(address), "port": int(port)}
    except (TypeError, ValueError):
        return {"address": str(endpoint), "port": 0}


class Peer:
    """The driver's state: the session, the torrent and what has been reported."""

    def __init__(self, args):
        self.args = args
        self.session = make_session(args)
        self.handle = None
        self.checked = False
        self.finished = False
        self.exit_code = 0
        self.answered = set()

    def start(self):
        self.handle = add_torrent(self.session, self.args)
        for host, port in self.args.peer:
            self.handle.connect_peer((host, port))

    def run_command(self, line):
        """Apply one stdin command; returns an exit reason or None."""
        word, _, rest = line.partition(" ")
        if word == "quit":
            return "quit"
        if word == "connect":
            try:
                self.handle.connect_peer(parse_endpoint(rest.strip()))
            except (argparse.ArgumentTypeError, RuntimeError) as err:
                emit("warning", message=f"connect {rest!r}: {err}")
        elif word == "announce":
            self.handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
        elif word == "scrape":
            self.handle.scrape_tracker()
        elif word == "status":
            emit("progress", **status_fields(self.handle))
        elif word == "peers":
            emit("peers", peers=[peer_fields(info) for info in self.handle.get_peer_info()])
        elif word == "dht":
            emit("dht", **dht_fields(self.session))
        else:
            emit("warning", message=f"unknown command {line!r}")
        return None

    def on_checked(self):
        if self.checked:
            return None
        self.checked = True
        status = self.handle.status()
        pieces_ok = sum(1 for piece in status.pieces if piece)
        num_pieces = len(status.pieces)
        emit("checked", pieces_ok=pieces_ok, num_pieces=num_pieces)
        if self.args.seed and pieces_ok != num_pieces:
            emit("error", message=f"seed data incomplete: {pieces_ok} of {num_pieces} pieces intact")
            self.exit_code = 1
            return "error"
        if pieces_ok == num_pieces:
            return self.on_finished()
        return None

    def on_finished(self):
        if self.finished:
            return None
        self.finished = True
        emit("finished")
        return "finished" if self.args.exit_when_finished else None

    def handle_alert(self, alert):
        """Report one alert; returns an exit reason or None."""
        if isinstance(alert, lt.listen_succeeded_alert):
            if alert.socket_type == lt.socket_type_t.tcp:
                emit("listening", address=str(alert.address), port=alert.port)
        elif isinstance(alert, lt.listen_failed_alert):
            emit("error", message=f"listen on {alert.listen_interface()} failed: {alert.message()}")
            self.exit_code = 1
            return "error"
        elif isinstance(alert, lt.torrent_checked_alert):
            return self.on_checked()
        elif isinstance(alert, lt.torrent_finished_alert):
            # Also posted after a check that finds everything; a seed's own report comes from
            # on_checked so that the counts precede it.
            if self.checked or not self.args.seed:
                return self.on_finished()
        elif isinstance(alert, lt.tracker_announce_alert):
            emit("tracker_announce", url=alert.tracker_url())
        elif isinstance(alert, lt.tracker_reply_alert):
            self.answered.add(alert.tracker_url())
            emit("tracker_reply", url=alert.tracker_url(), peers=alert.num_peers)
        elif isinstance(alert, lt.tracker_warning_alert):
            emit("tracker_warning", url=alert.tracker_url(), message=alert.warning_message())
        elif isinstance(alert, lt.tracker_error_alert):
            emit("tracker_error", url=alert.tracker_url(), message=alert.message(),
                 times_in_row=alert.times_in_row)
        elif isinstance(alert, lt.scrape_reply_alert):
            emit("scrape_reply", url=alert.tracker_url(), complete=alert.complete,
                 incomplete=alert.incomplete)
        elif isinstance(alert, lt.scrape_failed_alert):
            emit("tracker_error", url=alert.tracker_url(), message=alert.error_message(),
                 times_in_row=0)
        elif isinstance(alert, lt.peer_connect_alert):
            emit("peer_connected", **endpoint_fields(alert.endpoint))
        elif isinstance(alert, lt.peer_disconnected_alert):
            emit("peer_disconnected", message=alert.message(), **endpoint_fields(alert.endpoint))
        elif isinstance(alert, (lt.file_error_alert, lt.torrent_error_alert)):
            emit("error", message=alert.message())
            self.exit_code = 1
            return "error"
        return None

    def stop_announce(self):
        """Pause the torrent and wait (at most STOP_SECONDS) until every tracker that answered
        an announce before has answered its `stopped` announce. Destroying the session alone does not send it over UDP."""
        if self.handle is None or not self.handle.is_valid():
            return
        # Only trackers that answered before: a dead one would cost the whole wait.
        pending = set(self.answered)
        self.handle.pause()
        deadline = time.monotonic() + STOP_SECONDS
        while pending and time.monotonic() < deadline:
            self.session.wait_for_alert(100)
            for alert in self.session.pop_alerts():
                if isinstance(alert, (lt.tracker_reply_alert, lt.tracker_error_alert)):
                    pending.discard(alert.tracker_url())
                if isinstance(alert, lt.tracker_announce_alert):
                    emit("tracker_announce", url=alert.tracker_url(), stopped=True)
        if pending:
            emit("warning", message=f"no answer to `stopped` from {sorted(pending)}")

    def run(self):
        commands = queue.Queue()
        threading.Thread(target=read_stdin, args=(commands,), daemon=True).start()
        self.start()
        deadline = time.monotonic() + self.args.max_seconds
        next_progress = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "max-seconds"
            self.session.wait_for_alert(100)
            for alert in self.session.pop_alerts():
                reason = self.handle_alert(alert)
                if reason:
                    return reason
            while True:
                try:
                    line = commands.get_nowait()
                except queue.Empty:
                    break
                if line is None:
                    return "stdin closed"
                reason = self.run_command(line)
                if reason:
                    return reason
            interval = self.args.progress_interval
            if interval > 0 and time.monotonic() >= next_progress:
                emit("progress", **status_fields(self.handle))
                next_progress = time.monotonic() + interval


def main(argv):
    args = parse_args(argv)
    try:
        peer = Peer(args)
        reason = peer.run()
        peer.stop_announce()
    except Exception as err:  # noqa: BLE001 - any failure becomes an event, then exit 1
        emit("error", message=f"{type(err).__name__}: {err}")
        emit("exit", reason="error")
        return 1
    emit("exit", reason=reason)
    return peer.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
