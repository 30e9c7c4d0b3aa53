#!/usr/bin/env bash
# instructions.sh: the instructions rlmd executes to load folders into a
# session and answer its first bm25 (the index build), counted by valgrind
# (cachegrind, no cache simulation). On this machine kind the wall and CPU
# times of one binary vary by a fifth to a half from run to run; the count
# varies by about 0.1%, so two builds are told apart by one run each.
#
#   bench/instructions.sh BIN_DIR DIR...
#   bench/instructions.sh target/release "$(rustc --print sysroot)/share/doc/rust/html/std" ~/.cargo/registry/src/*/tokio-1.*
#   NOSEARCH=1 bench/instructions.sh ...   # the load alone
#
# Under valgrind the CPU's SHA extensions are not used: SHA-256 (the load's
# hashes, each text's first open) runs in software and counts for far more
# than it costs natively (about 14 of the 32 G instructions of the example
# above with tantivy's sources beside tokio's, `docs/BENCHMARKS.md`). It is
# the same in both builds of a comparison. About a minute for
# 150 MB. Needs valgrind (`apt-get install valgrind`). A daemon of its own on
# a fresh data folder under a temp dir (removed after).
set -euo pipefail
prog=instructions.sh
[ $# -ge 2 ] || { echo "$prog: usage: $prog BIN_DIR DIR..." >&2; exit 1; }
command -v valgrind >/dev/null || { echo "$prog: valgrind is missing: apt-get install valgrind" >&2; exit 1; }
bin=$(cd "$1" && pwd); shift
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
export RLM_DATA_DIR=$dir/data RLM_SOCKET=$dir/sock RLM_LOG_DIR=$dir/log
valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$bin/rlmd" >"$dir/rlmd.out" 2>&1 &
pid=$!
for _ in $(seq 600); do [ -S "$dir/sock" ] && break; sleep 0.1; done
[ -S "$dir/sock" ] || { echo "$prog: rlmd did not start under valgrind: $(cat "$dir/rlmd.out")" >&2; exit 1; }
sources=$(python3 -c 'import json,sys; print(json.dumps([{"type":"directory","path":p,"recursive":True} for p in sys.argv[1:]]))' "$@")
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
sid=$("$bin/rlm" call rlm.session.create '{"config":{"max_tool_calls":100000}}' | field session_id)
"$bin/rlm" call rlm.docs.load "{\"session_id\":\"$sid\",\"sources\":$sources}" >/dev/null
if [ "${NOSEARCH:-0}" != 1 ]; then
    "$bin/rlm" call rlm.search.query "{\"session_id\":\"$sid\",\"query\":\"retry backoff\"}" >/dev/null
fi
"$bin/rlm" daemon stop >/dev/null
wait "$pid" || true
pid=
count=$(grep -o 'I *refs: *[0-9,]*' "$dir/rlmd.out" | grep -o '[0-9,]*$')
[ -n "$count" ] || { echo "$prog: no count in valgrind's report: $(tail -5 "$dir/rlmd.out")" >&2; exit 1; }
echo "$prog: $bin: $count instructions"
