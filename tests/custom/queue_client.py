#!/usr/bin/env python3
"""A netsplit custom client for the queue of tests/custom/server.py (the YAML queue workload of
tests/it/custom.rs): enqueue e -> ok; dequeue -> ok with the element or null; drain -> ok with
every element taken."""
import json, os, sys, urllib.request

URL = f"http://127.0.0.1:{os.environ['NETSPLIT_OPT_PORT']}/queue/"


def post(path, body):
    req = urllib.request.Request(URL + path, json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


for line in sys.stdin:
    op = json.loads(line)
    f = op["f"]
    try:
        if f == "enqueue":
            post("enqueue", {"value": op["value"]})
            answer = {"type": "ok"}
        elif f == "dequeue":
            answer = {"type": "ok", "value": post("dequeue", {})["value"]}
        elif f == "drain":
            answer = {"type": "ok", "value": post("drain", {})["values"]}
        else:
            answer = {"type": "fail", "error": f"unknown operation {f}"}
    except Exception as e:
        # whether an enqueue or a dequeue happened is unknown
        answer = {"type": "info", "error": repr(e)}
    print(json.dumps(answer), flush=True)
