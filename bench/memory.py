#!/usr/bin/env python3
"""The memory of a real rlmd through large work: a load of a corpus folder,
then a first bm25 search (the index build), then idle. Prints RssAnon and
RssFile (from /proc/<pid>/status) at their peak during the work, right
after it, and after --idle seconds (sampled every 50 ms), as JSON.

    python3 bench/memory.py --bin target/release --corpus DIR [--idle 30] [--rlm PATH]

`--bin` holds rlmd (a release build: cargo build --release -p rlmd);
`--rlm` is the CLI (any build, default the same folder). The daemon runs on
a fresh data folder and socket in a temporary folder, and is stopped at the
end. Linux only.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "VmHWM"):
                out[k] = int(v.split()[0]) / 1024  # MB
    return out


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, {"RssAnon": 0, "RssFile": 0}, False

    def run(self):
        while not self.stop:
            try:
                s = status(self.pid)
            except OSError:
                return
            for k in self.peak:
                self.peak[k] = max(self.peak[k], s[k])
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--rlm")
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--idle", type=float, default=30)
    ap.add_argument("--query", default="parse the configuration file and report errors")
    a = ap.parse_args()
    rlm = a.rlm or os.path.join(a.bin, "rlm")
    tmp = tempfile.mkdtemp(prefix="rlm-mem-")
    sock = os.path.join(tmp, "run", "rlmd.sock")
    env = dict(os.environ, RLM_SOCKET=sock, RLM_DATA_DIR=os.path.join(tmp, "data"),
               XDG_CONFIG_HOME=os.path.join(tmp, "config"), RLM_LOG_DIR=os.path.join(tmp, "log"))
    daemon = subprocess.Popen([os.path.join(a.bin, "rlmd"), "--socket", sock,
                               "--data-dir", os.path.join(tmp, "data")],
                              env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "rlmd.err"), "w"))
    deadline = time.time() + 30
    while not os.path.exists(sock):
        if time.time() > deadline or daemon.poll() is not None:
            sys.exit(f"rlmd did not start; see {tmp}/rlmd.err")
        time.sleep(0.05)

    def call(tool, args):
        t = time.time()
        out = subprocess.run([rlm, "call", tool, json.dumps(args)], env=env,
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out), time.time() - t

    report = {"corpus": a.corpus, "start": status(daemon.pid)}
    sampler = Sampler(daemon.pid)
    sampler.start()
    try:
        sid = call("rlm.session.create", {"config": {"max_tool_calls": 1000}})[0]["session_id"]
        r, t = call("rlm.docs.load", {"session_id": sid, "sources": [
            {"type": "directory", "path": a.corpus, "recursive": True}]})
        report["docs"], report["load_s"] = r["loaded_count"], round(t, 2)
        report["after_load"] = status(daemon.pid)
        r, t = call("rlm.search.query", {"session_id": sid, "query": a.query, "method": "bm25", "limit": 10})
        report["first_bm25_s"] = round(t, 2)
        report["after_bm25"] = status(daemon.pid)
        report["peak"] = dict(sampler.peak)
        end = time.time() + a.idle
        while time.time() < end:
            time.sleep(0.1)
        report[f"idle_{int(a.idle)}s"] = status(daemon.pid)
    finally:
        sampler.stop = True
        daemon.terminate()
        daemon.wait(timeout=60)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
