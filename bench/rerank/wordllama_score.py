#!/usr/bin/env python3
"""Adds a static embedding's cosine to the re-ranker experiment's candidates.

WordLlama (`pip install wordllama==0.4.0.post1`, PyPI) ships its l2_supercat
model in the wheel: 32 000 token vectors of 256 dimensions
(`wordllama/weights/l2_supercat_256.safetensors`) and the Llama 2 tokenizer
(`wordllama/tokenizers/l2_supercat_tokenizer_config.json`). A text's
embedding is the normalized mean of its tokens' vectors: no network is run,
so every passage could be embedded at index time. The package looks for the
tokenizer under `tokenizer/` and would download it; this script copies the
shipped file into a cache folder of its own first, and never downloads.

Usage: wordllama_score.py CANDIDATES.json SCORED.json (then fuse.py SCORED.json;
CANDIDATES.json is dump.py's output)
"""
import json
import shutil
import sys
import tempfile
from pathlib import Path

import wordllama
from wordllama import WordLlama


def main() -> int:
    shipped = Path(wordllama.__file__).parent / "tokenizers" / "l2_supercat_tokenizer_config.json"
    cache = Path(tempfile.mkdtemp(prefix="wordllama-"))
    (cache / "tokenizers").mkdir()
    shutil.copy(shipped, cache / "tokenizers" / shipped.name)
    wl = WordLlama.load(cache_dir=cache, disable_download=True)
    queries = json.load(open(sys.argv[1]))
    for q in queries:
        texts = [c["text"] for c in q["cands"]]
        if not texts:
            continue
        e = wl.embed([q["query"]] + texts, norm=True)
        for c, s in zip(q["cands"], e[1:] @ e[0]):
            c["sim"] = float(s)
    json.dump(queries, open(sys.argv[2], "w"))
    shutil.rmtree(cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
