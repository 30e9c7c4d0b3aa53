#!/bin/bash
# The ranking harnesses against a daemon whose store holds another session's
# texts or not, with bm25 statistics of the session or of the store: the
# measurement behind `[search] bm25_statistics` (docs/BENCHMARKS.md).
#
#   bench/stats_choice.sh MODE POLLUTE HARNESS OUT
#     MODE     session | store         ([search] bm25_statistics)
#     POLLUTE  0 | 1                   1: load POLLUTE_DIR (default the stdlib
#                                      corpus) into another session first
#     HARNESS  ranking | niah          ../shared/bench/ranking.py or niah.py
#     OUT      where the harness's output goes (OUT.txt; OUT for ranking's JSON)
#
# Needs release binaries (cargo build --release -p rlmd -p rlm-client),
# /tmp/corpora/corpus (prepare_corpora.py), a python with the `mcp` SDK
# (PY, default target/py/mcp1/bin/python, which `cargo test` makes) and the
# harnesses in BENCH (default ../shared/bench). The daemon runs on a
# temporary data folder and socket, and is stopped at the end.
set -e
mode=$1; pollute=$2; harness=$3; out=$4
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${BIN:-$ROOT/target/release}
BENCH=${BENCH:-$ROOT/../shared/bench}
T=$(mktemp -d)
cat > $T/config.toml <<C
[search]
bm25_statistics = "$mode"
C
export RLM_CONFIG=$T/config.toml RLM_DATA_DIR=$T/data RLM_SOCKET=$T/s/rlmd.sock RLM_LOG_DIR=$T/logs
mkdir -p $T/s && chmod 700 $T/s
$B/rlmd >$T/rlmd.out 2>&1 &
pid=$!
for i in $(seq 100); do [ -S $RLM_SOCKET ] && break; sleep 0.1; done
[ -S $RLM_SOCKET ] || { echo "stats_choice.sh: rlmd did not start; see $T/rlmd.out" >&2; exit 1; }
if [ "$pollute" = 1 ]; then
  sid=$($B/rlm call rlm.session.create '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["session_id"])')
  $B/rlm call rlm.docs.load "{\"session_id\": \"$sid\", \"sources\": [{\"type\": \"directory\", \"path\": \"${POLLUTE_DIR:-/tmp/corpora/corpus}\"}]}" >/dev/null
  $B/rlm call rlm.search.query "{\"session_id\": \"$sid\", \"query\": \"x\"}" >/dev/null
fi
PY=${PY:-$ROOT/target/py/mcp1/bin/python}
if [ "$harness" = ranking ]; then
  $PY $BENCH/ranking.py --json-out $out -- env RLM_CONFIG=$RLM_CONFIG RLM_DATA_DIR=$RLM_DATA_DIR RLM_SOCKET=$RLM_SOCKET RLM_LOG_DIR=$RLM_LOG_DIR $B/rlm-mcp > $out.txt 2>&1
else
  $PY $BENCH/niah.py --corpus /tmp/corpora/corpus --seed 1 -- env RLM_CONFIG=$RLM_CONFIG RLM_DATA_DIR=$RLM_DATA_DIR RLM_SOCKET=$RLM_SOCKET RLM_LOG_DIR=$RLM_LOG_DIR $B/rlm-mcp > $out.txt 2>&1
fi
kill $pid; wait $pid 2>/dev/null || true
rm -rf $T
tail -5 $out.txt
