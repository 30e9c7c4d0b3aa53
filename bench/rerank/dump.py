#!/usr/bin/env python3
"""Dumps bm25's top-K candidates of the codesearch harness's queries, for the re-ranker experiment.

For each query of `codesearch.py` (same corpus, seed and blanked docstrings), asks
the server for K bm25 matches and records each one's score, whether it is the
target (as codesearch.py judges it: the 200-char context overlaps the definition)
and a text to embed: the first 1500 chars of the match's unit when it has one,
else its 1500-char context.

Usage: dump.py --harness DIR --corpus DIR --seed S --k K --out F -- SERVER CMD...
(DIR: the folder holding codesearch.py and mcp_bench.py.)
"""
import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from folder_session import load_folder, server_command  # noqa: E402


async def dump(MCPServer, cmd, dst, needles, k):
    srv = MCPServer(cmd, env=None, cwd=str(dst), stderr_path=None, timeout_s=300)
    out = []
    try:
        await srv.start()
        sid, sources = await load_folder(srv, dst, r"\.py$", {"max_tool_calls": 1000000, "max_chars_per_response": 2000000})
        path_of = {doc_id: str(p) for doc_id, p in sources.items()}
        for n in needles:
            args = {"session_id": sid, "query": n["query"], "method": "bm25", "limit": k}
            short = await srv.call("rlm.search.query", {**args, "context_chars": 200})
            wide = await srv.call("rlm.search.query", {**args, "context_chars": 1500})
            cands = []
            for m, w in zip((short.data or {}).get("matches", []), (wide.data or {}).get("matches", [])):
                sp = m.get("span") or {}
                hit = (path_of.get(m.get("doc_id")) == n["file"]
                       and sp.get("start", -1) < n["end"] and sp.get("end", -1) > n["start"])
                text, unit = w["context"], m.get("unit") or {}
                if unit.get("start") is not None:
                    p = await srv.call("rlm.docs.peek", {"session_id": sid, "doc_id": m["doc_id"], "start": unit["start"],
                                                         "end": min(unit["end"], unit["start"] + 1500)})
                    if p.ok:
                        text = p.data["content"]
                cands.append({"score": m["score"], "hit": hit, "text": text})
            out.append({"query": n["query"], "cands": cands})
    finally:
        await srv.stop()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harness", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--out", required=True)
    ap.add_argument("server_cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = server_command(ap, a)
    import codesearch
    from mcp_bench import MCPServer
    dst = Path(tempfile.gettempdir()) / f"rlm-codesearch-{a.seed}"
    needles = codesearch.build(Path(a.corpus), dst, 200, a.seed, "*.py", codesearch.python_targets)
    Path(a.out).write_text(json.dumps(asyncio.run(dump(MCPServer, cmd, dst, needles, a.k))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
