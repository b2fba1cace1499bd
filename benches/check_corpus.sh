#!/usr/bin/env bash
# Whole-process time of `netsplit check` over the labelled corpus (median of N runs), and how far
# an unpartitioned check of the c50 kv histories gets. A benchmark, not a test: it prints numbers.
#
# Usage: benches/check_corpus.sh [CORPUS_DIR] [RUNS]
#   CORPUS_DIR defaults to $NETSPLIT_CORPUS, then ../shared/corpus next to the project.
#   Set NO_PARTITION_LIMIT=120 (seconds) to also run the --no-partition c50 experiment.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="${1:-${NETSPLIT_CORPUS:-$root/../shared/corpus}}"
runs="${2:-5}"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/release/netsplit"
[ -d "$corpus/porcupine" ] || { echo "no corpus at $corpus" >&2; exit 1; }
(cd "$root" && cargo build --release --quiet)

etcd=(check --format porcupine-etcd --model cas-register "$corpus"/porcupine/etcd/*.log)
kv=(check --format porcupine-kv --model kv "$corpus"/porcupine/kv/*.txt)

# Median wall time in seconds of running "$bin" with the given arguments $runs times.
median() {
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$bin" "$@" >/dev/null || [ $? -le 2 ]
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}

e=$(median "${etcd[@]}")
k=$(median "${kv[@]}")
echo "etcd corpus (103 files):  median ${e} s over $runs runs"
echo "kv corpus (6 files):      median ${k} s over $runs runs"
echo "both:                     $(echo "$e + $k" | bc -l) s"

if [ -n "${NO_PARTITION_LIMIT:-}" ]; then
  for f in c50-ok c50-bad; do
    t0=$(date +%s.%N)
    out=$("$bin" check --format porcupine-kv --model kv --no-partition \
      --time-limit "$NO_PARTITION_LIMIT" --json "$corpus/porcupine/kv/$f.txt" || true)
    t1=$(date +%s.%N)
    v=$(echo "$out" | sed -E 's/.*"valid":("unknown"|true|false).*/\1/')
    r=$(echo "$out" | sed -nE 's/.*"unknown_reason":"([^"]*)".*/\1/p')
    c=$(echo "$out" | sed -nE 's/.*"configurations":([0-9]+).*/\1/p')
    printf '%s --no-partition: valid=%s after %.1f s (%s configurations) %s\n' \
      "$f" "$v" "$(echo "$t1 - $t0" | bc -l)" "$c" "$r"
  done
fi
