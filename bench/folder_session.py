"""A folder loaded into a new session of an MCP server, for the bench scripts.

`load_folder` creates the session, loads every file under a folder whose path
matches a pattern, and lists the documents: the session id and each
document's source path (resolved). `server_command` reads the server command
given after `--` and makes the harness folder's modules importable.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def server_command(ap: argparse.ArgumentParser, a: argparse.Namespace) -> list[str]:
    """The server command of `a.server_cmd` (after `--`); puts `a.harness`
    first on the module path (`mcp_bench`, `codesearch`)."""
    cmd = a.server_cmd[1:] if a.server_cmd[:1] == ["--"] else a.server_cmd
    if not cmd:
        ap.error("give the server command after --")
    sys.path.insert(0, str(Path(a.harness).resolve()))
    return cmd


async def load_folder(srv, folder: Path, include: str, config: dict) -> tuple[str, dict[str, Path]]:
    """(session id, {doc_id: source path}); exits naming the caller's failure."""
    o = await srv.call("rlm.session.create", {"config": config})
    if not o.ok:
        raise SystemExit(f"rlm.session.create failed: {o.message}")
    sid = o.data["session_id"]
    o = await srv.call("rlm.docs.load", {"session_id": sid, "sources": [
        {"type": "directory", "path": str(folder), "recursive": True, "include_pattern": include}]})
    if not o.ok:
        raise SystemExit(f"loading {folder} failed: {o.message}")
    sources, offset = {}, 0
    while True:
        o = await srv.call("rlm.docs.list", {"session_id": sid, "limit": 1000, "offset": offset})
        page = (o.data or {}).get("documents", []) if o.ok else []
        if not page:
            return sid, sources
        sources.update({d["doc_id"]: Path(d.get("source") or "").resolve() for d in page})
        offset += len(page)
