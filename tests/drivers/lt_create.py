#!/usr/bin/python3
"""Create a .torrent with libtorrent (python3-libtorrent 2.0), for fixtures and interop tests.

    /usr/bin/python3 tests/drivers/lt_create.py [options] -o OUT.torrent SOURCE

SOURCE is a file or folder; its parent folder is where libtorrent reads the data from.
Options:
  --piece-length N    piece length in bytes (default 32768)
  --v1-only           BEP 3 metadata only (libtorrent 2 makes hybrids by default)
  --v2-only           BEP 52 metadata only
  --pad               with --v1-only: align every file to a piece with BEP 47 pad files
                      (libtorrent's `canonical_files` flag; it also pads the last file)
  --tracker URLS      one tier: comma-separated announce URLs; repeat for more tiers
  --web-seed URL      BEP 19 url-list entry; repeatable
  --comment TEXT
  --private
  --no-date           leave out `creation date` (libtorrent writes the current time)
"""

import argparse
import os

import libtorrent as lt


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--piece-length", type=int, default=32768)
    p.add_argument("--v1-only", action="store_true")
    p.add_argument("--v2-only", action="store_true")
    p.add_argument("--pad", action="store_true")
    p.add_argument("--tracker", action="append", default=[])
    p.add_argument("--web-seed", action="append", default=[])
    p.add_argument("--comment")
    p.add_argument("--private", action="store_true")
    p.add_argument("--no-date", action="store_true")
    p.add_argument("source")
    a = p.parse_args()

    flags = 0
    if a.v1_only:
        flags |= lt.create_torrent.v1_only
    if a.v2_only:
        flags |= lt.create_torrent.v2_only
    if a.pad:
        flags |= lt.create_torrent.canonical_files

    source = os.path.abspath(a.source)
    fs = lt.file_storage()
    lt.add_files(fs, source)
    ct = lt.create_torrent(fs, a.piece_length, flags=flags)
    for tier, urls in enumerate(a.tracker):
        for url in urls.split(","):
            ct.add_tracker(url, tier)
    for url in a.web_seed:
        ct.add_url_seed(url)
    if a.comment is not None:
        ct.set_comment(a.comment)
    ct.set_priv(a.private)
    lt.set_piece_hashes(ct, os.path.dirname(source))
    entry = ct.generate()
    if a.no_date:
        entry.pop(b"creation date", None)
    with open(a.output, "wb") as f:
        f.write(lt.bencode(entry))


if __name__ == "__main__":
    main()
