//! `netsplit client-check`: tries a custom client program (`target: custom`,
//! docs/custom-clients.md) on a few requests of a workload's vocabulary, without a run, and
//! reports per request what it sent, what came back and whether that is a well-formed answer
//! (a line written after the answer, before the next request, is not: the program answers
//! before reading, or twice) — then the last lines of the program's stderr. What the program
//! wrote is shown cut, its control characters masked. Exit 0 when every answer was well
//! formed, 1 when one was not (or none came in time), 254 on bad input.

use crate::db::custom::Custom;
use crate::db::Db;
use crate::plan::{self, Overrides};
use crate::registry::Registry;
use std::path::PathBuf;
use std::time::Duration;

/// The arguments of `netsplit client-check`.
#[derive(Debug, clap::Args)]
pub struct ClientCheckArgs {
    /// A test plan (YAML) whose workload and target options to use; flags override it.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Workload whose vocabulary to send (`netsplit list`; or a YAML workload in the plan).
    #[arg(long)]
    pub workload: Option<String>,
    /// Db option KEY=VALUE (repeatable): `client=CMD` is the program's command line.
    #[arg(long = "target-opt", value_name = "K=V")]
    pub target_opt: Vec<String>,
    /// Requests of the main phase to send.
    #[arg(long, default_value_t = 8)]
    pub requests: usize,
    /// Seconds to wait for each answer (default: the plan's run.op_timeout).
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Generator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A local cluster whose first node the client is bound to (NETSPLIT_NODE); nothing is run
    /// on the nodes.
    #[arg(long, conflicts_with = "nodes")]
    pub cluster: Option<String>,
    /// Node hosts, comma-separated (the client is bound to the first).
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
}

