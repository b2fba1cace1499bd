#!/usr/bin/env python3
"""A netsplit custom client (docs/custom-clients.md): the register workload against etcd's
v3 JSON gateway. Python 3 standard library only."""
import base64, json, os, sys, urllib.error, urllib.request

URL = f"http://{os.environ.get('NETSPLIT_NODE') or '127.0.0.1'}:{os.environ.get('NETSPLIT_OPT_PORT', '2379')}/v3/kv/"
PREFIX = f"netsplit/{os.path.basename(os.environ.get('NETSPLIT_RUN_DIR', ''))}/"  # one run's keys
b64 = lambda s: base64.b64encode(s.encode()).decode()

def etcd(path, body):
    req = urllib.request.Request(URL + path, json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)

def invoke(f, key, v):
    k = b64(PREFIX + json.dumps(key))
    if f == "read":
        kvs = etcd("range", {"key": k}).get("kvs", [])
        return {"type": "ok", "value": [key, json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None]}
    if f == "write":
        etcd("put", {"key": k, "value": b64(json.dumps(v))})
        return {"type": "ok"}  # no value: the request's
    old, new = v  # cas
    r = etcd("txn", {"compare": [{"key": k, "target": "VALUE", "result": "EQUAL", "value": b64(json.dumps(old))}],
                     "success": [{"requestPut": {"key": k, "value": b64(json.dumps(new))}}]})
    return {"type": "ok"} if r.get("succeeded") else {"type": "fail", "error": "cas: the value differs"}

for line in sys.stdin:
    op = json.loads(line)
    try:
        answer = invoke(op["f"], *op["value"])
    except Exception as e:
        # A read changes nothing, and a refused connection sent nothing: those certainly did not
        # happen (fail). Any other error may have reached the database: unknown (info).
        sure = op["f"] == "read" or isinstance(getattr(e, "reason", None), ConnectionRefusedError)
        answer = {"type": "fail" if sure else "info", "error": repr(e)}
    print(json.dumps(answer), flush=True)
