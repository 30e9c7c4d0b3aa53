#!/usr/bin/env bash
# gc_beside.sh: times `rlm gc --grace 0` deleting the texts of one session
# beside another that stays (the kept session's documents are what SQLite's
# foreign-key check once read per text deleted).
#
#   bench/gc_beside.sh BIN_DIR KEPT_GLOB DELETED_GLOB
#   bench/gc_beside.sh target/release "$HOME/.cargo/registry/src/**/*.rs" \
#       "$(rustc --print sysroot)/share/doc/**/*.html"
#
# A daemon of its own on a fresh data folder under a temp dir (removed after).
set -euo pipefail
bin=$(cd "$1" && pwd); kept=$2; deleted=$3
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
export RLM_DATA_DIR=$dir/data RLM_SOCKET=$dir/sock RLM_LOG_DIR=$dir/log
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
session() { "$bin/rlm" call rlm.session.create '{"config":{"max_tool_calls":100000}}' | field session_id; }
load() { "$bin/rlm" call rlm.docs.load "{\"session_id\":\"$1\",\"sources\":[{\"type\":\"glob\",\"path\":\"$2\"}]}" | field loaded_count; }
a=$(session); b=$(session)
echo "gc_beside.sh: kept session: $(load "$a" "$kept") documents; deleted session: $(load "$b" "$deleted") documents"
"$bin/rlm" sessions rm "$b" >/dev/null
start=$(date +%s.%N)
removed=$("$bin/rlm" gc --grace 0 --json | field texts_removed)
end=$(date +%s.%N)
echo "gc_beside.sh: gc removed $removed texts in $(python3 -c "print(f'{$end - $start:.2f}')") s"
"$bin/rlm" daemon stop >/dev/null
