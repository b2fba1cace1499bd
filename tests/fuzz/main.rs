//! Fuzzing every parser in a plain `cargo test`: the JSON Lines reader, the EDN reader, the
//! Jepsen EDN and Porcupine importers, format detection, `--initial`, and the plan parser.
//!
//! Seeds: the labelled corpus (`$NETSPLIT_CORPUS`, else `../shared/corpus`), the same histories
//! converted to JSON Lines and Jepsen EDN, generated histories with nested values (a
//! structure-aware generator), the project's own plans and presets, and `--initial` values.
//! Each seed is run as it is and then mutated `NETSPLIT_FUZZ_ROUNDS` times (default 3) with a
//! PRNG seeded by `NETSPLIT_FUZZ_SEED` (default 1): bit flips, inserted and deleted bytes,
//! tokens that hurt (deep nesting, integers beyond 64 bits, inexact decimals, huge times,
//! negative processes, byte order marks), spliced and repeated lines. For every input the
//! properties of `props.rs` must hold, no panic may happen, and the memory a parser holds at
//! its peak must stay under 32 MiB plus 64 bytes per input byte (a counting allocator measures
//! it; anything past 1 GiB fails the allocation outright rather than taking the machine).
//!
//! A failing input is written to the temporary directory and named in the failure, with the
//! seed and round that made it. `docs/fuzzing.md` says how to run longer.

mod props;

use netsplit::history::import::{self, Format};
use netsplit::history::{JsonlWriter, Op, Process};
use netsplit_check::rng::Rng;
use props::Db;
use serde_json::Value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

// ---- counting allocator ----

/// Bytes currently allocated, and the most since the last [`reset_peak`].
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// No input may make the process hold more than this: past it allocations fail (and the test
/// aborts) instead of swapping a shared machine to death.
const HARD_LIMIT: usize = 1 << 30;

struct Counting;

impl Counting {
    fn grow(&self, n: usize) -> bool {
        let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
        if now > HARD_LIMIT {
            LIVE.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        PEAK.fetch_max(now, Ordering::Relaxed);
        true
    }
}

// SAFETY: every call forwards to the system allocator; the counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if !self.grow(l.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(l) };
        if p.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if !self.grow(l.size()) {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc_zeroed(l) };
        if p.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > l.size() && !self.grow(new - l.size()) {
            return std::ptr::null_mut();
        }
        let q = unsafe { System.realloc(p, l, new) };
        if q.is_null() {
            if new > l.size() {
                LIVE.fetch_sub(new - l.size(), Ordering::Relaxed);
            }
        } else if new < l.size() {
            LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Starts a measurement: the peak becomes what is live now, which is returned.
fn reset_peak() -> usize {
    let now = LIVE.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

// ---- seeds ----

/// One input and the parsers it is for.
struct Seed {
    name: String,
    bytes: Vec<u8>,
    targets: Vec<Db>,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("NETSPLIT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus")));
    dir.join("porcupine").is_dir().then_some(dir)
}

fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| exts.iter().any(|x| e == *x)))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn jsonl_of(ops: &[Op]) -> Vec<u8> {
    let mut w = JsonlWriter::new(Vec::new());
    for op in ops {
        w.write(op).unwrap();
    }
    w.into_inner()
}

/// A JSON value as EDN text (keys as keywords when they can be).
fn edn_of(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(&Value::String(s.clone()).to_string()),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                edn_of(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    out.push(':');
                    out.push_str(k);
                } else {
                    out.push_str(&Value::String(k.clone()).to_string());
                }
                out.push(' ');
                edn_of(x, out);
            }
            out.push('}');
        }
    }
}

