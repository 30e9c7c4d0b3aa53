"""All twelve rlm tools through rlm-mcp with the official Python MCP SDK (1.x or 2.x).

Run by tests/mcp_clients.rs with each venv's python:

    all_tools.py --shim PATH --socket PATH --data-dir PATH --log-dir PATH --config FILE --work DIR

`--work` holds notes/alpha.txt, src/a.py and src/sub/b.py (written by the Rust test); it is the
shim's working directory. The shim lists underscore names (`--tool-names underscore`). Prints
"all twelve tools ok" and exits 0, or exits 1 with what failed.
"""

import argparse
import asyncio
import hashlib
import json
import os
import sys
import traceback

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

try:  # 2.x
    from mcp import MCPError as RpcError
except ImportError:  # 1.x
    from mcp.shared.exceptions import McpError as RpcError

TOOLS = [
    "rlm_session_create",
    "rlm_session_info",
    "rlm_session_close",
    "rlm_docs_load",
    "rlm_docs_list",
    "rlm_docs_peek",
    "rlm_chunk_create",
    "rlm_span_get",
    "rlm_search_query",
    "rlm_artifact_store",
    "rlm_artifact_list",
    "rlm_artifact_get",
]

MEMO = "inline memo über alles"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def as_dict(model):
    """A pydantic model of either SDK as the JSON the wire carried (camelCase keys)."""
    return model.model_dump(mode="json", by_alias=True)


class Calls:
    def __init__(self, session):
        self.session = session

    async def raw(self, name, args, **kw):
        result = as_dict(await self.session.call_tool(name, args, **kw))
        return result

    async def ok(self, name, args, **kw):
        r = await self.raw(name, args, **kw)
        check(not r.get("isError"), f"{name} failed: {r}")
        structured = r.get("structuredContent")
        check(isinstance(structured, dict), f"{name}: no structuredContent: {r}")
        texts = [c for c in r["content"] if c.get("type") == "text"]
        check(len(texts) == 1, f"{name}: one text item: {r}")
        check(json.loads(texts[0]["text"]) == structured, f"{name}: text == structuredContent")
        return structured

    async def error(self, name, args):
        r = await self.raw(name, args)
        check(r.get("isError") is True, f"{name} should fail: {r}")
        err = (r.get("structuredContent") or {}).get("error") or {}
        check(isinstance(err.get("code"), str), f"{name}: error code in structuredContent: {r}")
        check(r["content"] and r["content"][0]["type"] == "text", f"{name}: error text: {r}")
        return err


