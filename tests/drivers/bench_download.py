#!/usr/bin/python3
"""Benchmark: rill against libtorrent on loopback, data on tmpfs, in the same run (issue 4).

    cargo build --release -p rill
    /usr/bin/python3 tests/drivers/bench_download.py              # 1 GiB, 3 runs
    RILL_BENCH_SIZE=64M /usr/bin/python3 tests/drivers/bench_download.py --runs 1

Each run measures, against the same data and the same torrent:
  download  a libtorrent seed (tests/drivers/lt_peer.py) serves the torrent; `rill download
            --peer SEED` and then a libtorrent leecher (the order alternates between runs) each
            fetch it into an empty folder; both copies are compared byte for byte.
  seeding   `rill seed` against the libtorrent seed, each serving one libtorrent leecher that
            dials it (the libtorrent figure is the download run's own leecher).
Figures per process: wall time, MiB/s, CPU seconds (user+sys from wait4's rusage) and peak
RSS (ru_maxrss as GNU time, /usr/bin/time, reports it); for a seed, the CPU it spent while the leecher ran (from /proc/PID/stat) and
its VmHWM. libtorrent runs inside Python: its leecher's time and CPU are counted from its
`listening` event (session up, interpreter loaded) to the end, so Python's start-up is not
charged to it; rill's are counted from exec to exit, start-up and shutdown included.
libtorrent 2 memory-maps its files, so its RSS includes file pages: compare rill's in absolute
terms (target: 32 MiB).

Options:
  --size SIZE        payload, e.g. 64M, 1G (default $RILL_BENCH_SIZE or 1G)
  --runs N           runs (default 3); the summary gives the median of each figure and ratio
  --rill PATH        the rill binary (default target/release/rill of this repository)
  --tmp DIR          where the data goes (default /dev/shm, a tmpfs)
  --piece-length N   piece length in bytes (default 0: libtorrent's choice for the size)
  --timeout S        bound on each transfer and on each start-up (default 300 s)
  --json FILE        also write every figure as JSON to FILE
Only /usr/bin/python3 imports python3-libtorrent. Every process started here is killed at the
end, and the temporary folder is removed. Exit code 0 when every copy matched, 1 otherwise.
"""

import argparse
import json
import os
import shutil
import sys

import libtorrent as lt

from bench_common import (DEFAULT_RILL, GNU_TIME, HERE, MIB, PYTHON, Child, Failure,
                          check_copy, median_run, parse_size, scratch_dir, v1_torrent,
                          write_payload)

LT_PEER = os.path.join(HERE, "lt_peer.py")
TICK = os.sysconf("SC_CLK_TCK")
SEED_ADDR = "127.0.0.2"
LEECH_ADDR = "127.0.0.3"