/// A Jepsen EDN history of `ops`: a vector of op maps, one per line.
fn jepsen_edn_of(ops: &[Op]) -> Vec<u8> {
    let mut s = String::from("[");
    for op in ops {
        let process = match op.process {
            Process::Client(p) => p.to_string(),
            Process::Nemesis => ":nemesis".into(),
        };
        s.push_str(&format!(
            "{{:process {process}, :type :{}, :f :{}, :time {}, :value ",
            op.kind, op.f, op.time
        ));
        edn_of(&op.value, &mut s);
        s.push_str("}\n ");
    }
    s.push_str("]\n");
    s.into_bytes()
}

/// A random JSON value, nested up to `depth`: what the corpus lacks (txns, maps, strings with
/// escapes, floats, big and negative integers).
fn value(rng: &mut Rng, depth: u32) -> Value {
    let scalar = |rng: &mut Rng| -> Value {
        match rng.below(8) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(0.5)),
            2 => Value::from(rng.below(10) as i64 - 3),
            3 => Value::from(rng.next_u64()),
            4 => Value::from(-(rng.below(1 << 62) as i64)),
            5 => serde_json::json!((rng.below(1000) as f64) / 8.0),
            6 => Value::String(["x", "k1", "a\"b", "tab\there", "é ü", ""][rng.index(6)].into()),
            _ => Value::String(format!("v{}", rng.below(100))),
        }
    };
    if depth == 0 || rng.chance(0.5) {
        return scalar(rng);
    }
    let n = rng.below(5) as usize;
    if rng.chance(0.7) {
        Value::Array((0..n).map(|_| value(rng, depth - 1)).collect())
    } else {
        Value::Object(
            (0..n)
                .map(|i| (format!("k{i}"), value(rng, depth - 1)))
                .collect(),
        )
    }
}

/// A generated history: register and txn ops over a few processes, a nemesis now and then,
/// with random values.
fn generated(rng: &mut Rng, n: usize) -> Vec<Op> {
    use netsplit::history::OpType;
    let mut ops = Vec::new();
    let mut open: Vec<Option<(String, Value)>> = vec![None; 4];
    for i in 0..n {
        let p = rng.index(open.len());
        let mut op = match open[p].take() {
            None if rng.chance(0.05) => Op::new(
                Process::Nemesis,
                OpType::Info,
                "start-partition",
                value(rng, 2),
            ),
            None => {
                let (f, v) = match rng.below(4) {
                    0 => ("read", Value::Null),
                    1 => ("write", value(rng, 1)),
                    2 => ("cas", serde_json::json!([value(rng, 0), value(rng, 0)])),
                    _ => (
                        "txn",
                        serde_json::json!([
                            ["append", rng.below(3), rng.below(9)],
                            ["r", rng.below(3), null]
                        ]),
                    ),
                };
                open[p] = Some((f.to_string(), v.clone()));
                Op::new(Process::Client(p as u64), OpType::Invoke, f, v)
            }
            Some((f, v)) => {
                let kind = [OpType::Ok, OpType::Fail, OpType::Info][rng.index(3)];
                let out = if f == "read" { value(rng, 2) } else { v };
                Op::new(Process::Client(p as u64), kind, f, out)
            }
        };
        op.index = i as u64;
        op.time = i as u64 * 1_000 + rng.below(1_000);
        ops.push(op);
    }
    ops
}

