#!/usr/bin/env python3
"""Writes a corpus of about TARGET bytes from SRC: copies of its files.

    python3 bench/gen_corpus.py SRC DST TARGET
"""
# ~300 MB of text files made from /tmp/corpora/corpus: each copy's files
# carry a header naming the copy and have every line's words rotated by
# the copy number, so texts differ (no dedupe) and the vocabulary stays real.
import os, sys
src, dst, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = []
for root, _, names in os.walk(src):
    for n in names:
        p = os.path.join(root, n)
        try:
            files.append((os.path.relpath(p, src), open(p, encoding='utf-8').read()))
        except Exception:
            pass
total, copy = 0, 0
while total < target:
    for rel, text in files:
        lines = []
        for line in text.split('\n'):
            w = line.split(' ')
            k = copy % max(len(w), 1)
            lines.append(' '.join(w[k:] + w[:k]))
        body = f"# copy {copy} of {rel}\n" + '\n'.join(lines)
        out = os.path.join(dst, f"c{copy:03d}", rel + ".txt")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        open(out, 'w', encoding='utf-8').write(body)
        total += len(body.encode())
        if total >= target:
            break
    copy += 1
print(copy, total)
