#!/usr/bin/env python3
"""The largest answer of each tool at default settings, in characters and
estimated tokens, for ASCII code, CJK and emoji input (issue 11's closing
table), and the estimate's error against real tokenizers.

    python3 bench/answers.py --bin target/release [--out /tmp/rlm-answers]
        [--node-modules /tmp/tok/node_modules]

Drives `rlm-mcp` with raw JSON-RPC lines (no SDK needed) on a fresh data
folder and socket of its own; each kind of text gets a session with the
server's defaults and a client name no profile matches. Every call is made
to answer as much as it can (loads of 300 documents, lists of 1,000, peeks
of whole documents, 1,000 matches of 2,000 characters of context...). The
answers' text (what a client receives) is written under `--out`; their
estimated tokens come from `rlm-engine-bench tokens` (same estimate as the
caps), and, when `--node-modules` holds `gpt-tokenizer` and
`@anthropic-ai/tokenizer` (`npm install --prefix DIR gpt-tokenizer@4.0.0
@anthropic-ai/tokenizer@0.0.4`), their real counts with cl100k_base,
o200k_base and Anthropic's tokenizer.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path


def texts() -> dict[str, str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = ""
    for f in sorted(stdlib.glob("*.py")):
        code += f.read_text(errors="replace")
        if len(code) > 300_000:
            break
    # Chinese and Japanese prose (GnuPG's help texts) when the machine has
    # them, else a cycle of common CJK characters.
    cjk = ""
    for name in ("help.zh_CN.txt", "help.ja.txt", "help.zh_TW.txt"):
        p = Path("/usr/share/gnupg") / name
        if p.exists():
            cjk += p.read_text(errors="replace")
    if not cjk:
        cjk = "漢字と仮名の交じった文章で、検索と要約の例を示します。中文的句子也在这里。" * 4000
    emoji_cycle = "😀🎉🚀✨🔥💡📚🧭🌍🤖"
    words = code.split()[:20_000]
    emoji = " ".join(w + (emoji_cycle[i % len(emoji_cycle)] * 3 if i % 2 else "") for i, w in enumerate(words))
    return {
        "ascii_code": code[:300_000],
        "cjk": (cjk * (1 + 200_000 // max(len(cjk), 1)))[:200_000],
        "emoji": emoji[:150_000],
    }


class Shim:
    def __init__(self, bin_dir: str, tmp: str):
        env = dict(os.environ)
        # The server's defaults: an empty configuration file of its own.
        Path(f"{tmp}/config.toml").write_text("")
        env.update(RLM_DATA_DIR=f"{tmp}/data", RLM_SOCKET=f"{tmp}/rlmd.sock", RLM_LOG_DIR=f"{tmp}/log",
                   RLM_CONFIG=f"{tmp}/config.toml")
        self.p = subprocess.Popen([f"{bin_dir}/rlm-mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.n = 0
        self.rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                "clientInfo": {"name": "answers-bench", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg: dict) -> None:
        self.p.stdin.write((json.dumps(msg) + "\n").encode())
        self.p.stdin.flush()

    def rpc(self, method: str, params: dict) -> dict:
        self.n += 1
        self.send({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params})
        while True:
            msg = json.loads(self.p.stdout.readline())
            if msg.get("id") == self.n:
                return msg

    def call(self, tool: str, args: dict) -> tuple[dict, str]:
        r = self.rpc("tools/call", {"name": tool, "arguments": args})["result"]
        text = r["content"][0]["text"]
        if r.get("isError"):
            raise RuntimeError(f"{tool}: {text[:300]}")
        return r["structuredContent"], text

    def close(self) -> None:
        self.p.stdin.close()
        self.p.wait()


def measure(shim: Shim, kind: str, text: str, out: Path) -> dict[str, str]:
    """Each tool's largest answer for this kind of text: tool -> answer file."""
    files: dict[str, str] = {}

    def keep(tool: str, answer: str) -> None:
        path = out / f"{kind}.{tool}.json"
        if tool not in files or len(answer) > len(Path(files[tool]).read_text()):
            path.write_text(answer)
            files[tool] = str(path)

    created, answer = shim.call("rlm.session.create", {"name": f"answers {kind}"})
    keep("session.create", answer)
    sid = created["session_id"]
    pieces = [{"type": "inline", "content": text[i * 1000:(i + 1) * 1000], "name": f"{kind}-{i}"} for i in range(300)]
    loaded, answer = shim.call("rlm.docs.load", {"session_id": sid, "sources": pieces})
    keep("docs.load", answer)
    big, answer = shim.call("rlm.docs.load", {"session_id": sid, "sources": [{"type": "inline", "content": text}]})
    doc = big["loaded"][0]["doc_id"]
    _, answer = shim.call("rlm.docs.list", {"session_id": sid, "limit": 1000})
    keep("docs.list", answer)
    _, answer = shim.call("rlm.docs.peek", {"session_id": sid, "doc_id": doc})
    keep("docs.peek", answer)
    chunks, answer = shim.call("rlm.chunk.create", {"session_id": sid, "doc_id": doc,
                                                    "strategy": {"type": "fixed", "chunk_size": 2000}})
    keep("chunk.create", answer)
    ids = [s["span_id"] for s in chunks["spans"]][:100]
    _, answer = shim.call("rlm.span.get", {"session_id": sid, "span_ids": ids})
    keep("span.get", answer)
    # A frequent term of each kind: the first word or character that occurs often.
    term = {"ascii_code": "self", "cjk": text[0], "emoji": "🎉"}[kind]
    for method, query in (("literal", term), ("regex", term), ("bm25", "self return value" if kind == "ascii_code" else term)):
        for context in (200, 2000):
            try:
                _, answer = shim.call("rlm.search.query", {"session_id": sid, "query": query, "method": method,
                                                           "limit": 1000, "context_chars": context})
                keep("search.query", answer)
            except RuntimeError:
                pass
    art = None
    for size in (40_000, 20_000, 10_000, 5_000, 2_000):
        try:
            stored, _ = shim.call("rlm.artifact.store", {"session_id": sid, "type": "summary",
                                                         "content": {"text": text[:size]},
                                                         "span_id": ids[0]})
            art = stored["artifact_id"]
            break
        except RuntimeError:
            continue
    _, answer = shim.call("rlm.artifact.store", {"session_id": sid, "type": "summary", "content": {"n": 1}})
    keep("artifact.store", answer)
    for i in range(60):
        shim.call("rlm.artifact.store", {"session_id": sid, "type": "note", "content": {"i": i},
                                         "provenance": {"model": text[i * 50:i * 50 + 50], "tool": "answers.py"}})
    _, answer = shim.call("rlm.artifact.list", {"session_id": sid})
    keep("artifact.list", answer)
    if art:
        _, answer = shim.call("rlm.artifact.get", {"session_id": sid, "artifact_id": art})
        keep("artifact.get", answer)
    _, answer = shim.call("rlm.session.info", {"session_id": sid})
    keep("session.info", answer)
    _, answer = shim.call("rlm.session.close", {"session_id": sid})
    keep("session.close", answer)
    return files