fn seeds(rng: &mut Rng) -> Vec<Seed> {
    let auto = Db::Import(Format::Auto);
    let jsonl = vec![Db::JsonlBytes, Db::Import(Format::Jsonl), auto];
    let edn = vec![Db::Import(Format::JepsenEdn), Db::Edn, auto];
    let mut out = Vec::new();
    match corpus() {
        Some(c) => {
            for (sub, format) in [
                ("porcupine/etcd", Format::PorcupineEtcd),
                ("porcupine/kv", Format::PorcupineKv),
            ] {
                for f in files(&c.join(sub), &["log", "txt"]) {
                    let bytes = std::fs::read(&f).unwrap();
                    let name = f.file_name().unwrap().to_string_lossy().into_owned();
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if let Ok((ops, _)) = import::parse(&text, format) {
                        out.push(Seed {
                            name: format!("{name}.jsonl"),
                            bytes: jsonl_of(&ops),
                            targets: jsonl.clone(),
                        });
                        out.push(Seed {
                            name: format!("{name}.edn"),
                            bytes: jepsen_edn_of(&ops),
                            targets: edn.clone(),
                        });
                    }
                    let targets = if format == Format::PorcupineKv {
                        vec![Db::Import(format), Db::Edn, auto]
                    } else {
                        vec![Db::Import(format), auto]
                    };
                    out.push(Seed {
                        name,
                        bytes,
                        targets,
                    });
                }
            }
        }
        None => {
            // Not silent: the built-in and generated seeds below still run.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIP fuzz corpus seeds: no corpus at ../shared/corpus (set NETSPLIT_CORPUS); \
                 fuzzing generated and built-in seeds only"
            );
        }
    }
    for i in 0..24 {
        let ops = generated(rng, 4 + 8 * i);
        out.push(Seed {
            name: format!("generated-{i}.jsonl"),
            bytes: jsonl_of(&ops),
            targets: jsonl.clone(),
        });
        out.push(Seed {
            name: format!("generated-{i}.edn"),
            bytes: jepsen_edn_of(&ops),
            targets: edn.clone(),
        });
    }
    for (i, text) in [
        "null",
        "0",
        "true",
        "\"\"",
        "[1, 2.5, \"x\"]",
        "{\"x\": 0, \"y\": [null, {\"z\": -1}]}",
        "18446744073709551615",
    ]
    .into_iter()
    .enumerate()
    {
        out.push(Seed {
            name: format!("initial-{i}.json"),
            bytes: text.as_bytes().to_vec(),
            targets: vec![Db::Initial],
        });
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        "plans",
        "workloads",
        "nemeses",
        "targets/etcd",
        "targets/redis",
    ] {
        for f in files(&root.join(dir), &["yaml"]) {
            out.push(Seed {
                name: format!("{dir}/{}", f.file_name().unwrap().to_string_lossy()),
                bytes: std::fs::read(&f).unwrap(),
                targets: vec![Db::Plan, Db::PlanFile],
            });
        }
    }
    // Answers of custom client programs (docs/custom-clients.md), well formed and not.
    for (i, a) in [
        r#"{"type": "ok"}"#,
        r#"{"type":"ok","value":[1,{"k":"v"}]}"#,
        r#"{"type":"fail","error":"cas mismatch"}"#,
        r#"{"type":"info","error":{"code":14,"why":["a","b"]}}"#,
        r#"{"type":"ok","value":null}"#,
        r#"{"type":"invoke"}"#,
        r#"{"value": 1}"#,
        "[1, 2, 3]",
        "\u{1b}[2J{\"type\":\"ok\"}\r",
    ]
    .iter()
    .enumerate()
    {
        out.push(Seed {
            name: format!("answer-{i}"),
            bytes: a.as_bytes().to_vec(),
            targets: vec![Db::Answer],
        });
    }
    out
}

// ---- mutations ----

/// Tokens that have hurt parsers, or might.
const DICTIONARY: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    "\"",
    "\\",
    ":",
    ",",
    "#_",
    "#{",
    "#inst ",
    "##NaN",
    ";",
    "\n",
    "\r\n",
    "\u{feff}",
    "nil",
    "null",
    ":nemesis",
    "\"nemesis\"",
    "-1",
    "0",
    "-0",
    "18446744073709551616",
    "18446744073709551617N",
    "-9223372036854775809",
    "1.00000000000000001",
    "0.1000000000000000055511151231257827",
    "1e400",
    "1e-400",
    "1/3",
    "3/4",
    "1e18",
    "1000000000000000000",
    "99999999999999999999999",
    "NaN",
    "inf",
    "\\u00",
    "\\uD800",
    "\"time\":",
    "\"process\":",
    "\"type\":\"ok\"",
    ":type :info",
    "~",
    "&",
    "*a",
    "&a [*a, *a, *a, *a]",
    "!!binary",
    "---\n",
    "- ",
    "\t",
    "é",
    "\u{0}",
];

