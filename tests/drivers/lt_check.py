#!/usr/bin/python3
"""Check data on disk against a .torrent with libtorrent, and print the result as JSON.

    /usr/bin/python3 tests/drivers/lt_check.py FILE.torrent SAVE_PATH

libtorrent hashes the files under SAVE_PATH (as it does when resuming a download) and the
script prints {"num_pieces": N, "pieces_ok": M, "state": "..."}: every piece verified when the
torrent's piece hashes match the data. The session listens on loopback only, with DHT, LSD,
UPnP and NAT-PMP off, and the wait is bounded (60 s) so the script always ends.
"""

import json
import sys
import time

import libtorrent as lt


def main():
    torrent, save_path = sys.argv[1], sys.argv[2]
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": 0,
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save_path
    handle = session.add_torrent(params)
    checking = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
    deadline = time.monotonic() + 60
    status = handle.status()
    while time.monotonic() < deadline:
        status = handle.status()
        if status.state not in checking:
            break
        time.sleep(0.05)
    pieces = status.pieces
    print(json.dumps({
        "num_pieces": len(pieces),
        "pieces_ok": sum(1 for p in pieces if p),
        "state": str(status.state),
    }))


if __name__ == "__main__":
    main()
