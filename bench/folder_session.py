"""A folder loaded into a new session of an MCP server, for the bench scripts.

`load_folder` creates the session, loads every file under a folder whose path
matches a pattern, and lists the documents: the session id and each
document's source path (resolved).
"""
from __future__ import annotations

from pathlib import Path


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
