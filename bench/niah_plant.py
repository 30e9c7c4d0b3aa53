#!/usr/bin/env python3
"""Plant the needles of shared/bench/niah.py into a copy of a corpus, for the
in-process retrieval check (`rlm-engine-bench niah --planted OUT`).

It imports niah.py's own make_needles() and plant(), so the needles, files and
positions are exactly those niah.py makes for the same seed.

Usage: niah_plant.py --bench-dir ../shared/bench --corpus DIR --seed N --out OUT [--k 20]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import types
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bench-dir", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--include", default=r"\.py$")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    sys.path.insert(0, str(Path(a.bench_dir).resolve()))
    try:
        import niah  # noqa: E402
    except ModuleNotFoundError as e:
        # niah.py imports the MCP client only to run a server; planting needs none of it.
        if e.name not in ("mcp", "psutil") and not str(e.name).startswith("mcp."):
            raise
        stub = types.ModuleType("mcp_bench")
        for name in ("MCPServer", "lat_stats", "loaded_docs", "doc_id_of", "matches_of",
                     "match_doc_id", "span_bounds"):
            setattr(stub, name, None)
        import re

        def corpus_files(root: Path, include: str, exclude: str | None) -> list[Path]:
            inc = re.compile(include)
            exc = re.compile(exclude) if exclude else None
            return [q for q in root.rglob("*")
                    if q.is_file() and inc.search(str(q)) and not (exc and exc.search(str(q)))]

        stub.corpus_files = corpus_files
        sys.modules["mcp_bench"] = stub
        import niah  # noqa: E402
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(a.seed)
    needles = niah.make_needles(rng, a.k)
    niah.plant(Path(a.corpus).resolve(), out, needles, rng, a.include, None)
    (out / "needles.json").write_text(json.dumps(needles, indent=2))
    print(json.dumps({"out": str(out), "needles": len(needles)}))


if __name__ == "__main__":
    main()