fn mutate(rng: &mut Rng, input: &[u8], others: &[Seed]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.index(v.len() + 1);
        match rng.below(12) {
            0 if !v.is_empty() => {
                let i = rng.index(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.below(256) as u8),
            2 if !v.is_empty() => {
                let end = (at + 1 + rng.index(64)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 if !v.is_empty() => {
                let start = rng.index(v.len());
                let end = (start + 1 + rng.index(256)).min(v.len());
                let chunk = v[start..end].to_vec();
                v.splice(at..at, chunk);
            }
            4 | 5 => {
                let tok = DICTIONARY[rng.index(DICTIONARY.len())];
                v.splice(at..at, tok.bytes());
            }
            6 => {
                // Deep nesting, past any limit.
                let open = ["[", "{:a ", "(", "{\"a\":", "#{", "#_ "][rng.index(6)];
                let n = [10, 127, 128, 129, 1_000, 10_000][rng.index(6)];
                v.splice(at..at, open.repeat(n).bytes());
            }
            7 if !others.is_empty() => {
                let o = &others[rng.index(others.len())].bytes;
                if !o.is_empty() {
                    let start = rng.index(o.len());
                    let end = (start + 1 + rng.index(512)).min(o.len());
                    v.splice(at..at, o[start..end].iter().copied());
                }
            }
            8 => {
                // One line repeated many times.
                let lines: Vec<&[u8]> = v.split(|&b| b == b'\n').collect();
                let line = lines[rng.index(lines.len())].to_vec();
                let times = 1 + rng.index(300);
                let mut rep = Vec::with_capacity((line.len() + 1) * times);
                for _ in 0..times {
                    rep.extend_from_slice(&line);
                    rep.push(b'\n');
                }
                v.splice(at..at, rep);
            }
            9 => v.truncate(at),
            10 => {
                // A wide value: many elements in one event.
                let n = [1_000, 100_000][rng.index(2)];
                v.splice(at..at, "0,".repeat(n).bytes());
            }
            _ => {
                let lines: Vec<Vec<u8>> = v.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
                if lines.len() > 1 {
                    let (a, b) = (rng.index(lines.len()), rng.index(lines.len()));
                    let mut lines = lines;
                    lines.swap(a, b);
                    v = lines.join(&b'\n');
                }
            }
        }
    }
    v.truncate(4 << 20);
    v
}

// ---- the test ----

struct Failure {
    what: String,
    file: PathBuf,
}

fn save(seed: &str, round: u64, target: Db, input: &[u8]) -> PathBuf {
    let safe: String = seed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let p = std::env::temp_dir().join(format!(
        "netsplit-fuzz-{}-{safe}-{round}-{}.txt",
        std::process::id(),
        target.name().replace(':', "_")
    ));
    let _ = std::fs::write(&p, input);
    p
}

/// The tests measure memory with one global counter: they run one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn every_parser_keeps_its_properties_on_mutated_inputs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seed = env_u64("NETSPLIT_FUZZ_SEED", 1);
    let rounds = env_u64("NETSPLIT_FUZZ_ROUNDS", 3);
    let mut rng = Rng::new(seed);
    let seeds = seeds(&mut rng);
    fuzz_seeds("fuzz", &seeds, rounds, seed, &mut rng);
}

/// Plan files (`netsplit test --plan`) and custom clients' answers, a few thousand inputs:
/// the seeds of both, and generated answers, each mutated many times.
#[test]
fn plan_files_and_client_answers_keep_their_properties_on_thousands_of_inputs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seed = env_u64("NETSPLIT_FUZZ_SEED", 1);
    let mut rng = Rng::new(seed);
    let mut chosen: Vec<Seed> = seeds(&mut rng)
        .into_iter()
        .filter_map(|mut s| {
            s.targets.retain(|t| matches!(t, Db::PlanFile | Db::Answer));
            (!s.targets.is_empty()).then_some(s)
        })
        .collect();
    for i in 0..40 {
        let kind = ["ok", "fail", "info", "invoke", ""][rng.index(5)];
        let mut m = serde_json::Map::new();
        if !kind.is_empty() {
            m.insert("type".into(), Value::String(kind.into()));
        }
        if rng.below(2) == 0 {
            m.insert("value".into(), value(&mut rng, 0));
        }
        if rng.below(2) == 0 {
            m.insert("error".into(), value(&mut rng, 1));
        }
        chosen.push(Seed {
            name: format!("generated-answer-{i}"),
            bytes: Value::Object(m).to_string().into_bytes(),
            targets: vec![Db::Answer],
        });
    }
    let plans = chosen
        .iter()
        .filter(|s| s.targets.contains(&Db::PlanFile))
        .count();
    let answers = chosen.len() - plans;
    assert!(
        plans >= 10 && answers >= 40,
        "{plans} plan seeds, {answers} answer seeds"
    );
    let rounds = env_u64("NETSPLIT_FUZZ_ROUNDS", 3).max(3000 / chosen.len() as u64);
    fuzz_seeds("fuzz plans and answers", &chosen, rounds, seed, &mut rng);
}

