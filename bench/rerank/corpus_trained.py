#!/usr/bin/env python3
"""Word associations learned from the corpus's own documented code: do they find undocumented code?

An offline simulation of codesearch.py (the benchmark harness; see docs/BENCHMARKS.md, "Running the benchmarks"):
the same blanked corpus and queries for a seed, but ranked here, in Python,
over one passage per Python definition (every function, method and class,
nested ones included), so that two ways of learning which code words go
with which description words can be compared to plain BM25 on one footing:

- `translation`: for each description word, the code words that co-occur
  with it in the definitions that still have a docstring (the corpus's
  other ~7,800), by lift; a query is expanded with the best m words of each
  of its words, weighted by their association, normalized per word, times
  beta.
- `nbow`: a neural bag of words (the CodeSearchNet baseline) trained on the
  same pairs, in numpy: a description's vector is the mean of its words'
  vectors, a definition's the mean of its identifiers' subwords' vectors,
  trained with in-batch softmax over cosines (both directions, Adagrad). Its
  cosine is added to BM25's score over the best score, times lambda, on
  the union of both rankings' best 100.

Neither needs a download or a model: both learn in seconds from the text
a session loads. Usage (a python with the mcp SDK, which codesearch.py
imports, and numpy):

    corpus_trained.py --harness "$HARNESS" --corpus /tmp/corpora/corpus --seed 1
"""
from __future__ import annotations

import argparse
import ast
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

STOP = set("""a an the of to in for and or is are be by with on as at from that this it its if
not no into which when then than return returns returned given object objects true false none
use used using can will may should must was were has have had do does""".split())
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def split_ident(s: str) -> list[str]:
    """Subwords of an identifier (snake and camel case), and the whole when it has several."""
    out = []
    for part in re.split(r"[_\W]+", s):
        subs = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", part)
        out.extend(x.lower() for x in subs)
        if len(subs) > 1:
            out.append(part.lower())
    return out


def stem(w: str) -> str:
    for suf in ("ing", "es", "ed", "s"):
        if len(w) > len(suf) + 3 and w.endswith(suf):
            return w[: -len(suf)]
    return w


def words(text: str) -> list[str]:
    return [stem(w) for t in WORD.findall(text) for w in split_ident(t)]


def identifiers(node: ast.AST) -> set[str]:
    out: list[str] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out += split_ident(n.id)
        elif isinstance(n, ast.Attribute):
            out += split_ident(n.attr)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out += split_ident(n.name)
        elif isinstance(n, ast.arg):
            out += split_ident(n.arg)
    return {stem(w) for w in out if len(w) > 2}


class Corpus:
    """One passage per definition, BM25 over them, and the documented definitions' pairs."""

    def __init__(self, root: Path):
        self.units: list[tuple[str, int, int, Counter, int]] = []  # file, start, end, tf, length
        self.code: list[set[str]] = []
        self.pairs: list[tuple[set[str], set[str]]] = []
        for p in sorted(root.rglob("*.py")):
            try:
                text = p.read_text(encoding="utf-8")
                tree = ast.parse(text)
            except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
                continue
            lines = text.splitlines(keepends=True)
            starts = [0]
            for line in lines:
                starts.append(starts[-1] + len(line))
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue
                a, b = node.lineno, node.end_lineno
                ws = words("".join(lines[a - 1:b]))
                self.units.append((str(p.resolve()), starts[a - 1], starts[b], Counter(ws), len(ws)))
                code = identifiers(node)
                self.code.append(code)
                doc = ast.get_docstring(node)
                if doc:
                    described = {w for w in words(doc) if w not in STOP and len(w) > 2}
                    if described and code:
                        self.pairs.append((described, code))
        self.df: Counter = Counter()
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, u in enumerate(self.units):
            self.df.update(u[3].keys())
            for w, c in u[3].items():
                self.postings[w].append((i, c))
        self.avgdl = sum(u[4] for u in self.units) / len(self.units)

    def idf(self, w: str) -> float:
        n = len(self.units)
        return math.log(1 + (n - self.df[w] + 0.5) / (self.df[w] + 0.5))

    def bm25(self, weights: dict[str, float], k1: float = 1.2, b: float = 0.75) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        for w, wt in weights.items():
            idf = self.idf(w)
            for i, c in self.postings.get(w, ()):
                norm = k1 * (1 - b + b * self.units[i][4] / self.avgdl)
                scores[i] += wt * idf * c * (k1 + 1) / (c + norm)
        return scores


def translation_table(pairs, min_count=3, min_lift=2.0):
    nq: Counter = Counter()
    nw: Counter = Counter()
    nqw: Counter = Counter()
    for described, code in pairs:
        nq.update(described)
        nw.update(code)
        for q in described:
            for w in code:
                nqw[(q, w)] += 1
    table = defaultdict(list)
    for (q, w), c in nqw.items():
        lift = (c / nq[q]) / (nw[w] / len(pairs))
        if c >= min_count and q != w and lift >= min_lift:
            table[q].append((c / nq[q] * math.log(lift), w))
    for q in table:
        table[q].sort(reverse=True)
    return table


