#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets into corpus/<target>/ (not committed).

Seeds: the repository's .torrent fixtures (and their raw info dictionaries) for `bencode`
and `metainfo`, and a few hand-written messages per target, mostly taken from the BEP
texts. Run from anywhere; existing files with the same names are overwritten, files the
fuzzer added are left alone.
"""
import hashlib
import pathlib
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
REPO = FUZZ.parent.parent
CORPUS = FUZZ / "corpus"

HASH = bytes(range(20))
PEER_ID = b"-RL0001-abcdefghijkl"


def be(value):
    """Minimal canonical bencode for seeds."""
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(be(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(be(k) + be(v) for k, v in items) + b"e"
    raise TypeError(value)


def span(data, pos):
    """End of the bencoded value starting at pos."""
    c = data[pos : pos + 1]
    if c == b"i":
        return data.index(b"e", pos) + 1
    if c in (b"l", b"d"):
        pos += 1
        while data[pos : pos + 1] != b"e":
            pos = span(data, pos)
        return pos + 1
    colon = data.index(b":", pos)
    return colon + 1 + int(data[pos:colon])


def raw_info(data):
    """The raw bytes of the top-level `info` value, or None."""
    try:
        pos = 1
        while data[pos : pos + 1] != b"e":
            key_end = span(data, pos)
            key = data[data.index(b":", pos) + 1 : key_end]
            value_end = span(data, key_end)
            if key == b"info":
                return data[key_end:value_end]
            pos = value_end
    except (ValueError, IndexError, RecursionError):
        pass
    return None


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data)


def torrents():
    for path in sorted((REPO / "fixtures" / "torrents").rglob("*.torrent")):
        data = path.read_bytes()
        name = f"{path.parent.name}-{path.stem}"
        write("bencode", name, data)
        write("metainfo", name, data)
        info = raw_info(data) if data.startswith(b"d") else None
        if info:
            write("metainfo", name + "-info", info)


def bencode():
    seeds = {
        "int": b"i42e",
        "neg": b"i-9223372036854775808e",
        "str": b"4:spam",
        "list": b"l4:spami42ee",
        "dict": b"d3:cow3:moo4:spam4:eggse",
        "unsorted": b"d1:bi1e1:ai2ee",
        "duplicate": b"d1:ai1e1:ai2e1:bi3ee",
        "nested": b"d1:ald1:bl1:ceeee",
        "empty": b"de",
    }
    for name, data in seeds.items():
        write("bencode", name, data)
    small = be({"piece length": 4, "pieces": HASH, "name": "a", "length": 3})
    write("metainfo", "hand-single-info", small)
    write("metainfo", "hand-single", be({"announce": "http://t/a", "info": {"piece length": 4, "pieces": HASH, "name": "a", "length": 3}}))
    multi = {"piece length": 2, "pieces": HASH * 2, "name": "d", "files": [
        {"length": 1, "path": ["x"]}, {"length": 2, "path": [".pad", "2"], "attr": "p"},
        {"length": 1, "path": ["s", "l"], "attr": "lx", "symlink path": ["x"]}]}
    write("metainfo", "hand-multi", be({"announce-list": [["udp://a:1"], ["http://b/"]], "url-list": "http://w/", "info": multi}))


def msg(ident, payload=b""):
    return struct.pack(">IB", 1 + len(payload), ident) + payload


def wire():
    handshake = b"\x13BitTorrent protocol" + b"\x00\x00\x00\x00\x00\x10\x00\x05" + HASH + PEER_ID
    ext_hs = be({"m": {"ut_metadata": 1, "ut_pex": 2}, "p": 6881, "v": "Rill 0.1", "reqq": 250,
                 "yourip": b"\x7f\x00\x00\x01", "metadata_size": 20000, "upload_only": 1})
    stream = b"".join([
        b"\x00\x00\x00\x00",
        msg(0), msg(1), msg(2), msg(3),
        msg(4, struct.pack(">I", 7)),
        msg(5, b"\xff\x80"),
        msg(6, struct.pack(">III", 1, 0, 16384)),
        msg(7, struct.pack(">II", 1, 0) + b"data"),
        msg(8, struct.pack(">III", 1, 0, 16384)),
        msg(9, struct.pack(">H", 6881)),
        msg(0x0D, struct.pack(">I", 3)), msg(0x0E), msg(0x0F),
        msg(0x10, struct.pack(">III", 2, 16384, 16384)),
        msg(0x11, struct.pack(">I", 5)),
        msg(20, b"\x00" + ext_hs),
        msg(0x42, b"unknown"),
    ])
    seeds = {
        "handshake": handshake,
        "handshake-then-messages": handshake + stream,
        "stream": stream,
        "ext-handshake": ext_hs,
        "metadata-request": be({"msg_type": 0, "piece": 0}),
        "metadata-data": be({"msg_type": 1, "piece": 0, "total_size": 3}) + b"abc",
        "metadata-reject": be({"msg_type": 2, "piece": 1}),
        "pex": be({"added": b"\x01\x02\x03\x04\x1a\xe1", "added.f": b"\x12",
                   "added6": bytes(16) + b"\x1a\xe1", "added6.f": b"\x00",
                   "dropped": b"\x05\x06\x07\x08\x00\x50", "dropped6": b""}),
    }
    for name, data in seeds.items():
        write("wire", name, data)


def pct(data):
    return "".join(chr(b) if chr(b).isalnum() or chr(b) in "-._~" else "%%%02X" % b for b in data)


def tracker_http():
    announce = (f"info_hash={pct(HASH)}&peer_id={pct(PEER_ID)}&port=6881&uploaded=0"
                "&downloaded=0&left=100&compact=1&event=started&numwant=50&key=abc"
                "&trackerid=xyz&ipv4=1.2.3.4&ipv6=%5B%3A%3A1%5D%3A6882&no_peer_id=1")
    scrape = f"info_hash={pct(HASH)}&info_hash={pct(bytes(20))}"
    dict_peers = [{"ip": "1.2.3.4", "port": 6881, "peer id": PEER_ID}, {"ip": "::1", "port": 1}]
    seeds = {
        "announce": announce.encode(),
        "scrape": scrape.encode(),
        "reply-compact": be({"interval": 1800, "min interval": 60, "complete": 3,
                             "incomplete": 4, "tracker id": "t", "warning message": "w",
                             "peers": b"\x01\x02\x03\x04\x1a\xe1",
                             "peers6": bytes(15) + b"\x01\x1a\xe1"}),
        "reply-dict": be({"interval": 1800, "peers": dict_peers}),
        "failure": be({"failure reason": "unregistered torrent"}),
        "scrape-reply": be({"files": {HASH: {"complete": 1, "downloaded": 2, "incomplete": 3,
                                             "name": "x"}},
                            "flags": {"min_request_interval": 60}}),
    }
    for name, data in seeds.items():
        write("tracker_http", name, data)


def tracker_udp():
    options = b"\x02\x0c/announce?pk" + b"\x01" + b"\x02\x02=1" + b"\x00"
    announce = (struct.pack(">QII", 0x1234, 1, 7) + HASH + PEER_ID
                + struct.pack(">QQQIIIiH", 0, 100, 0, 2, 0, 42, -1, 6881))
    seeds = {
        "connect": struct.pack(">QII", 0x41727101980, 0, 7),
        "announce": announce,
        "announce-options": announce + options,
        "scrape": struct.pack(">QII", 0x1234, 2, 7) + HASH + bytes(20),
        "reply-connect": struct.pack(">IIQ", 0, 7, 0x1234),
        "reply-announce": struct.pack(">IIIII", 1, 7, 1800, 1, 2) + b"\x01\x02\x03\x04\x1a\xe1" * 3,
        "reply-scrape": struct.pack(">II", 2, 7) + struct.pack(">III", 1, 2, 3) * 2,
        "reply-error": struct.pack(">II", 3, 7) + b"unknown torrent",
        "options": options,
    }
    for name, data in seeds.items():
        write("tracker_udp", name, data)


def krpc():
    node_id = b"abcdefghij0123456789"
    seeds = {
        # The examples of BEP 5.
        "ping": b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        "ping-reply": b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        "error": b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        "find_node": b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        "get_peers": b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        "announce_peer": b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        "values-reply": be({"t": "aa", "y": "r", "v": "RL01", "ip": b"\x01\x02\x03\x04\x1a\xe1",
                            "r": {"id": node_id, "token": "aoeusnth",
                                  "values": [b"axje.u", bytes(16) + b"\x1a\xe1"]}}),
        "nodes-reply": be({"t": "aa", "y": "r", "ro": 1,
                           "r": {"id": node_id, "nodes": node_id + b"\x01\x02\x03\x04\x1a\xe1",
                                 "nodes6": node_id + bytes(16) + b"\x1a\xe1"}}),
        "want": be({"t": "aa", "y": "q", "q": "find_node",
                    "a": {"id": node_id, "target": node_id, "want": ["n4", "n6"]}}),
        "unknown-method": be({"t": "aa", "y": "q", "q": "sample_infohashes",
                              "a": {"id": node_id, "target": node_id}}),
    }
    for name, data in seeds.items():
        write("krpc", name, data)


def magnet():
    hex_hash = HASH.hex()
    seeds = {
        "bep9": f"magnet:?xt=urn:btih:{hex_hash}&dn=Big+Buck+Bunny&tr=udp%3A%2F%2Ft.example%3A6969",
        "base32": "magnet:?xt=urn:btih:AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQT&tr.1=http://a/&tr.2=http://b/",
        "full": (f"magnet:?xt=urn:btih:{hex_hash}&ws=http://w/f&x.pe=1.2.3.4:6881"
                 "&x.pe=[::1]:6881&x.pe=host.example:1&so=0,2,4-6"),
        "hybrid": f"magnet:?xt=urn:btih:{hex_hash}&xt=urn:btmh:1220{hashlib.sha256(b'').hexdigest()}",
        "v2-only": f"magnet:?xt=urn:btmh:1220{hashlib.sha256(b'x').hexdigest()}",
    }
    for name, text in seeds.items():
        write("magnet", name, text.encode())


if __name__ == "__main__":
    torrents()
    bencode()
    wire()
    tracker_http()
    tracker_udp()
    krpc()
    magnet()
    for folder in sorted(CORPUS.iterdir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} files")
