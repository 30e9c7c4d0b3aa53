#!/usr/bin/env python3
"""Builds against each other on `bench/scale.py`'s first session: for each
build in turn, a daemon on a fresh data folder, one shim driven by the MCP
Python SDK: the load, the first bm25 (the index build), the 30 bm25 queries
of `bench/queries.py` each asked once (as scale.py's SDK list asks them),
then, with `--idle S`, a pause of S seconds (the daemon drops its caches
and mappings at 20 s) and the same queries again. Per build: the first
bm25, the SDK's p50 of each list, and the daemon's own p50 of the same
calls (the `duration_ms` of its log's `call` lines, scale.py's `call_log`).

    python bench/first_session.py --bin OLD --bin NEW [--rounds 3] [--idle 26]
                                  [--corpus DIR ... [--include REGEX]]

`--bin` holds release builds of rlmd, rlm-mcp and rlm (`cargo build
--release -p rlmd -p rlm-client`); the builds are alternated `--rounds`
times. The corpus is scale.py's (default: the crate sources and the
toolchain's HTML docs). Needs the MCP SDK, e.g. `target/py/mcp1/bin/python`.
Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scale  # noqa: E402  (its Daemon, Shim, corpus and log readers)
from queries import BM25_QUERIES  # noqa: E402

PROG = "first_session.py"


def err(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


async def one(bin_dir: str, sources: list[dict], idle: float) -> dict:
    tmp = tempfile.mkdtemp(prefix="rlm-first-session-")
    daemon = scale.Daemon(bin_dir, tmp)
    daemon.start()
    out: dict = {}
    windows: dict[str, tuple[float, float]] = {}
    try:
        async with scale.Shim(daemon) as shim:
            sid = await shim.new_session("first-session")
            await shim.load(sid, sources)
            out["first_bm25_s"] = await shim.search(sid, scale.FIRST_QUERY, "bm25")
            t0 = time.time()
            out["sdk"] = [await shim.search(sid, q, "bm25") for q in BM25_QUERIES]
            windows["sdk"] = (t0, time.time())
            if idle:
                time.sleep(idle)
                # The session's view is made again by this call, not timed.
                await shim.search(sid, "retry backoff", "bm25")
                t0 = time.time()
                out["idle_sdk"] = [await shim.search(sid, q, "bm25") for q in BM25_QUERIES]
                windows["idle_sdk"] = (t0, time.time())
    finally:
        daemon.stop()
        out["daemon"] = scale.call_log(os.path.join(tmp, "log"), windows)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", action="append", required=True, help="a build's release folder")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=float, default=0, help="seconds of pause, then the list again")
    ap.add_argument("--corpus", action="extend", nargs="+", default=[], metavar="DIR")
    ap.add_argument("--include", help="regex on the whole path, for --corpus folders")
    a = ap.parse_args()
    bins = [os.path.abspath(b) for b in a.bin]
    for b in bins:
        for exe in ("rlmd", "rlm-mcp", "rlm"):
            if not os.access(os.path.join(b, exe), os.X_OK):
                sys.exit(f"{PROG}: no {exe} in {b} (cargo build --release -p rlmd -p rlm-client)")
    glob_ext: dict[str, str] = {}
    if a.corpus:
        corpora = [(os.path.abspath(c), a.include) for c in a.corpus]
    else:
        sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        crates = os.path.expanduser("~/.cargo/registry/src")
        docs = os.path.join(sysroot, "share", "doc")
        corpora = [(crates, r"\.rs$"), (docs, r"\.html$")]
        glob_ext = {crates: ".rs", docs: ".html"}
    sources = scale.sources_of(corpora, glob_ext)
    got: dict[str, list[dict]] = {b: [] for b in bins}
    for r in range(a.rounds):
        for b in bins:
            x = asyncio.run(one(b, sources, a.idle))
            got[b].append(x)
            line = (f"round {r + 1} {b}: first bm25 {x['first_bm25_s']:.2f} s, "
                    f"SDK p50 {1000 * statistics.median(x['sdk']):.2f} ms, daemon p50 "
                    f"{x['daemon'].get('sdk', {}).get('p50')} ms")
            if a.idle:
                line += (f"; after the idle: SDK p50 {1000 * statistics.median(x['idle_sdk']):.2f}"
                         f" ms, daemon p50 {x['daemon'].get('idle_sdk', {}).get('p50')} ms")
            print(f"{PROG}: {line}", flush=True)
    for b in bins:
        xs = got[b]
        pooled = lambda k: 1000 * statistics.median(v for x in xs for v in x[k])  # noqa: E731
        daemon = [x["daemon"]["sdk"]["p50"] for x in xs if "sdk" in x["daemon"]]
        line = (f"{b}: first bm25 median {statistics.median(x['first_bm25_s'] for x in xs):.2f} s, "
                f"SDK p50 (all rounds' calls) {pooled('sdk'):.2f} ms, daemon p50 by round "
                f"{daemon}")
        if a.idle:
            line += f"; after the idle: SDK p50 {pooled('idle_sdk'):.2f} ms, daemon p50 by round " + \
                str([x["daemon"]["idle_sdk"]["p50"] for x in xs if "idle_sdk" in x["daemon"]])
        print(f"{PROG}: {line}")


if __name__ == "__main__":
    main()
