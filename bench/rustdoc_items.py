#!/usr/bin/env python3
"""Known-item search over HTML docs: find a method's section in rustdoc's pages.

A model reading a library's HTML docs asks for a method of a type ("Vec push").
This picks methods of the standard library's rustdoc pages (struct, enum and
trait pages whose sections carry `id="method.NAME"`), asks "TYPE NAME" as a
bm25 query, and scores where the first match whose highlighted word lies in the
method's section ranks (hit@1, hit@10, MRR@10). A section runs from the line of
its `id="method.NAME"` to the line before the next method's. Pages with the same
bytes under several paths (re-exports) count as one: a match in any copy hits.

Usage: rustdoc_items.py --harness DIR [--docs DIR] [--k 200] [--seed 1] -- SERVER CMD...
(DIR: the folder holding mcp_bench.py; --docs defaults to the toolchain's
`share/doc/rust/html/std`.)
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import subprocess
import sys
from pathlib import Path

from folder_session import load_folder, server_command

METHOD = re.compile(r'id="method\.([A-Za-z0-9_]+)"')
PAGE = re.compile(r"^(struct|enum|trait)\.([A-Za-z0-9_]+)\.html$")


def targets(docs: Path) -> list[dict]:
    """Every (type, method, section lines) of the pages, one per distinct page content."""
    seen, out = set(), []
    for p in sorted(docs.rglob("*.html")):
        m = PAGE.match(p.name)
        if not m:
            continue
        data = p.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        lines = data.decode("utf-8", "replace").split("\n")
        starts = [(i + 1, mm.group(1)) for i, line in enumerate(lines) for mm in METHOD.finditer(line)]
        names = [n for _, n in starts]
        for k, (line, name) in enumerate(starts):
            if names.count(name) != 1:
                continue  # a name of several sections (trait impls) is ambiguous
            end = starts[k + 1][0] - 1 if k + 1 < len(starts) else len(lines)
            out.append({"query": f"{m.group(2)} {name}", "digest": digest, "first": line, "last": max(line, end)})
    return out


async def score(MCPServer, cmd, docs: Path, needles: list[dict]) -> dict:
    srv = MCPServer(cmd, env=None, cwd=str(docs), stderr_path=None, timeout_s=600)
    ranks = []
    try:
        await srv.start()
        sid, texts = await load_folder(srv, docs, r"\.html$", {"max_tool_calls": 1000000})
        cache: dict[str, tuple[str, str]] = {}

        def read(doc_id: str) -> tuple[str, str]:
            if doc_id not in cache:
                data = texts[doc_id].read_bytes()
                cache[doc_id] = (hashlib.sha256(data).hexdigest(), data.decode("utf-8", "replace"))
            return cache[doc_id]

        for n in needles:
            o = await srv.call("rlm.search.query", {"session_id": sid, "query": n["query"], "method": "bm25",
                                                    "limit": 10, "context_chars": 100})
            rank = None
            for i, m in enumerate((o.data or {}).get("matches", []) if o.ok else []):
                digest, text = read(m["doc_id"])
                at = m["span"]["start"] + m["highlight_start"]
                line = text.count("\n", 0, at) + 1
                if digest == n["digest"] and n["first"] <= line <= n["last"]:
                    rank = i + 1
                    break
            ranks.append(rank)
    finally:
        await srv.stop()
    k = len(ranks)
    return {"queries": k, "hit@1": round(sum(r == 1 for r in ranks) / k, 4),
            "hit@10": round(sum(r is not None for r in ranks) / k, 4),
            "mrr@10": round(sum(1 / r for r in ranks if r) / k, 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harness", required=True)
    ap.add_argument("--docs")
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("server_cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = server_command(ap, a)
    from mcp_bench import MCPServer
    docs = Path(a.docs) if a.docs else Path(
        subprocess.check_output(["rustc", "--print", "sysroot"], text=True).strip()) / "share/doc/rust/html/std"
    found = targets(docs)
    needles = random.Random(a.seed).sample(found, min(a.k, len(found)))
    rep = asyncio.run(score(MCPServer, cmd, docs.resolve(), needles))
    rep.update({"seed": a.seed, "methods": len(found)})
    print(json.dumps(rep, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
