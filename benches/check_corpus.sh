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

# "WALL CPU": medians in seconds (wall time, user+sys CPU time) of running "$bin" with the
# given arguments $runs times. CPU time is printed too because on a loaded machine the wall
# time mostly measures waiting for a core.
median() {
  local walls=() cpus=() tf
  tf=$(mktemp)
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S" -o "$tf" "$bin" "$@" >/dev/null || true
    read -r w u s <<<"$(tail -n 1 "$tf")"
    walls+=("$w")
    cpus+=("$(echo "$u + $s" | bc -l)")
  done
  rm -f "$tf"
  local mid=$(((runs + 1) / 2))
  echo "$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "${mid}p")" \
    "$(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "${mid}p")"
}

read -r ew ec <<<"$(median "${etcd[@]}")"
read -r kw kc <<<"$(median "${kv[@]}")"
echo "etcd corpus (103 files):  median wall ${ew} s, cpu ${ec} s over $runs runs"
echo "kv corpus (6 files):      median wall ${kw} s, cpu ${kc} s over $runs runs"
echo "both:                     wall $(echo "$ew + $kw" | bc -l) s, cpu $(echo "$ec + $kc" | bc -l) s"
echo "(load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"

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