/// Runs every seed as it is and `rounds` times mutated through each of its parsers, and fails
/// naming (and saving) the inputs that broke a property.
fn fuzz_seeds(label: &str, seeds: &[Seed], rounds: u64, seed: u64, rng: &mut Rng) {
    let started = Instant::now();
    let mut failures: Vec<Failure> = Vec::new();
    let mut inputs = 0u64;
    let mut worst = (0f64, String::new());
    // Panics are collected, not printed as they happen (there may be many of one kind).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for s in seeds {
        for round in 0..=rounds {
            let input = if round == 0 {
                s.bytes.clone()
            } else {
                mutate(rng, &s.bytes, seeds)
            };
            for &target in &s.targets {
                inputs += 1;
                let base = reset_peak();
                let r = std::panic::catch_unwind(|| props::run(target, &input));
                let held = PEAK.load(Ordering::Relaxed).saturating_sub(base);
                let bound = (32 << 20) + 64 * input.len();
                let ratio = held as f64 / bound as f64;
                if ratio > worst.0 {
                    worst = (ratio, format!("{} round {round} {}", s.name, target.name()));
                }
                let what = match r {
                    Err(p) => Some(format!(
                        "panic: {}",
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    )),
                    Ok(Err(e)) => Some(e),
                    Ok(Ok(())) if held > bound => Some(format!(
                        "held {} KiB at its peak for a {}-byte input (bound {} KiB)",
                        held >> 10,
                        input.len(),
                        bound >> 10
                    )),
                    Ok(Ok(())) => None,
                };
                if let Some(what) = what {
                    failures.push(Failure {
                        what: format!("{} round {round} ({}): {what}", s.name, target.name()),
                        file: save(&s.name, round, target, &input),
                    });
                }
            }
        }
    }
    std::panic::set_hook(hook);
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "{label}: {inputs} inputs from {} seeds, {rounds} rounds, seed {seed}, {:.1} s; \
             most memory: {:.0}% of its bound ({})",
            seeds.len(),
            started.elapsed().as_secs_f64(),
            worst.0 * 100.0,
            worst.1
        );
    }
    let report: Vec<String> = failures
        .iter()
        .take(10)
        .map(|f| format!("{}\n    input: {}", f.what, f.file.display()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {inputs} inputs broke a property (NETSPLIT_FUZZ_SEED={seed}):\n{}",
        failures.len(),
        report.join("\n")
    );
}
