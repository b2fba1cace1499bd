#!/usr/bin/env python3
"""A custom client that misbehaves (tests/it/custom.rs): it passes each request to a
well-behaved client (the command after `--`) and every N-th request of this program does
something else instead of answering:

  crash=N    the request is performed, then this program exits (status 3) without answering
  garbage=N  the request is performed, then it answers a line that is not an answer
             (alternately text that is not JSON, and an object whose "type" is "maybe")
  hang=N     it never answers (nor reads another line)
"""
import subprocess, sys, time

mode, n = sys.argv[1].split("=")
n = int(n)
inner = subprocess.Popen(sys.argv[sys.argv.index("--") + 1:], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
count = 0
for line in sys.stdin:
    count += 1
    inner.stdin.write(line)
    inner.stdin.flush()
    answer = inner.stdout.readline()
    if count % n == 0:
        if mode == "crash":
            print("misbehave: crashing on purpose", file=sys.stderr, flush=True)
            sys.exit(3)
        if mode == "garbage":
            bad = "hello, this is not JSON" if (count // n) % 2 else '{"type": "maybe"}'
            print(bad, flush=True)
            continue
        if mode == "hang":
            time.sleep(3600)
    sys.stdout.write(answer)
    sys.stdout.flush()
