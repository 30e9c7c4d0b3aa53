#!/usr/bin/env python3
"""Clients that send large inline loads faster than the daemon stores them: the daemon's peak memory.

Starts a release `rlmd` on a data folder and socket of its own, with
`max_large_requests_mb` set to --room (left out when 0), then --clients processes, each on one
connection of its own (the daemon's protocol, by hand: 4-byte big-endian
length, then JSON), creating a session and sending --loads calls of
`rlm.docs.load` with one inline text of --mb MB each, all at once, before
reading any answer. Prints each client's wall time and the daemon's peak
`RssAnon` and `RssFile` (`/proc/<pid>/status`, sampled every 20 ms) over
the whole burst. Linux only; any python3.

    python3 bench/inline_burst.py --bin target/release --room 256 --clients 6 --loads 4 --mb 100
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path


def frame(obj) -> bytes:
    body = json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def read_frame(s: socket.socket):
    def exactly(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = s.recv(min(1 << 20, n - len(buf)))
            if not chunk:
                raise ConnectionError("the daemon closed the connection")
            buf += chunk
        return bytes(buf)

    (size,) = struct.unpack(">I", exactly(4))
    return json.loads(exactly(size))


def client(sock_path: str, loads: int, mb: int, tag: int, out) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(frame({"type": "hello", "protocol_version": 1, "client_name": "inline_burst",
                     "client_version": "0", "cwd": None}))
    assert read_frame(s)["type"] == "welcome"
    s.sendall(frame({"type": "call", "id": 1, "tool": "rlm.session.create", "arguments": {}}))
    sid = read_frame(s)["outcome"]["result"]["session_id"]
    words = "lorem ipsum dolor sit amet consectetur "
    started = time.time()

    def send() -> None:
        for i in range(loads):
            text = f"client {tag} load {i} " + words * (mb * 1_000_000 // len(words))
            s.sendall(frame({"type": "call", "id": 10 + i, "tool": "rlm.docs.load", "arguments": {
                "session_id": sid, "sources": [{"type": "inline", "content": text}]}}))

    sender = threading.Thread(target=send)
    sender.start()
    failed = 0
    for _ in range(loads):
        answer = read_frame(s)
        if answer["outcome"]["kind"] != "ok" or answer["outcome"]["result"]["error_count"]:
            failed += 1
    sender.join()
    out.put((tag, time.time() - started, failed))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the folder of a release rlmd")
    ap.add_argument("--room", type=int, default=0,
                    help="max_large_requests_mb (0: not set: the default, or a daemon older than the setting)")
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--loads", type=int, default=8)
    ap.add_argument("--mb", type=int, default=100)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rlm-burst-"))
    try:
        (work / "config.toml").write_text(f"max_large_requests_mb = {a.room}\n" if a.room else "")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_")}
        env.update(RLM_CONFIG=str(work / "config.toml"), RLM_DATA_DIR=str(work / "data"),
                   RLM_LOG_DIR=str(work / "log"))
        sock = work / "s.sock"
        daemon = subprocess.Popen([str(Path(a.bin) / "rlmd"), "--socket", str(sock)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not sock.exists():
            if time.time() > deadline or daemon.poll() is not None:
                raise SystemExit("inline_burst: rlmd did not start")
            time.sleep(0.05)
        peak = {"RssAnon": 0, "RssFile": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines():
                        key = line.split(":")[0]
                        if key in peak:
                            peak[key] = max(peak[key], int(line.split()[1]) // 1024)
                except OSError:
                    pass
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        out = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=client, args=(str(sock), a.loads, a.mb, i, out))
                 for i in range(a.clients)]
        started = time.time()
        for p in procs:
            p.start()
        results = sorted(out.get(timeout=1800) for _ in procs)
        for p in procs:
            p.join()
        done.set()
        sampler.join()
        daemon.terminate()
        daemon.wait(timeout=60)
        room = f"{a.room} MB" if a.room else "not set"
        print(f"room {room}, {a.clients} clients x {a.loads} inline loads of {a.mb} MB: "
              f"{time.time() - started:.1f} s; daemon peak RssAnon {peak['RssAnon']} MB, "
              f"RssFile {peak['RssFile']} MB")
        for tag, seconds, failed in results:
            print(f"  client {tag}: {seconds:.1f} s, {failed} loads failed")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