async def run(args):
    work = os.path.abspath(args.work)
    alpha_path = os.path.join(work, "notes", "alpha.txt")
    with open(alpha_path, encoding="utf-8") as f:
        alpha = f.read()
    params = StdioServerParameters(
        command=args.shim,
        args=[
            "--tool-names",
            "underscore",
            "--socket",
            args.socket,
            "--data-dir",
            args.data_dir,
            "--idle-timeout",
            "30",
        ],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "RLM_LOG_DIR": args.log_dir,
            "RLM_CONFIG": args.config,
        },
        cwd=work,
    )
    async with stdio_client(params) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            init = as_dict(await session.initialize())
            check(init["capabilities"].get("tools") is not None, f"tools capability: {init}")
            listed = as_dict(await session.list_tools())
            names = [t["name"] for t in listed["tools"]]
            check(names == TOOLS, f"underscore names in order: {names}")
            for t in listed["tools"]:
                check(t["inputSchema"].get("type") == "object", f"{t['name']}: inputSchema")
                check(t.get("outputSchema"), f"{t['name']}: outputSchema")
                check(all(c.isalnum() or c in "_-" for c in t["name"]), t["name"])
            c = Calls(session)

            created = await c.ok(
                "rlm_session_create", {"name": "py", "config": {"max_tool_calls": 100}}
            )
            sid = created["session_id"]
            check(created["config"]["max_tool_calls"] == 100, created)

            progress = []

            async def on_progress(done, total, message):
                progress.append((done, total, message))

            loaded = await c.ok(
                "rlm_docs_load",
                {
                    "session_id": sid,
                    "sources": [
                        {"type": "file", "path": "notes/alpha.txt"},
                        {"type": "directory", "path": "src", "recursive": True},
                        {"type": "inline", "content": MEMO, "name": "memo"},
                        {"type": "file", "path": "notes/missing.txt"},
                    ],
                },
                progress_callback=on_progress,
            )
            docs = loaded["loaded"]
            check(len(docs) == 4, f"4 documents loaded: {loaded}")
            check(len(loaded["errors"]) == 1 and "missing.txt" in loaded["errors"][0], loaded)
            by_source = {d["source"]: d for d in docs}
            check(alpha_path in by_source, f"relative path resolved against cwd: {list(by_source)}")
            a = by_source[alpha_path]
            check(a["length_chars"] == len(alpha), f"code points: {a} vs {len(alpha)}")
            check(a["content_hash"] == sha(alpha), "content_hash is the SHA-256 of the UTF-8 text")
            check(by_source["memo"]["content_hash"] == sha(MEMO), "inline hash")
            check(progress, "a load asked with a progressToken reports progress")
            alpha_id = a["doc_id"]

            listed_docs = await c.ok("rlm_docs_list", {"session_id": sid})
            check(listed_docs["total"] == 4, listed_docs)
            check(
                [d["doc_id"] for d in listed_docs["documents"]] == [d["doc_id"] for d in docs],
                "load order",
            )

            peek = await c.ok(
                "rlm_docs_peek", {"session_id": sid, "doc_id": alpha_id, "start": 30, "end": 50}
            )
            check(peek["content"] == alpha[30:50], f"peek by code points: {peek['content']!r}")
            check(peek["total_length"] == len(alpha), peek)
            err = await c.error(
                "rlm_docs_peek",
                {"session_id": sid, "doc_id": alpha_id, "start": 0, "end": len(alpha) + 5},
            )
            check(err["code"] == "invalid_argument", err)

            strategy = {"type": "fixed", "chunk_size": 40, "overlap": 10}
            chunks = await c.ok(
                "rlm_chunk_create", {"session_id": sid, "doc_id": alpha_id, "strategy": strategy}
            )
            spans = chunks["spans"]
            check(spans and spans[0]["span"]["start"] == 0, chunks)
            check(spans[1]["span"]["start"] == 30, f"windows start chunk_size - overlap apart: {spans[1]}")
            check(spans[-1]["span"]["end"] == len(alpha), "the last span ends at the end")
            check(chunks["total_spans"] == len(spans), chunks)
            again = await c.ok(
                "rlm_chunk_create", {"session_id": sid, "doc_id": alpha_id, "strategy": strategy}
            )
            check(again["cached"] is True and again["spans"][0]["span_id"] == spans[0]["span_id"], again)

            ids = [spans[2]["span_id"], spans[0]["span_id"]]
            got = await c.ok("rlm_span_get", {"session_id": sid, "span_ids": ids})
            check([s["span_id"] for s in got["spans"]] == ids, "the order asked")
            s2 = spans[2]["span"]
            check(got["spans"][0]["content"] == alpha[s2["start"] : s2["end"]], got["spans"][0])

            found = await c.ok("rlm_search_query", {"session_id": sid, "query": "zanzibarite"})
            m = found["matches"][0]
            check(m["doc_id"] == alpha_id, found)
            ctx = m["context"]
            check(
                ctx[m["highlight_start"] : m["highlight_end"]].lower() == "zanzibarite",
                f"highlight inside the context: {m}",
            )
            regex = await c.ok(
                "rlm_search_query", {"session_id": sid, "query": "MODULE", "method": "regex"}
            )
            check(regex["total_matches"] == 2, regex)

            stored = await c.ok(
                "rlm_artifact_store",
                {
                    "session_id": sid,
                    "type": "extraction",
                    "span_id": spans[0]["span_id"],
                    "content": {"mineral": "zanzibarite"},
                    "provenance": {"model": "py-model"},
                },
            )
            arts = await c.ok("rlm_artifact_list", {"session_id": sid, "type": "extraction"})
            check([x["artifact_id"] for x in arts["artifacts"]] == [stored["artifact_id"]], arts)
            art = await c.ok(
                "rlm_artifact_get", {"session_id": sid, "artifact_id": stored["artifact_id"]}
            )
            check(art["content"] == {"mineral": "zanzibarite"}, art)
            check(art["span"] == spans[0]["span"], art)

            # Dotted names work too, whatever the listing shows.
            info = await c.ok("rlm.session.info", {"session_id": sid})
            check(info["document_count"] == 4 and info["status"] == "active", info)
            check(info["tool_calls_used"] + info["tool_calls_remaining"] == 100, info)

            err = await c.error("rlm_session_info", {"session_id": "no-such-session"})
            check(err["code"] in ("session_not_found", "invalid_argument"), err)
            try:
                r = await session.call_tool("rlm_no_such_tool", {})
            except RpcError as e:
                check(e.error.code == -32602, f"unknown tool: JSON-RPC -32602, got {e.error}")
            else:
                raise Failure(f"an unknown tool must be a JSON-RPC error, got {r}")

            closed = await c.ok("rlm_session_close", {"session_id": sid})
            check(closed["status"] == "completed" and closed["summary"]["documents"] == 4, closed)
            err = await c.error(
                "rlm_artifact_store",
                {"session_id": sid, "type": "late", "content": {}},
            )
            check(err["code"] == "session_closed", err)
            still = await c.ok("rlm_docs_list", {"session_id": sid})
            check(still["total"] == 4, "a closed session is still readable")
    print("all twelve tools ok")


def main():
    p = argparse.ArgumentParser()
    for name in ("--shim", "--socket", "--data-dir", "--log-dir", "--config", "--work"):
        p.add_argument(name, required=True)
    args = p.parse_args()
    try:
        asyncio.run(run(args))
    except BaseException as e:  # noqa: BLE001 - any SDK error is a failure of the test
        failures = leaves(e, Failure)
        if failures:
            for f in failures:
                print(f"FAILED: {f}", file=sys.stderr)
        else:
            traceback.print_exc()
        sys.exit(1)


def leaves(error, kind):
    """The errors of `kind` inside `error`, looking through anyio's exception groups."""
    if isinstance(error, kind):
        return [error]
    if isinstance(error, BaseExceptionGroup):
        return [leaf for sub in error.exceptions for leaf in leaves(sub, kind)]
    return []


if __name__ == "__main__":
    main()
