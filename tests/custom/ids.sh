#!/bin/sh
# A netsplit custom client in shell (tests/it/custom.rs): an id service. Each `generate` answers
# "<process>-<n>", unique because every process is a fresh program. `--dup N` answers the id
# before it again every N-th request (a buggy service). On start it writes its environment's
# NETSPLIT_ variables to stderr, which netsplit keeps as <run>/clients/<process>.log.
env | grep '^NETSPLIT_' | sort >&2
n=0
while IFS= read -r line; do
  n=$((n + 1))
  id=$n
  if [ "$1" = "--dup" ] && [ $((n % $2)) -eq 0 ]; then id=$((n - 1)); fi
  case "$line" in
    *'"generate"'*) printf '{"type":"ok","value":"%s-%s"}\n' "$NETSPLIT_PROCESS" "$id" ;;
    *) printf '{"type":"fail","error":"unknown request"}\n' ;;
  esac
done
