#!/usr/bin/env python3
"""The scale benchmark (issue 10, part 6): a real rlmd driven through the
rlm-mcp shim with the official MCP Python SDK over a big corpus, printing the
figures of the issue's targets table: load time and MB/s, the first bm25
after the load (index build included), bm25 / regex / literal p50 and p95
(beside the same client's floor: `rlm.session.info`, answered from one row;
then the same calls through a second shim driven by hand with JSON-RPC lines,
which leaves out the SDK client's own time), a
second session's load of the same files and its first bm25, the first
session's bm25 queries again after the idle, peak and idle
RssAnon and RssFile of the daemon, RssAnon after each of K loads of ~100 MB
into new sessions (and the bm25 after each: its median and slowest), the
data folder's bytes at its peak, after deleting every session and `rlm gc`,
and after `rlm gc --grace 0`, and what the daemon's log says of its index
work (builds, the longest wait of a build's end, compactions) and of its
own time for the bm25 calls (without the client, the shim and the socket).

    python bench/scale.py --bin target/release [--corpus DIR ...] [--include REGEX]
                          [--generate MB] [--runs 3] [--idle 30] [--repeat-loads K]
                          [--full] [--config FILE] [--json]

Needs the MCP SDK (`pip install mcp`), e.g. the virtualenv the end-to-end
tests make, `target/py/mcp1/bin/python`, or
`python3 -m venv /tmp/mcp && /tmp/mcp/bin/pip install mcp`, then run the
script with that venv's python. Linux only (/proc).

`--bin` holds release builds of rlmd, rlm-mcp and rlm
(`cargo build --release -p rlmd -p rlm-client`). The corpus:

- default: the crate sources under ~/.cargo/registry/src (`*.rs`) and the
  toolchain's HTML docs under `$(rustc --print sysroot)/share/doc` (`*.html`),
  loaded as two glob sources;
- `--corpus DIR` (repeatable, or several after one flag): every file under
  each folder, or those whose whole path matches `--include`;
- `--generate MB`: a corpus of that many MB made by bench/gen_corpus.py from
  `--generate-from` (default: the `.py` files of this python's standard
  library, no site-packages or tests), kept in `--generate-dir` (default
  /tmp/rlm-scale-gen-<MB>) and reused by the next run.

`--config FILE` gives the daemon that `config.toml` (`RLM_CONFIG`); without
it the daemon runs on the defaults, whatever config the user has.

Each run starts rlmd on a fresh data folder and socket in a temporary
folder (never the user's), and stops it at the end. Timings are the client's
wall clock around each MCP call (SDK parsing and validation included). The
K repeated loads each load a ~100 MB slice of the corpus's files copied with
a header naming the round, so every round's texts are new to the store (read,
hashed, packed and indexed), each into a new session, with one bm25 after it
(its index build). Then the daemon is stopped and started afresh on the
same data folder for one round more: its `RssAnon` is what a store of that
size costs any daemon, so what the first daemon holds beyond it is its
history (freed heap it could not give back, caches it keeps). `rlm gc` keeps texts claimed in the last hour (its grace
period), so the script also runs `rlm gc --grace 0` after it, which reclaims
everything no session references at once.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

PROG = "scale.py"

try:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import get_default_environment, stdio_client
except ImportError:  # pragma: no cover
    sys.exit(f"{PROG}: the MCP SDK is missing: pip install mcp (see the docstring)")

MB = 1_000_000

FIRST_QUERY = "parse command line arguments"

from queries import BM25_QUERIES  # noqa: E402  (shared with query_loop.py)
from raw_shim import RawShim  # noqa: E402  (shared with query_loop.py)

REGEX_QUERIES = [
    r"fn \w+<T", r"impl<\w+> \w+ for", r"#\[derive\([^)]*Debug", r"pub struct \w+Error",
    r"unsafe impl \w+ for", r"async fn \w+\(", r"\.unwrap_or_else\(\|", r"Result<\(\), \w+>",
    r"macro_rules! \w+", r"0x[0-9a-f]{8}", r"https?://[\w./-]+", r"TODO|FIXME",
    r"#\[cfg\(test\)\]", r"<h[1-3][^>]*>", r"zirconium\d+relay",  # no match: a full scan
]

LITERAL_QUERIES = [
    "impl Iterator for", "Box<dyn Error>", "HashMap::new()", "#[inline]", "tokio::spawn",
    "Arc<Mutex<", "println!(", "std::io::Result", "where T: Clone", "pub(crate) fn",
    "serde::Deserialize", "PhantomData", "class=\"docblock\"", "&mut self",
    "quuxfrobnicate",  # no match: a full scan
]

SESSION_CONFIG = {"max_tool_calls": 100000, "max_chars_per_response": 200000}
CALL_TIMEOUT = timedelta(seconds=3600)


def err(msg: str) -> None:
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- statistics

def pct(vals: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    v = sorted(vals)
    if not v:
        return None
    return v[min(len(v), max(1, math.ceil(p / 100 * len(v)))) - 1]


def med(vals: list[Any]) -> Any:
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


# ---------------------------------------------------------------- the daemon's memory

def proc_status(pid: int) -> dict[str, float]:
    """RssAnon, RssFile and VmHWM of a process, in MB (2^20 bytes, as the kernel's kB / 1024)."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "VmHWM"):
                out[k] = round(int(v.split()[0]) / 1024, 1)
    return out


class Sampler(threading.Thread):
    """Samples a pid's RssAnon and RssFile every 50 ms; keeps the peak since
    the last `take()` and over the whole run."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.window = {"RssAnon": 0.0, "RssFile": 0.0}
        self.total = {"RssAnon": 0.0, "RssFile": 0.0}

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                s = proc_status(self.pid)
            except OSError:
                return
            with self.lock:
                for k in self.window:
                    self.window[k] = max(self.window[k], s[k])
                    self.total[k] = max(self.total[k], s[k])
            self.halt.wait(0.05)

    def take(self) -> dict[str, float]:
        """The peak since the last take, then starts a new window."""
        with self.lock:
            out = dict(self.window)
            try:
                s = proc_status(self.pid)
                for k in self.window:
                    out[k] = max(out[k], s[k])
                    self.total[k] = max(self.total[k], s[k])
                self.window = dict(s)
                self.window.pop("VmHWM", None)
            except OSError:
                self.window = {"RssAnon": 0.0, "RssFile": 0.0}
            return out


# ---------------------------------------------------------------- files

def folder_bytes(root: str) -> dict[str, int]:
    """Sum of file sizes and of allocated blocks (as du counts) under a
    folder, and the file sizes of each top-level entry (`parts`)."""
    size = blocks = files = 0
    parts: dict[str, int] = {}
    for dirpath, dirnames, names in os.walk(root):
        for n in names + dirnames:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            blocks += st.st_blocks * 512
            if n in names:
                size += st.st_size
                files += 1
                top = os.path.relpath(p, root).split(os.sep)[0]
                parts[top] = parts.get(top, 0) + st.st_size
    return {"bytes": size, "allocated": blocks, "files": files, "parts": parts}


def corpus_files(corpora: list[tuple[str, str | None]]) -> list[tuple[str, int]]:
    """The files a load of these (folder, include regex) sources reads, with sizes, sorted."""
    out = []
    for root, include in corpora:
        inc = re.compile(include) if include else None
        for dirpath, _, names in os.walk(root, followlinks=True):
            for n in names:
                p = os.path.join(dirpath, n)
                if inc and not inc.search(p):
                    continue
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                if os.path.isfile(p):
                    out.append((p, st.st_size))
    out.sort()
    return out


def sources_of(corpora: list[tuple[str, str | None]], glob_ext: dict[str, str]) -> list[dict]:
    """The rlm.docs.load sources: a glob per default folder, else a recursive directory."""
    out = []
    for root, include in corpora:
        if root in glob_ext:
            out.append({"type": "glob", "path": os.path.join(root, "**", "*" + glob_ext[root])})
        else:
            src: dict[str, Any] = {"type": "directory", "path": root, "recursive": True}
            if include:
                src["include_pattern"] = include
            out.append(src)
    return out


def stdlib_seed(dst: str) -> str:
    """A folder of links to the standard library's .py files (no site-packages,
    __pycache__ or test folders), the default seed of a generated corpus."""
    lib = sysconfig.get_paths()["stdlib"]
    skip = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}
    os.makedirs(dst, exist_ok=True)
    for dirpath, dirnames, names in os.walk(lib):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for n in names:
            if n.endswith(".py"):
                src = os.path.join(dirpath, n)
                link = os.path.join(dst, os.path.relpath(src, lib))
                os.makedirs(os.path.dirname(link), exist_ok=True)
                if not os.path.lexists(link):
                    os.symlink(src, link)
    return dst


def generate(mb: float, seed: str | None, out: str) -> str:
    """The generated corpus of about `mb` MB in `out` (made once, then reused)."""
    done = os.path.join(out, ".complete")
    if os.path.exists(done):
        return out
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    tmp_seed = None
    if seed is None:
        tmp_seed = tempfile.mkdtemp(prefix="rlm-scale-seed-")
        seed = stdlib_seed(tmp_seed)
    gen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_corpus.py")
    err(f"generating {mb:g} MB from {seed} into {out}")
    try:
        subprocess.run([sys.executable, gen, seed, out, str(int(mb * MB))], check=True,
                       stdout=subprocess.DEVNULL)
    finally:
        if tmp_seed:
            shutil.rmtree(tmp_seed, ignore_errors=True)
    Path(done).touch()
    return out


def write_round(files: list[tuple[str, int]], dst: str, round_no: int) -> int:
    """Copies the files into dst (emptied first), each with a header line
    naming the round, so their texts are new to the store. Returns bytes."""
    if os.path.exists(dst):
        shutil.rmtree(dst)
    os.makedirs(dst)
    total = 0
    for i, (p, _) in enumerate(files):
        try:
            body = open(p, "rb").read()
        except OSError:
            continue
        data = f"// scale round {round_no} file {i}\n".encode() + body
        with open(os.path.join(dst, f"f{i:06d}{os.path.splitext(p)[1]}"), "wb") as f:
            f.write(data)
        total += len(data)
    return total


# ---------------------------------------------------------------- the daemon

class Daemon:
    """rlmd on a data folder and socket of a temporary folder."""

    def __init__(self, bin_dir: str, tmp: str, config: str | None = None):
        self.bin_dir, self.tmp = bin_dir, tmp
        self.sock = os.path.join(tmp, "run", "rlmd.sock")
        self.data = os.path.join(tmp, "data")
        self.env = dict(os.environ, RLM_SOCKET=self.sock, RLM_DATA_DIR=self.data,
                        XDG_CONFIG_HOME=os.path.join(tmp, "config"),
                        RLM_LOG_DIR=os.path.join(tmp, "log"))
        self.env.pop("RLM_CONFIG", None)
        if config:
            self.env["RLM_CONFIG"] = os.path.abspath(config)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        errf = open(os.path.join(self.tmp, "rlmd.err"), "a")
        self.proc = subprocess.Popen(
            [os.path.join(self.bin_dir, "rlmd"), "--socket", self.sock, "--data-dir", self.data],
            env=self.env, stdout=subprocess.DEVNULL, stderr=errf)
        errf.close()
        deadline = time.time() + 60
        while not os.path.exists(self.sock):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"rlmd did not start; see {self.tmp}/rlmd.err")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args: str) -> Any:
        """Runs `rlm ARGS --json` against this daemon and parses its output."""
        r = subprocess.run([os.path.join(self.bin_dir, "rlm"), *args, "--json"], env=self.env,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"rlm {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return json.loads(r.stdout)


# ---------------------------------------------------------------- MCP

class Shim:
    """One rlm-mcp process driven by the MCP SDK."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.stack = AsyncExitStack()
        self.session: ClientSession | None = None

    async def __aenter__(self) -> "Shim":
        env = get_default_environment()
        env.update({k: v for k, v in self.daemon.env.items()
                    if k.startswith(("RLM_", "XDG_"))})
        params = StdioServerParameters(command=os.path.join(self.daemon.bin_dir, "rlm-mcp"),
                                       args=[], env=env)
        errlog = open(os.path.join(self.daemon.tmp, "rlm-mcp.err"), "a")
        self.stack.callback(errlog.close)
        read, write = await self.stack.enter_async_context(stdio_client(params, errlog=errlog))
        self.session = await self.stack.enter_async_context(
            ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT))
        await self.session.initialize()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stack.aclose()

    async def call(self, name: str, args: dict) -> tuple[dict, float]:
        """One tool call: its result and its wall time in seconds; a tool error raises."""
        t = time.perf_counter()
        res = await self.session.call_tool(name, args, read_timeout_seconds=CALL_TIMEOUT)
        dt = time.perf_counter() - t
        text = next((c.text for c in res.content or [] if getattr(c, "type", "") == "text"), None)
        data = json.loads(text) if text else (res.structuredContent or {})
        if res.isError:
            raise RuntimeError(f"{name} failed: {text}")
        return data, dt

    async def new_session(self, name: str) -> str:
        r, _ = await self.call("rlm.session.create", {"name": name, "config": SESSION_CONFIG})
        return r["session_id"]

    async def load(self, sid: str, sources: list[dict]) -> tuple[dict, float]:
        return await self.call("rlm.docs.load", {"session_id": sid, "sources": sources})

    async def search(self, sid: str, query: str, method: str) -> float:
        _, dt = await self.call("rlm.search.query",
                                {"session_id": sid, "query": query, "method": method, "limit": 10})
        return dt


