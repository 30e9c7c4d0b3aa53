#!/usr/bin/env python3
"""Scores orders of the re-ranker experiment's candidates (codesearch's hit@1, hit@10, MRR@10).

Orders: bm25 alone; the embedding's cosine alone over bm25's top K; and
bm25's score over the list's best plus w times the cosine, and reciprocal
rank fusion (k = 60) of the two orders, over the top K.

Usage: fuse.py SCORED.json (the output of rlm-rerank-experiment)
"""
import json
import sys


def metrics(queries, order, k):
    h1 = h10 = mrr = 0.0
    for q in queries:
        for i, c in enumerate(order(q["cands"][:k])[:10]):
            if c["hit"]:
                h10, mrr, h1 = h10 + 1, mrr + 1 / (i + 1), h1 + (i == 0)
                break
    n = len(queries)
    return f"hit@1 {h1 / n:.3f}  hit@10 {h10 / n:.3f}  MRR@10 {mrr / n:.3f}"


def main() -> int:
    queries = json.load(open(sys.argv[1]))
    print(f"{'bm25':<22}", metrics(queries, lambda c: c, None))
    for k in (10, 20, 30):
        print(f"{f'K={k} cosine':<22}", metrics(queries, lambda c: sorted(c, key=lambda x: -x["sim"]), k))
        for w in (0.5, 1, 2, 4):
            def mix(c, w=w):
                top = max((x["score"] for x in c), default=1.0) or 1.0
                return sorted(c, key=lambda x: -(x["score"] / top + w * x["sim"]))
            print(f"{f'K={k} bm25+{w}*cosine':<22}", metrics(queries, mix, k))

        def rrf(c):
            by_cos = {id(x): r for r, x in enumerate(sorted(c, key=lambda x: -x["sim"]))}
            return sorted(c, key=lambda x: -(1 / (60 + c.index(x)) + 1 / (60 + by_cos[id(x)])))
        print(f"{f'K={k} rrf(60)':<22}", metrics(queries, rrf, k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
