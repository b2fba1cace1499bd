#!/usr/bin/env python3
"""The small database the custom-client tests run their clients against (tests/it/custom.rs).

HTTP on 127.0.0.1: a key-value store speaking the part of etcd's v3 JSON gateway that
docs/examples/custom-clients/etcd_register.py uses (POST /v3/kv/range, /v3/kv/put, /v3/kv/txn
with one VALUE-EQUAL compare and one put), and a FIFO queue (POST /queue/enqueue {"value": v},
/queue/dequeue -> {"value": v or null}, /queue/drain -> {"values": [...]}). Every operation is
atomic under one lock: linearizable. `--lose-writes N` makes it acknowledge every N-th write
(a put, a successful compare-and-set, an enqueue) without applying it. Prints `PORT <n>` once
it listens.
"""
import argparse, json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--lose-writes", type=int, default=0)
args = ap.parse_args()

lock = threading.Lock()
kv, queue, writes = {}, [], [0]


def lose():
    """Whether this write is to be acknowledged and dropped."""
    writes[0] += 1
    return args.lose_writes > 0 and writes[0] % args.lose_writes == 0


def handle(path, body):
    with lock:
        if path == "/v3/kv/range":
            v = kv.get(body["key"])
            return {"kvs": [{"key": body["key"], "value": v}]} if v is not None else {}
        if path == "/v3/kv/put":
            if not lose():
                kv[body["key"]] = body["value"]
            return {}
        if path == "/v3/kv/txn":
            (c,) = body["compare"]
            (put,) = body["success"]
            assert c["target"] == "VALUE" and c["result"] == "EQUAL"
            if kv.get(c["key"]) != c["value"]:
                return {}  # like etcd, a false `succeeded` is left out
            if not lose():
                kv[put["requestPut"]["key"]] = put["requestPut"]["value"]
            return {"succeeded": True}
        if path == "/queue/enqueue":
            if not lose():
                queue.append(body["value"])
            return {}
        if path == "/queue/dequeue":
            return {"value": queue.pop(0) if queue else None}
        if path == "/queue/drain":
            out = list(queue)
            queue.clear()
            return {"values": out}
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        out = handle(self.path, body)
        data = json.dumps(out if out is not None else {"error": "no such path"}).encode()
        self.send_response(200 if out is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
print(f"PORT {server.server_address[1]}", flush=True)
server.serve_forever()