def latency_summary(lat: dict[str, list[float]]) -> dict:
    return {m: {"n": len(v), "p50": round(pct(v, 50) * 1000, 2),
                "p95": round(pct(v, 95) * 1000, 2), "max": round(max(v) * 1000, 2)}
            for m, v in lat.items()}


def load_summary(r: dict, dt: float, nbytes: int) -> dict:
    return {"s": round(dt, 3), "mb_per_s": round(nbytes / MB / dt, 1) if dt else None,
            "loaded": r.get("loaded_count"), "errors": r.get("error_count"),
            "chars": r.get("total_chars"), "first_errors": (r.get("errors") or [])[:3]}


# ---------------------------------------------------------------- one run

async def one_run(a: argparse.Namespace, run_no: int, sources: list[dict],
                  files: list[tuple[str, int]], nbytes: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="rlm-scale-")
    daemon = Daemon(a.bin, tmp, a.config)
    daemon.start()
    sampler = Sampler(daemon.proc.pid)
    sampler.start()
    R: dict[str, Any] = {"run": run_no, "tmp": tmp, "start": proc_status(daemon.proc.pid),
                         "loadavg_start": os.getloadavg()}
    data_peak = {"bytes": 0, "allocated": 0}

    def data_now(step: str) -> dict:
        b = folder_bytes(daemon.data)
        for k in data_peak:
            data_peak[k] = max(data_peak[k], b[k])
        R.setdefault("data_folder", {})[step] = b
        return b

    try:
        # Session 1: load, its first bm25 (the index build), the query lists.
        sampler.take()
        async with Shim(daemon) as shim:
            sid = sid_1 = await shim.new_session("scale-1")
            r, dt = await shim.load(sid, sources)
            R["load"] = load_summary(r, dt, nbytes)
            R["after_load"] = proc_status(daemon.proc.pid)
            err(f"run {run_no}: load {dt:.2f} s, {r.get('loaded_count')} docs")
            R["first_bm25_s"] = round(await shim.search(sid, FIRST_QUERY, "bm25"), 3)
            R["peak_load_build"] = sampler.take()
            R["after_first_bm25"] = proc_status(daemon.proc.pid)
            err(f"run {run_no}: first bm25 {R['first_bm25_s']:.2f} s")
            lat: dict[str, list[float]] = {}
            windows = R.setdefault("call_windows", {})
            for method, qs in (("bm25", BM25_QUERIES), ("regex", REGEX_QUERIES),
                               ("literal", LITERAL_QUERIES)):
                t0 = time.time()
                lat[method] = [await shim.search(sid, q, method) for q in qs]
                windows[method] = (t0, time.time())
            # The client's and the shim's own share of every call: a call
            # the daemon answers from one row (`rlm.session.info`).
            lat["info"] = [(await shim.call("rlm.session.info", {"session_id": sid}))[1]
                           for _ in range(len(BM25_QUERIES))]
            # The same calls through a shim driven without the SDK.
            raw = RawShim(daemon)
            try:
                for method, qs in (("bm25", BM25_QUERIES), ("regex", REGEX_QUERIES),
                                   ("literal", LITERAL_QUERIES)):
                    t0 = time.time()
                    lat[f"raw_{method}"] = [raw.search(sid, q, method) for q in qs]
                    windows[f"raw_{method}"] = (t0, time.time())
                lat["raw_info"] = [raw.call("rlm.session.info", {"session_id": sid})
                                   for _ in range(len(BM25_QUERIES))]
            finally:
                raw.close()
            R["latency_ms"] = latency_summary(lat)
            R["peak_queries"] = sampler.take()
        data_now("after_session_1")

        # Session 2, from a new shim: the same files again, and its first bm25.
        async with Shim(daemon) as shim:
            sid = await shim.new_session("scale-2")
            r, dt = await shim.load(sid, sources)
            R["load_2"] = load_summary(r, dt, nbytes)
            R["first_bm25_2_s"] = round(await shim.search(sid, FIRST_QUERY, "bm25"), 3)
            R["peak_session_2"] = sampler.take()
        err(f"run {run_no}: second load {dt:.2f} s, first bm25 {R['first_bm25_2_s']:.2f} s")
        data_now("after_session_2")
        R["after_work"] = proc_status(daemon.proc.pid)

        # Idle.
        time.sleep(a.idle)
        R["idle"] = proc_status(daemon.proc.pid)
        R["idle_s"] = a.idle

        # The first session's bm25 queries again after the idle: the latency
        # of a session that pauses between calls, as a model does (with an
        # idle of 20 s or more, the daemon has dropped its caches, and the
        # first of these queries takes the session's view again).
        async with Shim(daemon) as shim:
            lat = {"bm25": [await shim.search(sid_1, q, "bm25") for q in BM25_QUERIES]}
        raw = RawShim(daemon)
        try:
            lat["raw_bm25"] = [raw.search(sid_1, q, "bm25") for q in BM25_QUERIES]
        finally:
            raw.close()
        R["latency_ms_after_idle"] = latency_summary(lat)

        # K loads of ~100 MB, each into a new session, each with a bm25 after it.
        if a.repeat_loads:
            slice_files, acc = [], 0
            for p, size in files:
                if acc >= a.repeat_mb * MB:
                    break
                slice_files.append((p, size))
                acc += size
            rounds = []
            async with Shim(daemon) as shim:
                for k in range(a.repeat_loads):
                    folder = os.path.join(tmp, "round")
                    rb = write_round(slice_files, folder, k)
                    sid = await shim.new_session(f"scale-round-{k}")
                    r, dt = await shim.load(sid, [{"type": "directory", "path": folder,
                                                   "recursive": True}])
                    b = await shim.search(sid, FIRST_QUERY, "bm25")
                    s = proc_status(daemon.proc.pid)
                    rounds.append({"mb": round(rb / MB, 1), "load_s": round(dt, 2),
                                   "first_bm25_s": round(b, 2), "loaded": r.get("loaded_count"),
                                   "RssAnon": s["RssAnon"], "RssFile": s["RssFile"]})
                    err(f"run {run_no}: round {k}: load {dt:.2f} s, bm25 {b:.2f} s, "
                        f"RssAnon {s['RssAnon']} MB")
                shutil.rmtree(os.path.join(tmp, "round"), ignore_errors=True)
            R["repeat_loads"] = rounds
            R["peak_repeat"] = sampler.take()
            time.sleep(a.idle)
            R["repeat_idle"] = proc_status(daemon.proc.pid)
            data_now("after_repeat_loads")

            # The same store under a daemon started afresh, and one round more:
            # what a store of that size costs any daemon, apart from what the
            # first daemon's history left in its heap.
            sampler.halt.set()
            sampler.join()
            total = dict(sampler.total)
            daemon.stop()
            daemon.start()
            sampler = Sampler(daemon.proc.pid)
            sampler.total = total
            sampler.start()
            async with Shim(daemon) as shim:
                folder = os.path.join(tmp, "round")
                write_round(slice_files, folder, a.repeat_loads)
                sid = await shim.new_session(f"scale-round-{a.repeat_loads}")
                await shim.load(sid, [{"type": "directory", "path": folder, "recursive": True}])
                await shim.search(sid, FIRST_QUERY, "bm25")
                R["repeat_fresh"] = proc_status(daemon.proc.pid)
                shutil.rmtree(folder, ignore_errors=True)
            err(f"run {run_no}: a daemon started afresh on that store, one round: "
                f"RssAnon {R['repeat_fresh']['RssAnon']} MB")
            time.sleep(a.idle)
            R["repeat_fresh_idle"] = proc_status(daemon.proc.pid)

        R["peak_total"] = dict(sampler.total)
        R["loadavg_end"] = os.getloadavg()
        R["data_folder_peak"] = dict(data_peak)

        # Delete every session, then gc.
        sessions = daemon.cli("sessions")
        ids = [s["session_id"] for s in sessions]
        if ids:
            daemon.cli("sessions", "rm", *ids)
        data_now("after_rm")
        R["gc"] = daemon.cli("gc")
        R["after_rm_gc_memory"] = proc_status(daemon.proc.pid)
        data_now("after_rm_gc")
        # gc without its grace (an hour, kept for loads that may be claiming
        # texts): what is reclaimed once nothing is running.
        R["gc_now"] = daemon.cli("gc", "--grace", "0")
        data_now("after_rm_gc_now")
    finally:
        sampler.halt.set()
        daemon.stop()
        R["index_log"] = index_log(os.path.join(tmp, "log"))
        R["daemon_call_ms"] = call_log(os.path.join(tmp, "log"), R.get("call_windows", {}))
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return R


