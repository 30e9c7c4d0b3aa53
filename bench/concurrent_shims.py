#!/usr/bin/env python3
"""Throughput of N MCP clients at once, each its own process with its own
rlm-mcp shim, all served by one rlmd. A first client creates a session and
loads the corpus; then N worker processes each run CALLS bm25 searches and
CALLS session.info calls on it. Prints calls/s over the span from the first
worker's first call to the last worker's last call, and latency percentiles.

Usage: concurrent_shims.py --corpus DIR [--clients 16] [--calls 50] [--raw] -- rlm-mcp [args...]
(environment: pass RLM_SOCKET / RLM_DATA_DIR / RLM_LOG_DIR to isolate a run)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import get_default_environment, stdio_client

QUERIES = ["parse http header", "thread pool executor shutdown", "json decode error",
           "socket connection timeout", "read configuration file sections",
           "compress data with zlib", "temporary directory cleanup", "base64 encode bytes"]


def pct(v: list[float], p: float) -> float:
    v = sorted(v)
    return v[max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))] if v else float("nan")


def raw_worker(cmd: list[str], sid: str, calls: int, i: int, go_file: str) -> None:
    """The same calls as plain JSON-RPC lines on the shim's stdio: no SDK,
    no schema validation, so the figure is the shim's and the daemon's."""
    import subprocess
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    n = 0

    def rpc(method: str, params: dict | None = None, notify: bool = False) -> dict | None:
        nonlocal n
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        if not notify:
            n += 1
            msg["id"] = n
        proc.stdin.write((json.dumps(msg) + "\n").encode())
        proc.stdin.flush()
        if notify:
            return None
        while True:
            line = json.loads(proc.stdout.readline())
            if line.get("id") == n:
                return line

    rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}})
    rpc("notifications/initialized", notify=True)
    while not os.path.exists(go_file):
        time.sleep(0.005)
    lat = {"bm25": [], "info": []}
    start = time.time()
    for k in range(calls):
        t = time.perf_counter()
        r = rpc("tools/call", {"name": "rlm.search.query", "arguments": {"session_id": sid, "query": QUERIES[(i + k) % len(QUERIES)]}})
        lat["bm25"].append(time.perf_counter() - t)
        if r["result"].get("isError"):
            raise SystemExit(f"client {i}: search failed: {r}")
        t = time.perf_counter()
        r = rpc("tools/call", {"name": "rlm.session.info", "arguments": {"session_id": sid}})
        lat["info"].append(time.perf_counter() - t)
        if r["result"].get("isError"):
            raise SystemExit(f"client {i}: info failed: {r}")
    print(json.dumps({"start": start, "end": time.time(), "lat": lat}))
    proc.stdin.close()
    proc.wait()


async def worker(cmd: list[str], sid: str, calls: int, i: int, go_file: str) -> None:
    env = get_default_environment()
    env.update({k: v for k, v in os.environ.items() if k.startswith("RLM_")})
    params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await s.list_tools()
            while not os.path.exists(go_file):  # every worker starts calling at once
                await asyncio.sleep(0.005)
            lat = {"bm25": [], "info": []}
            start = time.time()
            for k in range(calls):
                t = time.perf_counter()
                res = await s.call_tool("rlm.search.query", {"session_id": sid, "query": QUERIES[(i + k) % len(QUERIES)]})
                lat["bm25"].append(time.perf_counter() - t)
                if res.isError:
                    raise SystemExit(f"client {i}: search failed: {res.content}")
                t = time.perf_counter()
                res = await s.call_tool("rlm.session.info", {"session_id": sid})
                lat["info"].append(time.perf_counter() - t)
                if res.isError:
                    raise SystemExit(f"client {i}: info failed: {res.content}")
            print(json.dumps({"start": start, "end": time.time(), "lat": lat}))


async def main() -> None:
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--calls", type=int, default=50)
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--sid", default=None, help=argparse.SUPPRESS)
    p.add_argument("--go", default=None, help=argparse.SUPPRESS)
    p.add_argument("--raw", action="store_true", help="workers speak plain JSON-RPC lines instead of using the SDK")
    a = p.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    if not cmd:
        p.error("give the shim command after --")
    if a.worker is not None:
        if a.raw:
            raw_worker(cmd, a.sid, a.calls, a.worker, a.go)
        else:
            await worker(cmd, a.sid, a.calls, a.worker, a.go)
        return
    if not a.corpus:
        p.error("--corpus is required")
    env = get_default_environment()
    env.update({k: v for k, v in os.environ.items() if k.startswith("RLM_")})
    async with stdio_client(StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            res = await s.call_tool("rlm.session.create", {"name": "concurrent", "config": {"max_tool_calls": 10_000_000}})
            sid = json.loads(res.content[0].text)["session_id"]
            await s.call_tool("rlm.docs.load", {"session_id": sid, "sources": [
                {"type": "directory", "path": os.path.abspath(a.corpus), "recursive": True, "include_pattern": r"\.py$"}]})
            await s.call_tool("rlm.search.query", {"session_id": sid, "query": "warm the index"})
            go = f"/tmp/rlm-concurrent-go-{os.getpid()}"
            procs = [await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--worker", str(i), "--sid", sid, "--calls", str(a.calls), "--go", go,
                *(["--raw"] if a.raw else []), "--", *cmd,
                stdout=asyncio.subprocess.PIPE) for i in range(a.clients)]
            await asyncio.sleep(2.0)  # let every worker spawn its shim and initialize
            open(go, "w").close()
            outs = [json.loads((await pr.communicate())[0].decode().strip().splitlines()[-1]) for pr in procs]
            os.unlink(go)
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    total = sum(len(o["lat"]["bm25"]) + len(o["lat"]["info"]) for o in outs)
    report = {"clients": a.clients, "client": "raw JSON-RPC" if a.raw else "mcp SDK", "calls": total, "wall_s": round(wall, 3), "calls_per_s": round(total / wall, 1)}
    for m in ("bm25", "info"):
        allv = [x * 1000 for o in outs for x in o["lat"][m]]
        report[m] = {"p50_ms": round(pct(allv, 50), 2), "p95_ms": round(pct(allv, 95), 2)}
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