def train_nbow(pairs, code_sets, dim=128, epochs=8, batch=128, lr=0.05, scale=20.0, seed=0):
    rng = np.random.default_rng(seed)
    dv: dict[str, int] = {}
    cv: dict[str, int] = {}
    for described, code in pairs:
        for w in described:
            dv.setdefault(w, len(dv))
        for w in code:
            cv.setdefault(w, len(cv))
    for code in code_sets:
        for w in code:
            cv.setdefault(w, len(cv))
    ed = rng.normal(0, 0.1, (len(dv), dim)).astype(np.float32)
    ec = rng.normal(0, 0.1, (len(cv), dim)).astype(np.float32)
    train = [(np.array([dv[w] for w in d]), np.array([cv[w] for w in c])) for d, c in pairs]
    acc_d, acc_c = np.zeros_like(ed), np.zeros_like(ec)

    def mean_rows(e, rows):
        return np.stack([e[r].mean(0) for r in rows])

    for _ in range(epochs):
        order = rng.permutation(len(train))
        for s0 in range(0, len(train), batch):
            bt = [train[j] for j in order[s0:s0 + batch]]
            n = len(bt)
            u, v = mean_rows(ed, [x[0] for x in bt]), mean_rows(ec, [x[1] for x in bt])
            nu = np.linalg.norm(u, axis=1, keepdims=True) + 1e-8
            nv = np.linalg.norm(v, axis=1, keepdims=True) + 1e-8
            q, c = u / nu, v / nv
            logits = scale * q @ c.T
            grad = np.zeros_like(logits)
            for lg, transpose in ((logits, False), (logits.T, True)):
                p = np.exp(lg - lg.max(1, keepdims=True))
                p /= p.sum(1, keepdims=True)
                p[np.arange(n), np.arange(n)] -= 1
                grad += (p.T if transpose else p) * scale / n
            dq, dc = grad @ c, grad.T @ q
            du = (dq - q * (q * dq).sum(1, keepdims=True)) / nu
            dvv = (dc - c * (c * dc).sum(1, keepdims=True)) / nv
            gd, gc = np.zeros_like(ed), np.zeros_like(ec)
            for i, (di, ci) in enumerate(bt):
                np.add.at(gd, di, du[i] / len(di))
                np.add.at(gc, ci, dvv[i] / len(ci))
            acc_d += gd**2
            acc_c += gc**2
            ed -= lr * gd / (np.sqrt(acc_d) + 1e-6)
            ec -= lr * gc / (np.sqrt(acc_c) + 1e-6)
    units = np.zeros((len(code_sets), dim), np.float32)
    for i, code in enumerate(code_sets):
        if code:
            units[i] = ec[[cv[w] for w in code]].mean(0)
    units /= np.linalg.norm(units, axis=1, keepdims=True) + 1e-8
    return dv, ed, units


def score(corpus: Corpus, needles, rank_fn) -> dict:
    ranks = []
    for n in needles:
        top = rank_fn(n["query"])[:10]
        rank = None
        for r, i in enumerate(top, 1):
            f, s, e = corpus.units[i][:3]
            if f == n["file"] and s < n["end"] and e > n["start"]:
                rank = r
                break
        ranks.append(rank)
    k = len(ranks)
    return {"hit@1": round(sum(r == 1 for r in ranks) / k, 3),
            "hit@10": round(sum(r is not None for r in ranks) / k, 3),
            "mrr@10": round(sum(1 / r for r in ranks if r) / k, 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harness", required=True, help="the folder of codesearch.py")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    sys.path.insert(0, str(Path(a.harness).resolve()))
    import codesearch  # noqa: E402  (the harness's own blanking and query choice)

    dst = Path(f"/tmp/rlm-corpus-trained-{a.seed}")
    needles = codesearch.build(Path(a.corpus), dst, 200, a.seed, "*.py", codesearch.python_targets)
    corpus = Corpus(dst)
    print(f"seed {a.seed}: {len(corpus.units)} definitions, {len(corpus.pairs)} documented", file=sys.stderr)

    def query_words(q):
        return [w for w in words(q) if w not in STOP]

    def plain(q):
        sc = corpus.bm25(dict(Counter(query_words(q))))
        return sorted(sc, key=sc.get, reverse=True)

    rows = {"bm25": score(corpus, needles, plain)}
    table = translation_table(corpus.pairs)
    for beta, m in ((0.05, 20), (0.5, 10), (1.0, 10)):
        def expanded(q, beta=beta, m=m):
            qw = query_words(q)
            weights = dict(Counter(qw))
            for w in set(qw):
                cand = [(s, c) for s, c in table.get(w, []) if c in corpus.df and corpus.idf(c) >= 3][:m]
                total = sum(s for s, _ in cand) or 1.0
                for s, c in cand:
                    weights[c] = weights.get(c, 0.0) + beta * s / total
            sc = corpus.bm25(weights)
            return sorted(sc, key=sc.get, reverse=True)
        rows[f"translation beta {beta} m {m}"] = score(corpus, needles, expanded)
    dv, ed, units = train_nbow(corpus.pairs, corpus.code)
    empty = np.array([not c for c in corpus.code])

    def cosines(q):
        rows_ = [dv[w] for w in query_words(q) if w in dv]
        if not rows_:
            return np.zeros(len(units))
        v = ed[rows_].mean(0)
        cos = units @ (v / (np.linalg.norm(v) + 1e-8))
        cos[empty] = -1
        return cos

    rows["nbow alone"] = score(corpus, needles, lambda q: list(np.argsort(-cosines(q))))
    for lam in (0.25, 0.5, 1.0):
        def fused(q, lam=lam):
            sc = corpus.bm25(dict(Counter(query_words(q))))
            cos = cosines(q)
            best = max(sc.values()) if sc else 1.0
            cand = set(sorted(sc, key=sc.get, reverse=True)[:100]) | {int(i) for i in np.argsort(-cos)[:100]}
            f = {i: sc.get(i, 0.0) / best + lam * float(cos[i]) for i in cand}
            return sorted(f, key=f.get, reverse=True)
        rows[f"bm25 + {lam} x nbow cosine"] = score(corpus, needles, fused)
    for name, r in rows.items():
        print(f"{name:32} hit@1 {r['hit@1']:.3f}  hit@10 {r['hit@10']:.3f}  MRR@10 {r['mrr@10']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