def index_log(log_dir: str) -> dict[str, Any]:
    """What the daemon's log says of its index work: the builds, the longest
    wait of a build's end (`finish_ms`: it merges nothing, so this should be
    a few ms), and the compactions after them (merge steps, the segments left
    by the last one)."""
    out: dict[str, Any] = {"builds": 0, "finish_ms_max": None, "compactions": 0,
                           "compaction_steps": 0, "segments_left": None}
    try:
        names = sorted(n for n in os.listdir(log_dir) if n.startswith("rlmd."))
    except OSError:
        return out
    for name in names:
        with open(os.path.join(log_dir, name), errors="replace") as f:
            for line in f:
                if "index build finished" not in line and "search index compacted" not in line:
                    continue
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("message") == "index build finished":
                    out["builds"] += 1
                    ms = e.get("finish_ms")
                    if ms is not None:
                        out["finish_ms_max"] = max(out["finish_ms_max"] or 0, ms)
                elif e.get("message") == "search index compacted":
                    out["compactions"] += 1
                    out["compaction_steps"] += e.get("steps", 0)
                    out["segments_left"] = e.get("segments_left")
    return out


def call_log(log_dir: str, windows: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """The daemon's own time of the search calls of each timed list (its log's
    `call` lines, `duration_ms`, of the calls that ended inside the list's
    wall-clock window): p50 and p95 in ms, without the client, the shim and
    the socket."""
    ends: list[tuple[float, float]] = []
    try:
        names = sorted(n for n in os.listdir(log_dir) if n.startswith("rlmd."))
    except OSError:
        return {}
    for name in names:
        with open(os.path.join(log_dir, name), errors="replace") as f:
            for line in f:
                if '"rlm.search.query"' not in line:
                    continue
                try:
                    e = json.loads(line)
                    at = datetime.datetime.fromisoformat(e["timestamp"]).timestamp()
                    ends.append((at, float(e["duration_ms"])))
                except (ValueError, KeyError, TypeError):
                    continue
    out: dict[str, Any] = {}
    for key, (t0, t1) in windows.items():
        ms = [d for at, d in ends if t0 <= at <= t1]
        if ms:
            out[key] = {"n": len(ms), "p50": round(pct(ms, 50), 3), "p95": round(pct(ms, 95), 3)}
    return out


# ---------------------------------------------------------------- report

def summarize(runs: list[dict], meta: dict) -> dict:
    def m(f):
        try:
            return med([f(r) for r in runs])
        except (KeyError, TypeError):
            return None

    s: dict[str, Any] = {
        "load_s": m(lambda r: r["load"]["s"]),
        "load_mb_per_s": m(lambda r: r["load"]["mb_per_s"]),
        "first_bm25_s": m(lambda r: r["first_bm25_s"]),
        "load_2_s": m(lambda r: r["load_2"]["s"]),
        "first_bm25_2_s": m(lambda r: r["first_bm25_2_s"]),
        "peak_load_build_anon": m(lambda r: r["peak_load_build"]["RssAnon"]),
        "peak_load_build_file": m(lambda r: r["peak_load_build"]["RssFile"]),
        "peak_total_anon": m(lambda r: r["peak_total"]["RssAnon"]),
        "peak_total_file": m(lambda r: r["peak_total"]["RssFile"]),
        "idle_anon": m(lambda r: r["idle"]["RssAnon"]),
        "idle_file": m(lambda r: r["idle"]["RssFile"]),
        "rm_gc_anon": m(lambda r: r["after_rm_gc_memory"]["RssAnon"]),
        "data_peak_bytes": m(lambda r: r["data_folder_peak"]["bytes"]),
        "data_peak_alloc": m(lambda r: r["data_folder_peak"]["allocated"]),
        "data_gc_bytes": m(lambda r: r["data_folder"]["after_rm_gc"]["bytes"]),
        "data_gc_alloc": m(lambda r: r["data_folder"]["after_rm_gc"]["allocated"]),
        "data_gc0_bytes": m(lambda r: r["data_folder"]["after_rm_gc_now"]["bytes"]),
        "data_gc0_alloc": m(lambda r: r["data_folder"]["after_rm_gc_now"]["allocated"]),
    }
    for method in ("bm25", "regex", "literal", "info", "raw_bm25", "raw_regex", "raw_literal",
                   "raw_info"):
        for p in ("p50", "p95"):
            s[f"{method}_{p}_ms"] = m(lambda r: r["latency_ms"][method][p])
    for method in ("bm25", "raw_bm25"):
        for p in ("p50", "p95"):
            s[f"idle_{method}_{p}_ms"] = m(lambda r: r["latency_ms_after_idle"][method][p])
    for method in ("bm25", "raw_bm25"):
        s[f"daemon_{method}_p50_ms"] = m(lambda r: r["daemon_call_ms"][method]["p50"])
    rep = [r.get("repeat_loads") or [] for r in runs]
    if all(rep):
        s["repeat_first_anon"] = med([x[0]["RssAnon"] for x in rep])
        s["repeat_last_anon"] = med([x[-1]["RssAnon"] for x in rep])
        s["repeat_max_anon"] = med([max(y["RssAnon"] for y in x) for x in rep])
        s["repeat_idle_anon"] = med([r["repeat_idle"]["RssAnon"] for r in runs])
        s["repeat_fresh_anon"] = med([r["repeat_fresh"]["RssAnon"] for r in runs])
        s["repeat_fresh_idle_anon"] = med([r["repeat_fresh_idle"]["RssAnon"] for r in runs])
        s["repeat_k"] = len(rep[0])
        s["repeat_mb"] = rep[0][0]["mb"]
        s["repeat_bm25_median_s"] = med([statistics.median(y["first_bm25_s"] for y in x)
                                         for x in rep])
        s["repeat_bm25_max_s"] = med([max(y["first_bm25_s"] for y in x) for x in rep])
    s["builds"] = m(lambda r: r["index_log"]["builds"])
    s["finish_ms_max"] = m(lambda r: r["index_log"]["finish_ms_max"])
    s["compactions"] = m(lambda r: r["index_log"]["compactions"])
    s["compaction_steps"] = m(lambda r: r["index_log"]["compaction_steps"])
    s["segments_left"] = m(lambda r: r["index_log"]["segments_left"])
    return s


def fmt(v: Any, unit: str = "", nd: int = 2) -> str:
    if v is None:
        return "n/a"
    return f"{v:.{nd}f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def table(s: dict, meta: dict) -> str:
    def ms(v):
        return "n/a" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")

    def pct_of(x, peak):
        return "" if not x or not peak else f" ({100 * x / peak:.1f}% of the peak)"

    mbf = lambda b: "n/a" if b is None else f"{b / MB:.0f} MB"  # noqa: E731
    rows = [
        ("figure", "measured", "target"),
        ("---", "---", "---"),
        (f"load ({meta['files']} files, {meta['corpus_mb']:.0f} MB)",
         f"{ms(s['load_s'])}, {fmt(s['load_mb_per_s'], ' MB/s', 0)}", "<= 5 s"),
        ("first bm25 after the load (build included)", ms(s["first_bm25_s"]), "<= 6 s"),
        ("second session: load of the same files", ms(s["load_2_s"]), "<= 1 s"),
        ("second session: first bm25", ms(s["first_bm25_2_s"]), "<= 50 ms"),
        ("bm25 p50 / p95 (MCP SDK client)",
         f"{fmt(s['bm25_p50_ms'])} / {fmt(s['bm25_p95_ms'])} ms", "p50 <= 3 ms"),
        ("the same client's floor: `rlm.session.info` p50 / p95",
         f"{fmt(s['info_p50_ms'])} / {fmt(s['info_p95_ms'])} ms", ""),
        ("bm25 p50 / p95 through the shim without the SDK (JSON-RPC lines)",
         f"{fmt(s['raw_bm25_p50_ms'])} / {fmt(s['raw_bm25_p95_ms'])} ms", "p50 <= 3 ms"),
        ("`rlm.session.info` p50 through the shim without the SDK",
         f"{fmt(s['raw_info_p50_ms'])} ms", ""),
        ("the daemon's own time of those bm25 calls (its log): p50 with the SDK's list "
         "(each query new); with the list asked again without the SDK",
         f"{fmt(s['daemon_bm25_p50_ms'])} ms; {fmt(s['daemon_raw_bm25_p50_ms'])} ms", ""),
        (f"the same bm25 queries after the {meta['idle']:g} s idle: p50 / p95 with the SDK; "
         "without it",
         f"{fmt(s['idle_bm25_p50_ms'])} / {fmt(s['idle_bm25_p95_ms'])} ms; "
         f"{fmt(s['idle_raw_bm25_p50_ms'])} / {fmt(s['idle_raw_bm25_p95_ms'])} ms", "p50 <= 3 ms"),
        ("regex p50 / p95", f"{fmt(s['regex_p50_ms'], nd=1)} / {fmt(s['regex_p95_ms'], nd=1)} ms", ""),
        ("literal p50 / p95",
         f"{fmt(s['literal_p50_ms'], nd=1)} / {fmt(s['literal_p95_ms'], nd=1)} ms", ""),
        ("peak `RssAnon` during load + build (`RssFile`)",
         f"{fmt(s['peak_load_build_anon'], ' MB', 0)} ({fmt(s['peak_load_build_file'], ' MB', 0)})",
         "<= 200 MB"),
        (f"`RssAnon` {meta['idle']:g} s after the work (`RssFile`)",
         f"{fmt(s['idle_anon'], ' MB', 0)} ({fmt(s['idle_file'], ' MB', 0)})", "<= 64 MB"),
    ]
    if "repeat_k" in s:
        rows.append((f"`RssAnon` after {s['repeat_k']} loads of {s['repeat_mb']:.0f} MB: "
                     "after the first / the last (max)",
                     f"{fmt(s['repeat_first_anon'], nd=0)} / {fmt(s['repeat_last_anon'], nd=0)} "
                     f"({fmt(s['repeat_max_anon'], nd=0)}) MB", "flat (within 10%)"))
        rows.append((f"the same, {meta['idle']:g} s later (the daemon dropped its caches at 20 s)",
                     f"{fmt(s['repeat_idle_anon'], ' MB', 0)}", ""))
        rows.append(("a daemon started afresh on that store: `RssAnon` after one load more; "
                     f"{meta['idle']:g} s later (what the store's size costs, not the history)",
                     f"{fmt(s['repeat_fresh_anon'], ' MB', 0)}; "
                     f"{fmt(s['repeat_fresh_idle_anon'], ' MB', 0)}", ""))
        rows.append(("the bm25 after each of those loads (build included): median / slowest",
                     f"{ms(s['repeat_bm25_median_s'])} / {ms(s['repeat_bm25_max_s'])}", ""))
    rows += [
        ("index builds (daemon log): how many; the longest wait of a build's end (`finish_ms`)",
         f"{fmt(s['builds'], nd=0)}; {fmt(s['finish_ms_max'], ' ms', 0)}", ""),
        ("compactions after them: how many, merge steps, segments left by the last",
         f"{fmt(s['compactions'], nd=0)}, {fmt(s['compaction_steps'], nd=0)}, "
         f"{fmt(s['segments_left'], nd=0)}", ""),
        ("`RssAnon` after deleting every session + `rlm gc`", fmt(s["rm_gc_anon"], " MB", 0), ""),
        ("peak `RssAnon` / `RssFile` over the whole run",
         f"{fmt(s['peak_total_anon'], nd=0)} / {fmt(s['peak_total_file'], nd=0)} MB", ""),
        ("data folder at its peak (allocated)",
         f"{mbf(s['data_peak_bytes'])} ({mbf(s['data_peak_alloc'])})", ""),
        ("data folder after deleting every session + `rlm gc`",
         f"{mbf(s['data_gc_bytes'])} ({mbf(s['data_gc_alloc'])})"
         + pct_of(s["data_gc_bytes"], s["data_peak_bytes"]), "<= 5% of its peak"),
        ("the same, then `rlm gc --grace 0`",
         f"{mbf(s['data_gc0_bytes'])} ({mbf(s['data_gc0_alloc'])})"
         + pct_of(s["data_gc0_bytes"], s["data_peak_bytes"]), "<= 5% of its peak"),
    ]
    return "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)


def main() -> None:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="folder with release rlmd, rlm-mcp and rlm")
    ap.add_argument("--corpus", action="extend", nargs="+", default=[], metavar="DIR")
    ap.add_argument("--include", help="regex on the whole path, for --corpus folders")
    ap.add_argument("--generate", type=float, metavar="MB", help="a generated corpus of MB")
    ap.add_argument("--generate-from", metavar="DIR", help="seed of the generated corpus")
    ap.add_argument("--generate-dir", metavar="DIR")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--config", metavar="FILE", help="config.toml for the daemon (default: none)")
    ap.add_argument("--full", action="store_true", help="20 repeated loads instead of 5")
    ap.add_argument("--repeat-loads", type=int, metavar="K")
    ap.add_argument("--repeat-mb", type=float, default=100)
    ap.add_argument("--keep", action="store_true", help="keep each run's temporary folder")
    ap.add_argument("--json", action="store_true", help="print the raw figures as JSON too")
    a = ap.parse_args()
    if a.repeat_loads is None:
        a.repeat_loads = 20 if a.full else 5
    for exe in ("rlmd", "rlm-mcp", "rlm"):
        if not os.access(os.path.join(a.bin, exe), os.X_OK):
            sys.exit(f"{PROG}: no {exe} in {a.bin} (cargo build --release -p rlmd -p rlm-client)")

    glob_ext: dict[str, str] = {}
    if a.generate:
        out = a.generate_dir or f"/tmp/rlm-scale-gen-{a.generate:g}"
        corpora: list[tuple[str, str | None]] = [(generate(a.generate, a.generate_from, out), None)]
        time.sleep(3)  # files younger than 2 s are read again by a second load (TOOLS.md)
    elif a.corpus:
        corpora = [(os.path.abspath(c), a.include) for c in a.corpus]
    else:
        try:
            sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True,
                                     text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"{PROG}: rustc --print sysroot failed ({e}); give --corpus or --generate")
        crates = os.path.expanduser("~/.cargo/registry/src")
        docs = os.path.join(sysroot, "share", "doc")
        corpora = [(crates, r"\.rs$"), (docs, r"\.html$")]
        glob_ext = {crates: ".rs", docs: ".html"}
    for root, _ in corpora:
        if not os.path.isdir(root):
            sys.exit(f"{PROG}: {root} is not a folder")
    files = corpus_files(corpora)
    nbytes = sum(s for _, s in files)
    if not files:
        sys.exit(f"{PROG}: no file in {', '.join(r for r, _ in corpora)}")
    sources = sources_of(corpora, glob_ext)
    meta = {"corpora": corpora, "sources": sources, "files": len(files), "corpus_bytes": nbytes,
            "corpus_mb": nbytes / MB, "runs": a.runs, "idle": a.idle,
            "repeat_loads": a.repeat_loads, "repeat_mb": a.repeat_mb,
            "cpus": os.cpu_count(), "bin": os.path.abspath(a.bin)}
    err(f"{len(files)} files, {nbytes / MB:.0f} MB; {a.runs} run(s)")
    runs = []
    for i in range(a.runs):
        try:
            runs.append(asyncio.run(one_run(a, i + 1, sources, files, nbytes)))
        except Exception as e:  # noqa: BLE001
            sys.exit(f"{PROG}: run {i + 1} failed: {e}")
    s = summarize(runs, meta)
    print(f"Scale benchmark: {meta['files']} files, {meta['corpus_mb']:.0f} MB, "
          f"median of {len(runs)} run(s), 2^20-byte MB for memory, 10^6-byte MB for data; "
          "load average (1 min) at each run's start: "
          + ", ".join(f"{r['loadavg_start'][0]:.1f}" for r in runs) + "\n")
    print(table(s, meta))
    if a.json:
        print()
        print(json.dumps({"meta": meta, "summary": s, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