TARGETS = {
    "download_time_ratio": 0.8,
    "download_cpu_ratio": 0.6,
    "rill_download_rss_mib": 32.0,
    "seeding_time_ratio": 0.8,
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=parse_size,
                   default=parse_size(os.environ.get("RILL_BENCH_SIZE", "1G")))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rill", default=DEFAULT_RILL)
    p.add_argument("--tmp", default="/dev/shm")
    p.add_argument("--piece-length", type=int, default=0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--json")
    return p.parse_args(argv)


def proc_cpu(pid):
    """User+sys CPU seconds of a live process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_hwm_mib(pid):
    """Peak RSS (VmHWM) of a live process in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_data(tmp, size, piece_length):
    """Writes SIZE bytes of random data and a v1 torrent of it; returns (torrent, data dir)."""
    data_dir = os.path.join(tmp, "seed")
    torrent_bytes, piece_length = v1_torrent(write_payload(data_dir, size), piece_length)
    torrent = os.path.join(tmp, "payload.torrent")
    with open(torrent, "wb") as f:
        f.write(torrent_bytes)
    return torrent, data_dir, piece_length


def lt_peer(mode, torrent, save_path, listen, peers, timeout):
    argv = [PYTHON, LT_PEER, mode, "--torrent", torrent, "--save-path", save_path,
            "--listen", f"{listen}:0", "--progress-interval", "0",
            "--max-seconds", str(int(timeout) + 60)]
    if mode == "--leech":
        argv.append("--exit-when-finished")
    for peer in peers:
        argv += ["--peer", peer]
    return Child(f"libtorrent {mode[2:]}", argv, measure=mode == "--leech")


def cpu_of(rusage):
    return rusage.ru_utime + rusage.ru_stime


def rill_download(args, torrent, out_dir, seed_addr, size):
    os.mkdir(out_dir)
    child = Child("rill download", [args.rill, "download", torrent, "-o", out_dir, "--peer",
                                    seed_addr, "--port", "0", "--quiet"],
                  stdout=None, measure=True)
    end, rusage = child.wait_exit(args.timeout)
    wall = end - child.started
    return {"wall_s": wall, "mib_s": size / MIB / wall, "cpu_s": cpu_of(rusage),
            "rss_mib": child.peak_rss_mib()}


def lt_download(args, torrent, out_dir, seed_addr, size, seed):
    """A libtorrent leecher fetching from seed_addr; also the seed's CPU meanwhile."""
    os.mkdir(out_dir)
    child = lt_peer("--leech", torrent, out_dir, LEECH_ADDR, [seed_addr], args.timeout)
    try:
        begin, _ = child.wait_event(lambda e: e.get("event") == "listening", args.timeout)
        cpu_begin = proc_cpu(child.pid)
        seed_cpu_begin = proc_cpu(seed.pid)
        child.wait_event(lambda e: e.get("event") == "finished", args.timeout)
        end, rusage = child.wait_exit(args.timeout)
        seed_cpu = proc_cpu(seed.pid) - seed_cpu_begin
    finally:
        child.kill()
    wall = end - begin
    return {"wall_s": wall, "mib_s": size / MIB / wall, "cpu_s": cpu_of(rusage) - cpu_begin,
            "rss_mib": child.peak_rss_mib(), "seed_cpu_s": seed_cpu,
            "seed_rss_mib": proc_hwm_mib(seed.pid)}


def start_rill_seed(args, torrent, data_dir):
    child = Child("rill seed", [args.rill, "seed", torrent, "--data", data_dir, "--port", "0",
                                "--json"])
    _, line = child.wait_event(lambda e: e.get("phase") == "seeding", args.timeout)
    return child, f"127.0.0.1:{line['listen_port']}"


def one_run(args, index, tmp, torrent, data_dir, lt_seed, lt_seed_addr):
    size = args.size
    result = {}
    order = ["rill", "libtorrent"] if index % 2 == 0 else ["libtorrent", "rill"]
    for who in order:
        out = os.path.join(tmp, f"out-{who}")
        if who == "rill":
            result["rill_download"] = rill_download(args, torrent, out, lt_seed_addr, size)
        else:
            result["lt_download"] = lt_download(args, torrent, out, lt_seed_addr, size, lt_seed)
        check_copy(data_dir, out)
        shutil.rmtree(out)
    seed, seed_addr = start_rill_seed(args, torrent, data_dir)
    try:
        out = os.path.join(tmp, "out-from-rill")
        result["rill_seeding"] = lt_download(args, torrent, out, seed_addr, size, seed)
        check_copy(data_dir, out)
        shutil.rmtree(out)
    finally:
        seed.stop()
    result["lt_seeding"] = result["lt_download"]
    r, l = result["rill_download"], result["lt_download"]
    result["ratios"] = {
        "download_time_ratio": r["wall_s"] / l["wall_s"],
        "download_cpu_ratio": r["cpu_s"] / l["cpu_s"],
        "rill_download_rss_mib": r["rss_mib"],
        "seeding_time_ratio": result["rill_seeding"]["wall_s"] / result["lt_seeding"]["wall_s"],
    }
    return result


def fmt_row(name, m):
    extra = ""
    if "seed_cpu_s" in m:
        extra = f"  seed cpu {m['seed_cpu_s']:6.2f} s  seed VmHWM {m['seed_rss_mib']:7.1f} MiB"
    return (f"  {name:<34} {m['wall_s']:7.2f} s {m['mib_s']:8.1f} MiB/s  cpu {m['cpu_s']:6.2f} s"
            f"  rss {m['rss_mib']:7.1f} MiB{extra}")


def print_run(result):
    print(fmt_row("download: rill <- lt seed", result["rill_download"]))
    print(fmt_row("download: lt <- lt seed", result["lt_download"]))
    print(fmt_row("seeding: rill seed -> lt", result["rill_seeding"]))
    print(fmt_row("seeding: lt seed -> lt", result["lt_seeding"]))
    for key, value in result["ratios"].items():
        verdict = "met" if value <= TARGETS[key] else "MISSED"
        print(f"  {key:<34} {value:7.2f}  (target <= {TARGETS[key]}: {verdict})")


def main(argv):
    args = parse_args(argv)
    if not os.access(GNU_TIME, os.X_OK):
        print(f"no {GNU_TIME}: apt-get install time", file=sys.stderr)
        return 1
    if not os.access(args.rill, os.X_OK):
        print(f"no rill binary at {args.rill}: cargo build --release -p rill", file=sys.stderr)
        return 1
    with scratch_dir(args.tmp, "rill-bench-") as tmp:
        return run_all(args, tmp)


def run_all(args, tmp):
    """Every run in tmp; 0 when every copy matched, 1 on a failed step."""
    results = []
    try:
        print(f"making {args.size / MIB:.0f} MiB of data in {tmp} ...", flush=True)
        torrent, data_dir, piece_length = make_data(tmp, args.size, args.piece_length)
        print(f"piece length {piece_length // 1024} KiB; libtorrent {lt.__version__}; "
              f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}", flush=True)
        lt_seed = lt_peer("--seed", torrent, data_dir, SEED_ADDR, [], args.timeout * args.runs * 4)
        _, ev = lt_seed.wait_event(lambda e: e.get("event") == "listening", args.timeout)
        lt_seed_addr = f"{SEED_ADDR}:{ev['port']}"
        lt_seed.wait_event(lambda e: e.get("event") == "finished", args.timeout)
        for index in range(args.runs):
            print(f"run {index + 1}/{args.runs} (load {os.getloadavg()[0]:.1f})", flush=True)
            result = one_run(args, index, tmp, torrent, data_dir, lt_seed, lt_seed_addr)
            print_run(result)
            results.append(result)
        summary = median_run(results)
        print(f"median of {len(results)} run(s), {args.size / MIB:.0f} MiB:")
        print_run(summary)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"size": args.size, "piece_length": piece_length, "runs": results,
                           "median": summary, "targets": TARGETS}, f, indent=1)
        return 0
    except Failure as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
