#!/usr/bin/env bash
# Cost of `netsplit check --workload register --consistency-models M` per model: whole-process
# wall time, CPU time and peak RSS (/usr/bin/time -v), median of RUNS runs. A benchmark, not a
# test: it prints numbers.
#
# Usage: benches/models_bench.sh [HISTORY.jsonl] [RUNS]
#   HISTORY: a recorded register history (a run's history.jsonl). Without one, a seeded
#   generator (below, SEED, OPS, KEYS, PROCS) writes one shaped like the register workload's.
#   ADVERSARIAL=1 also generates and times the adversarial shape: every op on one key, many
#   sessions writing concurrently, every write read (the sequential search can only branch).
#   NETSPLIT: the binary (default target/release/netsplit, else target/debug/netsplit).
#   TIME_LIMIT: --time-limit per check (default 60 s); past it a model is unknown.
#   MODELS: the models to time (default every one, then all); KEEP=DIR keeps the histories.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${2:-3}"
bin="${NETSPLIT:-$root/target/release/netsplit}"
[ -x "$bin" ] || bin="$root/target/debug/netsplit"
limit="${TIME_LIMIT:-60}"
if [ -n "${KEEP:-}" ]; then
  work="$KEEP" && mkdir -p "$work" # the generated histories are kept there
else
  work="$(mktemp -d)" && trap 'rm -rf "$work"' EXIT
fi

# gen FILE SEED OPS KEYS PROCS_PER_KEY: a register history from a simulated store. Each key is
# worked by PROCS_PER_KEY sessions at once (as the register workload's threads_per_key); the
# store applies each op at a random instant between its invocation and completion and answers
# reads from the key's current value, so the history is linearizable. Values are unique per key.
gen() {
  python3 - "$@" <<'PY'
import json, random, sys
path, seed, n, keys, ppk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
out = open(path, "w")
procs = keys * ppk
state = {}                  # key -> current value
last = {}                   # key -> last value handed out
pending = {}                # process -> (f, key, value, applied, result)
done = 0
idx = 0
def emit(p, t, f, v):
    global idx
    out.write(json.dumps({"index": idx, "process": p, "type": t, "f": f, "value": v}) + "\n")
    idx += 1
while done < n or pending:
    p = rng.randrange(procs)
    k = p // ppk
    if p not in pending:
        if done >= n:
            continue
        done += 1
        if rng.random() < 0.5:
            pending[p] = ["read", k, None, False, None]
            emit(p, "invoke", "read", [k, None])
        else:
            last[k] = last.get(k, 0) + 1
            pending[p] = ["write", k, last[k], False, None]
            emit(p, "invoke", "write", [k, last[k]])
    else:
        f, k2, v, applied, res = pending[p]
        if not applied:
            if f == "read":
                pending[p][4] = state.get(k2)
            else:
                state[k2] = v
            pending[p][3] = True
        else:
            emit(p, "ok", f, [k2, res if f == "read" else v])
            del pending[p]
out.close()
PY
}

# time_model FILE MODEL: "WALL CPU RSS_MIB VERDICT" medians over $runs runs.
time_model() {
  local file="$1" model="$2" walls=() cpus=() rss=() verdict="" tf
  tf=$(mktemp)
  for _ in $(seq "$runs"); do
    verdict=$(/usr/bin/time -v -o "$tf" "$bin" check --workload register --time-limit "$limit" \
      --consistency-models "$model" --json "$file" 2>/dev/null |
      python3 -c 'import json,sys; o=json.load(sys.stdin); print(o["valid"])' || true)
    walls+=("$(grep 'Elapsed (wall clock)' "$tf" | awk '{print $NF}' |
      awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')")
    cpus+=("$(awk '/User time/ {u=$NF} /System time/ {s=$NF} END {print u+s}' "$tf")")
    rss+=("$(awk '/Maximum resident/ {printf "%.0f", $NF/1024}' "$tf")")
  done
  rm -f "$tf"
  local mid=$(((runs + 1) / 2))
  med() { printf '%s\n' "$@" | sort -g | sed -n "${mid}p"; }
  echo "$(med "${walls[@]}") $(med "${cpus[@]}") $(med "${rss[@]}") $verdict"
}

report() {
  local file="$1" label="$2"
  local ops
  ops=$(grep -c '"invoke"' "$file" || true)
  echo "== $label: $file ($ops ops; $bin; median of $runs; time limit $limit s)"
  printf '%-22s %8s %8s %9s  %s\n' model wall_s cpu_s rss_mib verdict
  for m in ${MODELS:-linearizable sequential causal read-your-writes monotonic-reads \
    monotonic-writes writes-follow-reads all}; do
    read -r w c r v <<<"$(time_model "$file" "$m")"
    printf '%-22s %8s %8s %9s  %s\n' "$m" "$w" "$c" "$r" "$v"
  done
}

if [ -n "${1:-}" ]; then
  report "$1" "recorded"
else
  gen "$work/gen.jsonl" "${SEED:-1}" "${OPS:-100000}" "${KEYS:-500}" "${PROCS:-2}"
  report "$work/gen.jsonl" "generated (seed ${SEED:-1})"
fi
if [ "${ADVERSARIAL:-0}" = 1 ]; then
  gen "$work/adv.jsonl" "${SEED:-1}" "${ADV_OPS:-20000}" 1 "${ADV_PROCS:-50}"
  report "$work/adv.jsonl" "adversarial: one key, ${ADV_PROCS:-50} concurrent sessions"
fi