/// Runs `netsplit client-check`; returns the process exit code.
pub fn run(args: ClientCheckArgs, registry: &Registry) -> anyhow::Result<u8> {
    let ov = Overrides {
        target: Some("custom".into()),
        workload: args.workload.clone(),
        nemesis: Some("none".into()),
        target_opt: args.target_opt.clone(),
        seed: Some(args.seed),
        ..Overrides::default()
    };
    let plan = plan::resolve(args.plan.as_deref(), &ov)?;
    let prepared = registry.prepare(&plan)?;
    let plan = &prepared.plan;
    let nodes = if args.cluster.is_some() || !args.nodes.is_empty() {
        crate::nodes::resolve(&crate::nodes::NodeArgs {
            cluster: args.cluster.clone(),
            nodes: args.nodes.clone(),
            ..Default::default()
        })?
        .nodes
    } else {
        Vec::new()
    };
    let node = (!nodes.is_empty()).then_some(0);
    let target: Custom = registry.build_db_as(plan, nodes.clone(), Vec::new())?;
    let timeout = args.timeout.unwrap_or(plan.run.op_timeout);
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= plan::MAX_SECONDS) {
        return Err(crate::error::bad_input(format!(
            "--timeout: must be a positive number of seconds, at most {} (a year), got {timeout}",
            plan::MAX_SECONDS
        )));
    }
    let timeout = Duration::from_secs_f64(timeout);

    // The requests: the first of the main phase, then one round of the final phase.
    let wl = &prepared.workload;
    let threads = plan.run.concurrency.max(1);
    let main = crate::generator::limit(args.requests as u64, wl.workload.generator());
    let mut reqs: Vec<(String, serde_json::Value, &str)> =
        crate::generator::sim::simulate(main, threads, args.seed, 1_000_000, u64::MAX)
            .into_iter()
            .map(|i| (i.f, i.value, "main"))
            .collect();
    if let Some(fg) = wl.workload.final_generator() {
        reqs.extend(
            crate::generator::sim::simulate(fg, 1, args.seed, 1_000_000, u64::MAX)
                .into_iter()
                .map(|i| (i.f, i.value, "final")),
        );
    }
    // the programs' stderr goes to <dir>/clients/<process>.log, shown at the end
    let dir = std::env::temp_dir().join(format!("netsplit-client-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = RemoveOnDrop(dir.clone());
    target.on_run_dir(&dir);

    say!(
        "client-check: {}\n  workload {} (vocabulary {}), {} requests, {timeout:?} each{}",
        target.command(),
        wl.name,
        wl.vocabulary,
        reqs.len(),
        match node {
            Some(i) => format!(", bound to {} ({})", nodes[i].name, nodes[i].host),
            None => String::new(),
        }
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut bad = 0usize;
    let mut counts = [0usize; 3];
    let mut processes = Vec::new();
    rt.block_on(async {
        let mut client = target.open(node);
        let mut process = 0u64;
        crate::db::Client::set_process(&mut client, process);
        for (i, (f, value, phase)) in reqs.iter().enumerate() {
            processes.push(process);
            let request = String::from_utf8_lossy(&crate::db::custom::protocol::request_line(f, value))
                .trim_end()
                .to_string();
            say!("\n#{} ({phase}, process {process})\n  sent     {request}", i + 1);
            let got = tokio::time::timeout(timeout, client.call(f, value)).await;
            let answer = client.last_answer().map(|b| shown(String::from_utf8_lossy(b).trim_end()));
            match &answer {
                Some(a) => say!("  answered {a}"),
                None => say!("  answered (nothing)"),
            }
            let restart = match got {
                Err(_) => {
                    bad += 1;
                    say!("  NOT WELL FORMED: no answer within {timeout:?} (a run records info and restarts it)");
                    client = target.open(node);
                    true
                }
                Ok(c) => {
                    let err = c.error.clone().unwrap_or_default();
                    let protocol = ["client crashed", "client answered garbage", "client did not start"]
                        .iter()
                        .any(|w| err.starts_with(w));
                    if protocol {
                        bad += 1;
                        say!("  NOT WELL FORMED: {} (a run records info and restarts it)", shown(&err));
                    } else {
                        let kind = c.kind.to_string();
                        counts[match c.kind {
                            crate::history::OpType::Ok => 0,
                            crate::history::OpType::Fail => 1,
                            _ => 2,
                        }] += 1;
                        let value_shown = if c.value == *value && answer.as_deref().is_some_and(|a| !a.contains("\"value\"")) {
                            "the request's value".to_string()
                        } else {
                            crate::history::limits::quote_value(&c.value)
                        };
                        match &c.error {
                            Some(e) => say!("  well formed: {kind} {}, error \"{}\"", shown(&value_shown), shown(e)),
                            None => say!("  well formed: {kind} {}", shown(&value_shown)),
                        }
                    }
                    protocol || c.kind == crate::history::OpType::Info
                }
            };
            // A program a line ahead answers before reading its request, or twice per
            // request: in a run, that line would be taken as the next request's answer.
            let restart = if restart {
                restart
            } else if let Some(extra) = client.extra_output(SETTLE).await {
                bad += 1;
                say!(
                    "  NOT WELL FORMED: it wrote `{}` after its answer, before the next request \
                     (it answers before reading its request, or twice per request; a run \
                     records info and restarts it)",
                    shown(String::from_utf8_lossy(&extra).trim_end())
                );
                true
            } else {
                false
            };
            if restart {
                process += 1;
                crate::db::Client::set_process(&mut client, process);
            }
        }
        crate::db::Client::close(&mut client).await;
    });
    processes.dedup();
    for p in processes {
        let log = dir.join("clients").join(format!("{p}.log"));
        let (text, cut) = tail_of(&log, STDERR_TAIL_BYTES);
        if text.trim().is_empty() {
            continue;
        }
        say!("\nstderr of process {p}:");
        let lines: Vec<&str> = text.lines().collect();
        let skip = lines.len().saturating_sub(STDERR_LINES);
        if cut > 0 {
            say!("  … ({cut} bytes before)");
        }
        if skip > 0 {
            say!("  … ({skip} lines)");
        }
        for l in &lines[skip..] {
            say!("  {}", crate::error::cut_line(l, STDERR_LINE_CHARS));
        }
    }
    say!(
        "\n{} requests: {} ok, {} fail, {} info, {bad} not well formed",
        reqs.len(),
        counts[0],
        counts[1],
        counts[2]
    );
    Ok(if bad > 0 { 1 } else { 0 })
}

/// How long client-check waits after each answer for output nobody asked for.
const SETTLE: Duration = Duration::from_millis(100);

/// The client's stderr shown: its last lines, each cut, from its last bytes.
const STDERR_LINES: usize = 40;
const STDERR_LINE_CHARS: usize = 200;
const STDERR_TAIL_BYTES: u64 = 64 << 10;

/// What a client wrote, for the terminal: one line, cut, its control characters (escape
/// sequences that would move the cursor or recolour the screen) shown as `?`.
fn shown(s: &str) -> String {
    crate::error::cut_line(s, 300)
}

/// The last `max` bytes of a file as text, and how many bytes came before them.
fn tail_of(path: &std::path::Path, max: u64) -> (String, u64) {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return (String::new(), 0);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return (String::new(), 0);
    }
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    (String::from_utf8_lossy(&buf).into_owned(), start)
}

/// Removes a scratch directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
