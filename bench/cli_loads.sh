#!/usr/bin/env bash
# cli_loads.sh: three sessions load the same files through the CLI, each
# followed by a bm25 (the first builds the index); prints each call's wall
# time and the daemon's CPU time during it (/proc: a build CPU-bound on two
# cores shows about twice its wall time), then the daemon's own account of each load's phases (`load done`:
# expand, read, sync, commit) and of the index build (`texts indexed`:
# claim, claim wait, open, index per batch). For timing one change against
# another: run it for each build, alternated.
#
#   bench/cli_loads.sh BIN_DIR [GLOB...]
#   bench/cli_loads.sh target/release     # the scale corpus: crate sources + toolchain docs
#
# A daemon of its own on a fresh data folder under a temp dir (removed after).
set -euo pipefail
bin=$(cd "$1" && pwd); shift
if [ $# -eq 0 ]; then
    set -- "$HOME/.cargo/registry/src/**/*.rs" "$(rustc --print sysroot)/share/doc/**/*.html"
fi
dir=$(mktemp -d); trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
export RLM_DATA_DIR=$dir/data RLM_SOCKET=$dir/sock RLM_LOG_DIR=$dir/log
export RLM_LOG=rlmd::engine::load=debug,info
"$bin/rlmd" >"$dir/rlmd.out" 2>&1 &
pid=$!
for _ in $(seq 200); do [ -S "$dir/sock" ] && break; sleep 0.05; done
[ -S "$dir/sock" ] || { echo "cli_loads.sh: rlmd did not start: $(cat "$dir/rlmd.out")" >&2; exit 1; }
sources=$(python3 -c 'import json,sys; print(json.dumps([{"type":"glob","path":p} for p in sys.argv[1:]]))' "$@")
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
now() { date +%s.%N; }
# The daemon's CPU time so far (user + system), in seconds.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ split($0, a, ") "); split(a[2], f, " "); print (f[12] + f[13]) / hz }' "/proc/$pid/stat"; }
for n in 1 2 3; do
    sid=$("$bin/rlm" call rlm.session.create '{"config":{"max_tool_calls":100000}}' | field session_id)
    t0=$(now); c0=$(cpu)
    "$bin/rlm" call rlm.docs.load "{\"session_id\":\"$sid\",\"sources\":$sources}" >/dev/null
    t1=$(now); c1=$(cpu)
    "$bin/rlm" call rlm.search.query "{\"session_id\":\"$sid\",\"query\":\"retry backoff\"}" >/dev/null
    t2=$(now); c2=$(cpu)
    echo "cli_loads.sh: session $n: load $(python3 -c "print(f'{$t1 - $t0:.2f} s (daemon CPU {$c1 - $c0:.2f} s)')"), first bm25 $(python3 -c "print(f'{$t2 - $t1:.2f} s (daemon CPU {$c2 - $c1:.2f} s)')")"
done
grep -rh '"load done"\|"texts indexed"\|"index build finished"' "$dir/log" |
    python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    keep = {k: v for k, v in e.items() if k.endswith("_ms") or k in ("documents", "texts")}
    print("cli_loads.sh:", e["message"], keep)
'
