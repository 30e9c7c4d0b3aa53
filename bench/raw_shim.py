"""One rlm-mcp process driven by hand, JSON-RPC lines on its stdin and
stdout, no SDK (`scale.py`, `query_loop.py`): its wall times are the shim's
and the daemon's, without the SDK client's own parsing, validation and task
switches. Standard library only."""

from __future__ import annotations

import json
import os
import subprocess
import time


class RawShim:
    """The shim of `daemon` (anything with `bin_dir`, `env` and `tmp`: the
    daemons of `scale.py` and `query_loop.py`), its stderr appended to
    `tmp/rlm-mcp-raw.err`."""

    def __init__(self, daemon: Daemon):
        env = dict(os.environ)
        env.update({k: v for k, v in daemon.env.items() if k.startswith(("RLM_", "XDG_"))})
        self.errlog = open(os.path.join(daemon.tmp, "rlm-mcp-raw.err"), "a")
        self.proc = subprocess.Popen([os.path.join(daemon.bin_dir, "rlm-mcp")], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.errlog)
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "scale-raw", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg: dict) -> None:
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"rlm-mcp closed its stdout during {method}")
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method} failed: {msg['error']}")
                return msg["result"]

    def call(self, name: str, args: dict) -> float:
        """One tool call's wall time in seconds; a tool error raises."""
        t = time.perf_counter()
        res = self.request("tools/call", {"name": name, "arguments": args})
        dt = time.perf_counter() - t
        if res.get("isError"):
            raise RuntimeError(f"{name} failed: {res.get('content')}")
        return dt

    def search(self, sid: str, query: str, method: str) -> float:
        """Seconds for one rlm.search.query (limit 10), as `Shim.search`."""
        return self.call("rlm.search.query", {"session_id": sid, "query": query,
                                              "method": method, "limit": 10})

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.errlog.close()
