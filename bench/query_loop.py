#!/usr/bin/env python3
"""bm25 latency of builds against each other, on one data folder: each
build's rlmd in turn serves the same loaded session, and one rlm-mcp shim,
driven by hand with JSON-RPC lines (no SDK), sends the 30 bm25 queries of
`bench/scale.py` in a loop; printed per run: p50 / p95 of the calls' wall
time, and the daemon's and the shim's CPU time per call (/proc). The
first use of a data folder loads the corpus into a session through the
first build's CLI and searches it once (the index build); later uses reuse
it, so builds are timed on the very same index.

    python3 bench/query_loop.py --data DIR --bin BIN_DIR [--bin BIN_DIR ...]
                                [--rounds 2] [--runs 3] [--seconds 6]
                                [--corpus GLOB ...] [--as-built]

`--bin` holds release builds of rlmd, rlm-mcp and rlm (`cargo build
--release -p rlmd -p rlm-client`); the builds are alternated `--rounds`
times. The corpus (first use only): the globs given, else the scale
corpus (the crate sources under ~/.cargo/registry/src and the toolchain's
HTML docs). Linux only (/proc). Each daemon gets a socket in a temp dir.

`--as-built` (first use only) stops the first daemon as soon as its first
search has answered, before the compaction that waits for calls to pause
can merge anything: the index keeps the segments its build left (10 on the
scale corpus), the state `bench/scale.py` times its query lists in. Without
it the index is compacted (2 segments on the scale corpus). A later use
starts no build, so no compaction either: the folder keeps its state.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from queries import BM25_QUERIES  # noqa: E402  (the same queries as scale.py)
from raw_shim import RawShim  # noqa: E402


def err(msg: str) -> None:
    print(f"query_loop.py: {msg}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Daemon:
    """One rlmd of `bin_dir` on `data`, with a socket of its own."""

    def __init__(self, bin_dir: str, data: str):
        self.bin_dir = bin_dir
        self.tmp = tempfile.mkdtemp(prefix="rlm-query-loop-")
        self.env = dict(os.environ, RLM_DATA_DIR=data, RLM_SOCKET=os.path.join(self.tmp, "sock"),
                        RLM_LOG_DIR=os.path.join(self.tmp, "log"))
        self.log = open(os.path.join(self.tmp, "rlmd.out"), "w")
        self.proc = subprocess.Popen([os.path.join(bin_dir, "rlmd")], env=self.env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while not os.path.exists(self.env["RLM_SOCKET"]):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rlmd of {bin_dir} did not start (see {self.tmp}/rlmd.out)")
            time.sleep(0.05)

    def cli(self, tool: str, args: dict) -> dict:
        out = subprocess.run([os.path.join(self.bin_dir, "rlm"), "call", tool, json.dumps(args)],
                             env=self.env, check=True, capture_output=True, timeout=900)
        return json.loads(out.stdout)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def prepare(data: str, bin_dir: str, globs: list[str], as_built: bool) -> str:
    """The session of the data folder, loaded and searched once on first use."""
    marker = os.path.join(data, "query_loop_session")
    if os.path.exists(marker):
        return open(marker).read().strip()
    os.makedirs(data, exist_ok=True)
    daemon = Daemon(bin_dir, data)
    try:
        sid = daemon.cli("rlm.session.create", {"config": {"max_tool_calls": 10_000_000}})["session_id"]
        t = time.perf_counter()
        r = daemon.cli("rlm.docs.load", {"session_id": sid,
                                         "sources": [{"type": "glob", "path": g} for g in globs]})
        err(f"loaded {r.get('loaded_count')} documents in {time.perf_counter() - t:.1f} s")
        daemon.cli("rlm.search.query", {"session_id": sid, "query": "retry backoff"})
        if not as_built:
            time.sleep(5)  # calls paused: the daemon compacts the new index's segments
    finally:
        daemon.stop()
    with open(marker, "w") as f:
        f.write(sid)
    return sid


def run(bin_dir: str, data: str, sid: str, runs: int, seconds: float) -> list[dict]:
    daemon = Daemon(bin_dir, data)
    shim = RawShim(daemon)
    try:
        warm_until = time.monotonic() + 2
        while time.monotonic() < warm_until:
            for q in BM25_QUERIES:
                shim.search(sid, q, "bm25")
        out = []
        for _ in range(runs):
            d0, s0 = cpu_seconds(daemon.proc.pid), cpu_seconds(shim.proc.pid)
            lat: list[float] = []
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                lat.extend(shim.search(sid, q, "bm25") for q in BM25_QUERIES)
            d1, s1 = cpu_seconds(daemon.proc.pid), cpu_seconds(shim.proc.pid)
            lat.sort()
            out.append({"calls": len(lat), "p50_ms": 1000 * lat[len(lat) // 2],
                        "p95_ms": 1000 * lat[int(len(lat) * 0.95)],
                        "daemon_cpu_ms": 1000 * (d1 - d0) / len(lat),
                        "shim_cpu_ms": 1000 * (s1 - s0) / len(lat)})
        return out
    finally:
        shim.close()
        daemon.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="data folder (kept: its session is reused)")
    ap.add_argument("--bin", action="append", required=True, help="a build's release folder")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--corpus", nargs="*", default=None, help="globs to load on first use")
    ap.add_argument("--as-built", action="store_true",
                    help="first use: keep the segments the build left (no compaction)")
    a = ap.parse_args()
    bins = [os.path.abspath(b) for b in a.bin]
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True,
                             text=True).stdout.strip()
    globs = a.corpus or [os.path.expanduser("~/.cargo/registry/src/**/*.rs"),
                         os.path.join(sysroot, "share/doc/**/*.html")]
    sid = prepare(os.path.abspath(a.data), bins[0], globs, a.as_built)
    p50s: dict[str, list[float]] = {b: [] for b in bins}
    for r in range(a.rounds):
        for b in bins:
            for x in run(b, os.path.abspath(a.data), sid, a.runs, a.seconds):
                p50s[b].append(x["p50_ms"])
                print(f"query_loop.py: round {r + 1} {b}: {x['calls']} calls, p50 {x['p50_ms']:.2f} ms, "
                      f"p95 {x['p95_ms']:.2f} ms, daemon CPU {x['daemon_cpu_ms']:.3f} ms/call, "
                      f"shim CPU {x['shim_cpu_ms']:.3f} ms/call", flush=True)
    for b in bins:
        print(f"query_loop.py: {b}: bm25 p50 median {statistics.median(p50s[b]):.2f} ms "
              f"({min(p50s[b]):.2f}-{max(p50s[b]):.2f})")


if __name__ == "__main__":
    main()