REAL = r"""
const fs = require('fs');
const { encode: cl100k } = require('gpt-tokenizer/cjs/encoding/cl100k_base');
const { encode: o200k } = require('gpt-tokenizer/cjs/encoding/o200k_base');
const { countTokens: claude } = require('@anthropic-ai/tokenizer');
const out = {};
for (const f of process.argv.slice(1)) {
  const t = fs.readFileSync(f, 'utf8');
  out[f] = Math.max(cl100k(t).length, o200k(t).length, claude(t));
}
console.log(JSON.stringify(out));
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="folder of release builds of rlm-mcp, rlmd, rlm-engine-bench")
    ap.add_argument("--out", default=None, help="where the answers are written (default: a temporary folder)")
    ap.add_argument("--node-modules", default=None, help="node_modules with gpt-tokenizer and @anthropic-ai/tokenizer")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rlm-answers-")
    out = Path(a.out or f"{tmp}/answers")
    out.mkdir(parents=True, exist_ok=True)
    shim = Shim(a.bin, tmp)
    files: dict[tuple[str, str], str] = {}
    try:
        for kind, text in texts().items():
            for tool, f in measure(shim, kind, text, out).items():
                files[(tool, kind)] = f
    finally:
        shim.close()
        subprocess.run([f"{a.bin}/rlm", "--socket", f"{tmp}/rlmd.sock", "daemon", "stop"], capture_output=True)
    est_lines = subprocess.run([f"{a.bin}/rlm-engine-bench", "tokens", *files.values()],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    est = {line.split("\t")[2]: (int(line.split("\t")[0]), int(line.split("\t")[1])) for line in est_lines}
    real: dict[str, int] = {}
    if a.node_modules:
        env = dict(os.environ, NODE_PATH=a.node_modules)
        r = subprocess.run(["node", "-e", REAL, *files.values()], capture_output=True, text=True, env=env)
        if r.returncode == 0:
            real = json.loads(r.stdout)
        else:
            print(f"answers.py: real tokenizers not run: {r.stderr[:300]}", file=sys.stderr)
    kinds = ["ascii_code", "cjk", "emoji"]
    tools = sorted({t for t, _ in files})
    print("| tool | " + " | ".join(f"{k}: chars / est. tokens" + (" / real" if real else "") for k in kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    worst = 0.0
    for tool in tools:
        cells = []
        for kind in kinds:
            f = files.get((tool, kind))
            if not f:
                cells.append("")
                continue
            chars, tokens = est[f]
            cell = f"{chars:,} / {tokens:,}"
            if f in real:
                cell += f" / {real[f]:,}"
                worst = max(worst, real[f] / max(tokens, 1))
            cells.append(cell)
        print(f"| {tool} | " + " | ".join(cells) + " |")
    if real:
        print(f"\nlargest real / estimated tokens over every answer: {worst:.3f}")
    print(f"answers in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
