#!/usr/bin/python3
"""A libtorrent DHT node for interop tests: announces and looks up info-hashes on a loopback DHT.

Run by hand (Debian's interpreter: only /usr/bin/python3 imports python3-libtorrent):

    /usr/bin/python3 tests/drivers/lt_dht.py --listen 127.0.0.2:0 --bootstrap 127.0.0.1:PORT \\
        --announce HEX40 --find HEX40

Options:
  --listen ADDR      IPv4 address and port (an explicit address: libtorrent runs no DHT on a
                     socket it treats as local, i.e. 0.0.0.0 on loopback).
  --bootstrap NODES  dht_bootstrap_nodes, e.g. "127.0.0.1:6881" (comma-separated).
  --announce HEX     add this info-hash as a torrent without metadata (a magnet link) and
                     force a DHT announce of it every --interval (repeatable); libtorrent
                     announces its listen port. (The Python binding's dht_announce cannot be
                     called in 2.0.8: its flags type is not exposed.)
  --find HEX         dht_get_peers this info-hash every --interval (repeatable).
  --interval S       seconds between rounds (default 1).
  --max-seconds N    time box (default 90): the driver exits by itself after N seconds.

Settings for a private loopback DHT: routing and search IP restrictions off (every node is on
127.x), rate limit blocking off, no LSD/UPnP/NAT-PMP, no uTP.

Output: one JSON object per line on stdout, flushed at once, each with an "event":
  {"event":"listening","address":"127.0.0.2","port":N}     TCP and DHT UDP port
  {"event":"stats","dht_nodes":N}                           once per round
  {"event":"peers","info_hash":HEX,"peers":["ip:port",..]}  a dht_get_peers reply
  {"event":"exit","reason":"stdin closed"|"max-seconds"}
The driver stops when stdin closes.
"""

import argparse
import json
import select
import sys
import tempfile
import time
import warnings

import libtorrent as lt
from lt_loopback import loopback_dht, relax_dht_node_checks

# session.status() is deprecated in 2.0 but is the one call that gives the DHT node count.
warnings.filterwarnings("ignore", category=DeprecationWarning)


def emit(**event):
    print(json.dumps(event), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.2:0")
    parser.add_argument("--bootstrap", default="")
    parser.add_argument("--announce", action="append", default=[])
    parser.add_argument("--find", action="append", default=[])
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=90.0)
    args = parser.parse_args()

    settings = {
        "listen_interfaces": args.listen,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        **loopback_dht(args.bootstrap),
        # dht_get_peers_reply_alert is in the dht_operation category.
        "alert_mask": lt.alert.category_t.all_categories,
    }
    session = lt.session(settings)
    relax_dht_node_checks(session)

    address = args.listen.rsplit(":", 1)[0]
    port = session.listen_port()
    emit(event="listening", address=address, port=port)

    announce = []
    for h in args.announce:
        params = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + h)
        params.save_path = tempfile.mkdtemp(prefix="lt_dht_")
        announce.append(session.add_torrent(params))
    find = [lt.sha1_hash(bytes.fromhex(h)) for h in args.find]
    deadline = time.monotonic() + args.max_seconds
    next_round = 0.0
    reason = "max-seconds"
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_round:
            next_round = now + args.interval
            for handle in announce:
                handle.force_dht_announce()
            for h in find:
                session.dht_get_peers(h)
            emit(event="stats", dht_nodes=session.status().dht_nodes)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.dht_get_peers_reply_alert):
                peers = ["%s:%d" % (ip, p) for ip, p in alert.peers()]
                emit(event="peers", info_hash=str(alert.info_hash), peers=peers)
        readable, _, _ = select.select([sys.stdin], [], [], 0.1)
        if readable and not sys.stdin.readline():
            reason = "stdin closed"
            break
    emit(event="exit", reason=reason)


if __name__ == "__main__":
    main()
