#!/usr/bin/env node
// A netsplit custom client (docs/custom-clients.md): the register workload against etcd's v3
// JSON gateway. Node 18 or later, no packages.
const host = process.env.NETSPLIT_NODE || "127.0.0.1";
const url = `http://${host}:${process.env.NETSPLIT_OPT_PORT || 2379}/v3/kv/`;
const prefix = `netsplit/${require("path").basename(process.env.NETSPLIT_RUN_DIR || "")}/`;
const b64 = (s) => Buffer.from(s).toString("base64");

async function etcd(path, body) {
  const r = await fetch(url + path, { method: "POST", body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  return r.json();
}

async function invoke(f, [key, v]) {
  const k = b64(prefix + JSON.stringify(key));
  if (f === "read") {
    const kvs = (await etcd("range", { key: k })).kvs || [];
    return { type: "ok", value: [key, kvs.length ? JSON.parse(Buffer.from(kvs[0].value, "base64")) : null] };
  }
  if (f === "write") {
    await etcd("put", { key: k, value: b64(JSON.stringify(v)) });
    return { type: "ok" };
  }
  const [old, nu] = v; // cas
  const r = await etcd("txn", {
    compare: [{ key: k, target: "VALUE", result: "EQUAL", value: b64(JSON.stringify(old)) }],
    success: [{ requestPut: { key: k, value: b64(JSON.stringify(nu)) } }],
  });
  return r.succeeded ? { type: "ok" } : { type: "fail", error: "cas: the value differs" };
}

// One request at a time: netsplit sends the next line only after reading the answer.
require("readline").createInterface({ input: process.stdin }).on("line", async (line) => {
  const op = JSON.parse(line);
  let answer;
  try {
    answer = await invoke(op.f, op.value);
  } catch (e) {
    // reads change nothing and a refused connection sent nothing: fail; anything else: info
    const sure = op.f === "read" || e.cause?.code === "ECONNREFUSED";
    answer = { type: sure ? "fail" : "info", error: String(e.cause?.code || e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
});
