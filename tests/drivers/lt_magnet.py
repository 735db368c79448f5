#!/usr/bin/python3
"""A libtorrent peer for magnet-link interop tests: a seed announced on a loopback DHT, or a
leecher that starts from a magnet link alone.

Run by hand (Debian's interpreter: only /usr/bin/python3 imports python3-libtorrent):

    /usr/bin/python3 tests/drivers/lt_magnet.py --seed T.torrent --save-path DATA_PARENT \\
        --listen 127.0.0.2:0 --dht-bootstrap 127.0.10.1:PORT
    /usr/bin/python3 tests/drivers/lt_magnet.py --magnet 'magnet:?xt=...' --save-path EMPTY \\
        --listen 127.0.0.3:0 --peer 127.0.0.1:PORT

Options:
  --seed FILE          seed this .torrent (data under --save-path); with the DHT on, it is
                       announced every --interval seconds.
  --magnet URI         leech from this magnet link (metadata over ut_metadata, BEP 9).
  --save-path DIR      libtorrent's save path.
  --listen ADDR        an explicit IPv4 address and port (libtorrent runs no DHT on 0.0.0.0).
  --dht-bootstrap N    turn the DHT on with these bootstrap nodes (comma-separated); off
                       without it. Loopback settings: no routing/search IP restrictions,
                       no rate-limit blocking.
  --peer ADDR          connect to this peer once the torrent is added (repeatable).
  --interval S         seconds between DHT announces and `stats` events (default 1).
  --max-seconds N      time box (default 120).

Output: one JSON object per line on stdout:
  {"event":"listening","address":A,"port":N}
  {"event":"metadata"}                         the info dict arrived (magnet leech)
  {"event":"finished"}                         every piece verified (a seed: after its check)
  {"event":"stats","dht_nodes":N,"peers":P,"progress":F}   every --interval
  {"event":"error","message":M}
  {"event":"exit","reason":"stdin closed"|"max-seconds"|"error"}
The driver stops when stdin closes.
"""

import argparse
import json
import select
import sys
import time
import warnings

import libtorrent as lt
from lt_loopback import loopback_dht, plain_loopback, relax_dht_node_checks

warnings.filterwarnings("ignore", category=DeprecationWarning)


def emit(**event):
    print(json.dumps(event), flush=True)


def endpoint(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def main():
    parser = argparse.ArgumentParser()
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--seed")
    mode.add_argument("--magnet")
    parser.add_argument("--save-path", required=True)
    parser.add_argument("--listen", default="127.0.0.2:0")
    parser.add_argument("--dht-bootstrap", default=None)
    parser.add_argument("--peer", action="append", default=[], type=endpoint)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()

    host = args.listen.rsplit(":", 1)[0]
    dht = args.dht_bootstrap is not None
    settings = {
        "listen_interfaces": args.listen,
        **plain_loopback(host),
        **(loopback_dht(args.dht_bootstrap) if dht else {"enable_dht": False}),
        "alert_mask": lt.alert.category_t.all_categories,
    }
    session = lt.session(settings)
    relax_dht_node_checks(session)
    emit(event="listening", address=host, port=session.listen_port())

    if args.seed:
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(args.seed)
    else:
        params = lt.parse_magnet_uri(args.magnet)
    params.save_path = args.save_path
    params.flags &= ~lt.torrent_flags.auto_managed
    handle = session.add_torrent(params)
    handle.resume()
    for peer in args.peer:
        handle.connect_peer(peer)

    deadline = time.monotonic() + args.max_seconds
    next_round = 0.0
    reason = "max-seconds"
    finished = False
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_round:
            next_round = now + args.interval
            status = handle.status()
            if dht and args.seed:
                handle.force_dht_announce()
            emit(
                event="stats",
                dht_nodes=session.status().dht_nodes,
                peers=status.num_peers,
                progress=round(status.progress, 4),
            )
        for alert in session.pop_alerts():
            if isinstance(alert, lt.metadata_received_alert):
                emit(event="metadata")
            elif isinstance(alert, lt.torrent_finished_alert) and not finished:
                finished = True
                emit(event="finished")
            elif isinstance(alert, lt.torrent_error_alert):
                emit(event="error", message=alert.message())
        status = handle.status()
        if not finished and status.is_seeding and args.seed:
            finished = True
            emit(event="finished")
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable and not sys.stdin.readline():
            reason = "stdin closed"
            break
    emit(event="exit", reason=reason)


if __name__ == "__main__":
    main()
