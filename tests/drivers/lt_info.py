#!/usr/bin/python3
"""Print what libtorrent reports about a .torrent file, as one JSON object (a `ToolView`).

Run with Debian's /usr/bin/python3 (the only interpreter that imports python3-libtorrent):

    /usr/bin/python3 tests/drivers/lt_info.py FILE.torrent [--made-with COMMAND]

Fields: tool ("libtorrent 2.0.8.0"), creator (the torrent's `created by`, or null), made_with (the
command that made the torrent, as passed with --made-with, else null), info_hash (v1, lowercase hex, null for v2-only), info_hash_v2 (null
unless the torrent has v2 metadata), name, piece_length, piece_count, total_size (includes BEP 47
pad files, as libtorrent counts them), private, multi_file, files [{path, length, pad}] in torrent
order with paths relative to the torrent's root folder (the bare name for a single-file torrent),
trackers (list of tiers, each a list of URLs, in file order; libtorrent itself shuffles each
tier on load), web_seeds (BEP 19 url-list), comment (null when
absent), exact (always true: libtorrent reports exact byte counts).
"""

import json
import sys

import libtorrent as lt


def view(path, made_with=None):
    with open(path, "rb") as f:
        raw = f.read()
    ti = lt.torrent_info(raw)
    hashes = ti.info_hashes()
    files = ti.files()
    name = ti.name()

    # multi_file: whether the v1 info dictionary has a `files` list (a one-file torrent may
    # still be multi-file); v2-only torrents have no v1 part, so look at the file tree.
    top = lt.bdecode(raw)
    info = top.get(b"info", {})
    if b"files" in info:
        multi_file = True
    elif b"length" in info:
        multi_file = False
    else:
        tree = info.get(b"file tree", {})
        multi_file = not (len(tree) == 1 and b"" in next(iter(tree.values()), {}))

    out_files = []
    for i in range(files.num_files()):
        p = files.file_path(i).replace("\\", "/")
        if multi_file:
            prefix = name + "/"
            if p.startswith(prefix):
                p = p[len(prefix):]
        out_files.append({
            "path": p,
            "length": files.file_size(i),
            "pad": bool(files.file_flags(i) & lt.file_storage.flag_pad_file),
        })

    # Trackers in file order: libtorrent shuffles the URLs within each tier when it loads a
    # torrent (BEP 12), so ti.trackers() is not reproducible. Same content, read from the file.
    tiers = []
    for tier in top.get(b"announce-list", []) or []:
        urls = [u.decode("utf-8", "replace") for u in tier if isinstance(u, bytes) and u]
        if urls:
            tiers.append(urls)
    if not tiers and top.get(b"announce"):
        tiers = [[top[b"announce"].decode("utf-8", "replace")]]
    listed = sorted(t.url for t in ti.trackers())
    assert listed == sorted(u for tier in tiers for u in tier), (listed, tiers)

    comment = ti.comment()
    return {
        "tool": "libtorrent " + lt.__version__,
        "creator": ti.creator() or None,
        "made_with": made_with,
        "info_hash": str(hashes.v1) if hashes.has_v1() else None,
        "info_hash_v2": str(hashes.v2) if hashes.has_v2() else None,
        "name": name,
        "piece_length": ti.piece_length(),
        "piece_count": ti.num_pieces(),
        "total_size": ti.total_size(),
        "private": bool(ti.priv()),
        "multi_file": multi_file,
        "files": out_files,
        "trackers": tiers,
        "web_seeds": [w["url"] for w in ti.web_seeds() if w.get("type", 0) == 0],
        "comment": comment if comment else None,
        "exact": True,
    }


def main():
    args = sys.argv[1:]
    made_with = None
    if "--made-with" in args:
        i = args.index("--made-with")
        made_with = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit("usage: lt_info.py FILE.torrent [--made-with COMMAND]")
    json.dump(view(args[0], made_with), sys.stdout, ensure_ascii=False, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
