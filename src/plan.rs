//! Test plans: what to run, against what, with which faults, for how long (docs/plan-format.md). This module owns the plan's schema, its YAML form (parsed with `serde-saphyr`, which
//! names line and column; unknown keys are errors), the presets in `workloads/` and `nemeses/`
//! (read from the project directory when present, else compiled in), the merge order
//! (built-in defaults < preset < plan file < command-line flags), and validation. The resolved
//! plan — seed included — is what a run saves as `plan.yaml`, so `--plan <run>/plan.yaml`
//! replays it.

use crate::error::bad_input;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use netsplit_db::plan::{value_as_text, Deploy, TargetPlan};

/// A complete test plan.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Plan {
    /// Test name: the store directory under `<store>/`. Default: `<target>-<workload>`.
    pub name: Option<String>,
    /// The verdict the run must reach to pass (`valid`, `invalid`, `unknown`, `any`; default
    /// `valid`): a positive control expects `invalid` (`crate::report::verdict`).
    pub expect: crate::report::verdict::Expect,
    /// The database and its options (`target:`).
    pub target: TargetPlan,
    /// The workload and its checker (`workload:`).
    pub workload: WorkloadPlan,
    /// The faults and their schedule (`nemesis:`).
    pub nemesis: NemesisPlan,
    /// Where the test runs: a local cluster or machines over SSH (`nodes:`).
    pub nodes: NodesPlan,
    /// Concurrency, rate, time limit, seed, repetitions (`run:`).
    pub run: RunPlan,
    /// Where each value came from (file and line), for error messages; not saved.
    #[serde(skip)]
    pub origins: crate::opts::Origins,
}

/// The client workload: its name, and its own options (typed by the workload itself —
/// `crate::workload` — when the run is prepared, so unknown keys are still errors naming the
/// line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkloadPlan {
    /// A registered workload (`netsplit test --help` lists them).
    pub name: String,
    /// Seconds the checkers may run before saying "unknown"; `0` is no limit.
    pub check_time_limit: f64,
    /// The workload's own options (`keys`, `accounts`, …).
    #[serde(flatten)]
    pub opts: BTreeMap<String, Value>,
}

/// The fault schedule. Open for the fault-injection work to extend: unknown fault options go
/// in `opts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NemesisPlan {
    /// Faults to inject (`partition`, `kill`, …); empty: none.
    pub faults: Vec<String>,
    /// Seconds between a fault's start and stop, and between faults.
    pub interval: f64,
    /// `overlap` (default): each fault family runs its own cycle, shifted, so faults of
    /// different families are in force at once; `sequential`: one fault at a time.
    pub schedule: NemesisSchedule,
    /// Fault-specific options.
    pub opts: BTreeMap<String, Value>,
    /// Leave out the faults the target cannot take (no nodes, no kill, …) instead of refusing
    /// the plan. Set by the `default` preset, which `netsplit test` uses when neither the plan
    /// nor `--nemesis` names faults.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub if_able: bool,
}

/// How the nemesis schedule combines fault families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NemesisSchedule {
    /// Every family on its own cycle, shifted by a fraction of the interval (faults overlap).
    #[default]
    Overlap,
    /// One fault at a time: quiet, one fault drawn from the families, its heal, quiet, …
    Sequential,
}

impl std::str::FromStr for NemesisSchedule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "overlap" => Ok(NemesisSchedule::Overlap),
            "sequential" => Ok(NemesisSchedule::Sequential),
            _ => Err(format!(
                "unknown nemesis schedule {s:?} (expected overlap or sequential)"
            )),
        }
    }
}

/// Where the nodes are. All empty: no nodes (the `noop` target) or the local default cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodesPlan {
    /// A local cluster made by `netsplit cluster up --name`.
    pub cluster: Option<String>,
    /// Host names or addresses.
    pub nodes: Vec<String>,
    /// A file with one node per line.
    pub nodes_file: Option<String>,
    /// SSH user on the nodes (default root; others use `sudo -n`).
    pub username: String,
    /// SSH private key file (default: the SSH agent, then ~/.ssh/id_{ed25519,ecdsa,rsa}).
    pub ssh_private_key: Option<String>,
    /// SSH port for nodes listed without one (default 22).
    pub ssh_port: u16,
    /// Refuse host keys not already in ~/.ssh/known_hosts (`--strict-host-key-checking`).
    pub strict_host_key_checking: bool,
    /// No SSH to the nodes (`--no-ssh`): clients only, no faults (only with `deploy: existing`).
    pub no_ssh: bool,
}

/// How the run proceeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunPlan {
    /// Client workers, each with its own client bound to a node (round-robin).
    pub concurrency: usize,
    /// Total client ops per second; `0` is unlimited.
    pub rate: f64,
    /// Seconds of the main phase.
    pub time_limit: f64,
    /// Seed of the generators; random when not given, and recorded.
    pub seed: Option<u64>,
    /// Store directory.
    pub store: String,
    /// Runs of the test, one after another.
    pub test_count: u32,
    /// Leave the database running after the test.
    pub leave_db_running: bool,
    /// Keep what the workload wrote under the run's namespace (`netsplit/<run id>/`) instead
    /// of deleting it at the end (`--leave-data`; `deploy: existing`).
    pub leave_data: bool,
    /// Seconds before an op is abandoned as `info`.
    pub op_timeout: f64,
    /// Seconds to wait after healing before the final reads (only when faults were injected).
    pub quiesce: f64,
    /// Seconds the final phase may take.
    pub final_time_limit: f64,
}

impl Default for WorkloadPlan {
    fn default() -> Self {
        WorkloadPlan {
            name: "register".into(),
            check_time_limit: 300.0,
            opts: BTreeMap::new(),
        }
    }
}

impl Default for NemesisPlan {
    fn default() -> Self {
        NemesisPlan {
            faults: Vec::new(),
            interval: 10.0,
            schedule: NemesisSchedule::default(),
            opts: BTreeMap::new(),
            if_able: false,
        }
    }
}

impl Default for NodesPlan {
    fn default() -> Self {
        NodesPlan {
            cluster: None,
            nodes: Vec::new(),
            nodes_file: None,
            username: "root".into(),
            ssh_private_key: None,
            ssh_port: 22,
            strict_host_key_checking: false,
            no_ssh: false,
        }
    }
}

impl Default for RunPlan {
    fn default() -> Self {
        RunPlan {
            concurrency: 10,
            rate: 100.0,
            time_limit: 60.0,
            seed: None,
            store: "reports".into(),
            test_count: 1,
            leave_db_running: false,
            leave_data: false,
            op_timeout: 5.0,
            quiesce: 5.0,
            final_time_limit: 30.0,
        }
    }
}

impl Plan {
    /// The test name: `name`, or `<target>-<workload>`.
    pub fn test_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.target.name, self.workload.name))
    }

    /// The seed (resolved plans always have one).
    pub fn seed(&self) -> u64 {
        self.run.seed.unwrap_or(0)
    }

    /// Whether the nodes are local namespace nodes (a named or the default local cluster):
    /// they share this machine's kernel clock and filesystem.
    pub fn local_nodes(&self) -> bool {
        self.nodes.cluster.is_some()
            || (self.nodes.nodes.is_empty() && self.nodes.nodes_file.is_none())
    }

    /// What the database of the run reads of the plan.
    pub fn for_db(&self) -> netsplit_db::DbPlan {
        let disk = &crate::nemesis::families::disk::FAULTS;
        netsplit_db::DbPlan {
            target: self.target.clone(),
            origins: self.origins.clone(),
            seed: self.seed(),
            local_nodes: self.local_nodes(),
            leave_data: self.run.leave_data,
            disk_faults: self.nemesis.faults.iter().any(|f| disk.contains(&f.trim())),
        }
    }

    /// The plan as YAML (what `plan.yaml` holds).
    pub fn to_yaml(&self) -> Result<String> {
        serde_saphyr::to_string(self).context("serialising the plan as YAML")
    }

    /// Parses a plan from YAML text; `origin` names the file in errors. Errors are bad input
    /// naming the key, line and column.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Plan> {
        let mut plan = serde_saphyr::from_str::<Plan>(text)
            .map_err(|e| yaml_error(text, origin, &e.to_string()))?;
        plan.origins.add_yaml(text, origin);
        Ok(plan)
    }

    /// A target option as text (`--target-opt K=V` gives strings, YAML may give numbers).
    pub fn target_opt(&self, key: &str) -> Option<String> {
        self.target.opts.get(key).map(value_as_text)
    }

    /// Checks ranges and combinations; errors name the offending key.
    pub fn validate(&self) -> Result<()> {
        let r = &self.run;
        let bad = |k: &str, why: &str| Err(bad_input(format!("plan: {k} {why}")));
        if r.concurrency == 0 {
            return bad("run.concurrency", "must be at least 1");
        }
        if r.concurrency > 100_000 {
            return bad("run.concurrency", "must be at most 100000");
        }
        for (k, v) in [
            ("run.op_timeout", r.op_timeout),
            ("run.rate", r.rate),
            ("run.time_limit", r.time_limit),
            ("run.quiesce", r.quiesce),
            ("run.final_time_limit", r.final_time_limit),
            ("nemesis.interval", self.nemesis.interval),
            ("workload.check_time_limit", self.workload.check_time_limit),
        ] {
            if v.is_infinite() && v > 0.0 {
                let hint = if k == "run.rate" {
                    "; 0 means unlimited".to_string()
                } else {
                    format!("; at most {MAX_SECONDS} seconds (a year)")
                };
                return bad(k, &format!("must be a finite number, got {v}{hint}"));
            }
            if !v.is_finite() || v < 0.0 {
                return bad(k, &format!("must be a non-negative number, got {v}"));
            }
            // Durations become `Duration`s and deadlines (`Instant + d` panics on overflow);
            // a year is far beyond any test and far below every overflow.
            if k != "run.rate" && v > MAX_SECONDS {
                return bad(
                    k,
                    &format!("must be at most {MAX_SECONDS} seconds (a year), got {v:e}"),
                );
            }
        }
        if !(r.op_timeout.is_finite() && r.op_timeout > 0.0) {
            return bad("run.op_timeout", "must be a positive number of seconds");
        }
        if r.test_count == 0 {
            return bad("run.test_count", "must be at least 1");
        }
        if !self.nemesis.faults.is_empty() && self.nemesis.interval <= 0.0 {
            return bad("nemesis.interval", "must be positive when faults are given");
        }
        let name = self.test_name();
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return bad(
                "name",
                &format!(
                    "{name:?} must be letters, digits, '-', '_' or '.' (it names a directory)"
                ),
            );
        }
        if name.len() > MAX_NAME_CHARS {
            return bad(
                "name",
                &format!(
                    "is {} characters long; at most {MAX_NAME_CHARS} (it names a directory)",
                    name.len()
                ),
            );
        }
        if RESERVED_NAMES.contains(&name.as_str()) {
            return bad(
                "name",
                &format!(
                    "{name:?} is a name the store keeps for itself ({}); choose another",
                    RESERVED_NAMES.join(", ")
                ),
            );
        }
        if self.workload.name.trim().is_empty() {
            return bad("workload.name", "must name a workload");
        }
        Ok(())
    }
}

/// The longest test name: it is a directory of the store, and a file name may have 255 bytes.
pub const MAX_NAME_CHARS: usize = 200;

/// Names the store uses at its top level (src/store.rs: `latest`; the index of
/// crates/netsplit-report/src/index.rs: `index.html`): a test of that name would overwrite them.
pub const RESERVED_NAMES: &[&str] = &["latest", "index.html"];

/// The longest duration a plan may ask for, in seconds (a year).
pub const MAX_SECONDS: f64 = 31_536_000.0;

/// A YAML error as one line naming the file, line and column, plus the offending source line
/// (so a type error such as "invalid u64" also shows which key it is about).
fn yaml_error(text: &str, origin: &str, msg: &str) -> anyhow::Error {
    let first = one_line_yaml_error(msg);
    let line_no = first
        .split("line ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<usize>().ok());
    let src = line_no
        .and_then(|n| text.lines().nth(n.saturating_sub(1)))
        .map(str::trim)
        .filter(|l| !l.is_empty());
    match src {
        Some(l) if !first.contains(l) => bad_input(format!(
            "{origin}: {} (in `{}`)",
            crate::error::cut_line(&first, 300),
            crate::error::cut_line(l, 120)
        )),
        _ => bad_input(format!("{origin}: {}", crate::error::cut_line(&first, 300))),
    }
}

/// serde-saphyr errors can span lines (with a source snippet); keep the first line, which names
/// the problem and its position. Its leading `error: ` goes: the CLI already says `error:`.
fn one_line_yaml_error(msg: &str) -> String {
    let mut lines = msg.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("invalid YAML");
    let first = first.strip_prefix("error: ").unwrap_or(first).to_string();
    // The parser's advice for duplicate keys is about its own API, not the user's plan.
    let first = match first.split_once(", set DuplicateKeyPolicy") {
        Some((head, _)) => format!("{head} (each key may appear once in a mapping)"),
        None => first,
    };
    let first = plain_yaml_limit(&first);
    if first.contains("line") {
        return first;
    }
    // keep the position line if the message puts it on its own line
    match msg.lines().find(|l| l.contains("line")) {
        Some(pos) => format!("{first} ({})", pos.trim()),
        None => first,
    }
}

/// The parser's words for a limit it enforces — its own debug output (`budget breached:
/// Nodes { nodes: 250001 }`) or advice about its API (`use from_str_multiple`) — as what the
/// user did; the position before them is kept.
fn plain_yaml_limit(msg: &str) -> String {
    let (head, what) = if let Some((head, breach)) = msg.split_once("budget breached: ") {
        let kind = breach
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("");
        let what = match kind {
            "Aliases" | "AliasAnchorRatio" | "MergeKeys" => {
                "too many aliases (`*name`): a YAML alias bomb expands to more than netsplit reads"
            }
            "Anchors" => "too many anchors (`&name`)",
            "Depth" => "nested too deeply (more levels of lists and mappings than netsplit reads)",
            "Events" | "Nodes" => {
                "too many values (aliases that expand to a huge tree, or a file far larger than \
                 any plan)"
            }
            "Documents" => "more than one YAML document (a `---` line): give one document",
            "ScalarBytes" | "CommentBytes" | "InputBytes" => "too much text for a plan",
            _ => "past a limit of the YAML reader (aliases, nesting or size)",
        };
        (head, what)
    } else if let Some((head, _)) = msg.split_once("recursion limit exceeded") {
        (
            head,
            "nested too deeply (more levels of lists and mappings than netsplit reads)",
        )
    } else if let Some((head, rest)) = msg.split_once("non-finite float ") {
        let value = rest.split(" rejected").next().unwrap_or(rest);
        return format!(
            "{}: {value} is not a finite number (a duration is at most {MAX_SECONDS} seconds; \
             a rate of 0 is unlimited)",
            head.trim_end().trim_end_matches(':')
        );
    } else if let Some((head, _)) = msg.split_once("multiple YAML documents detected") {
        (
            head,
            "more than one YAML document (a `---` or `...` line): a plan is one document",
        )
    } else {
        return msg.to_string();
    };
    let head = head.trim_end().trim_end_matches(':');
    if head.is_empty() {
        what.to_string()
    } else {
        format!("{head}: {what}")
    }
}

/// The flags of `netsplit test` that override a plan's fields, flattened into its arguments
/// (`heal`, `client-check` and `test-all` fill in the few they take). `None`/empty means "not
/// given"; what is given replaces the plan's (`--cluster`, `--nodes`, `--nodes-file` and the SSH
/// flags together replace its `nodes:`; `--target-opt`s apply in the order given).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Test name (the store directory). Default: TARGET-WORKLOAD.
    #[arg(long)]
    pub name: Option<String>,
    /// Database to test (`noop` needs no nodes).
    #[arg(long)]
    pub target: Option<String>,
    /// Workload (`netsplit list` names them): register, set, counter, bank, list-append, …
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults: a comma-separated list of presets or fault names, or `none`.
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Where the nodes are (over the plan's `nodes:`).
    #[command(flatten)]
    pub nodes: crate::nodes::NodeArgs,
    /// Client workers.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Total client ops per second (0: unlimited).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of the main phase.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Seconds between fault starts and stops.
    #[arg(long)]
    pub nemesis_interval: Option<f64>,
    /// How fault families combine: `overlap` (each on its own shifted cycle, several in force
    /// at once; default) or `sequential` (one fault at a time).
    #[arg(long, value_name = "overlap|sequential")]
    pub nemesis_schedule: Option<NemesisSchedule>,
    /// Db option KEY=VALUE (repeatable).
    #[arg(long = "target-opt", value_name = "K=V")]
    pub target_opt: Vec<String>,
    /// Generator seed (random when not given; recorded in plan.yaml).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Store directory (default ./reports).
    #[arg(long)]
    pub store: Option<String>,
    /// Run the test this many times.
    #[arg(long)]
    pub test_count: Option<u32>,
    /// Leave the database running afterwards.
    #[arg(long)]
    pub leave_db_running: bool,
    /// `install` (default): netsplit installs and tears down its own copy of the database;
    /// `existing`: test a database that is already deployed (docs/deployed-databases.md).
    #[arg(long, value_name = "install|existing")]
    pub deploy: Option<Deploy>,
    /// Keep what the workload wrote under the run's namespace (`netsplit/<run id>/`) instead
    /// of deleting it at the end.
    #[arg(long)]
    pub leave_data: bool,
    /// No SSH to the nodes: clients only, no faults (with `--deploy existing`).
    #[arg(long)]
    pub no_ssh: bool,
    /// The verdict the run must reach to pass (overrides the plan's `expect`; default valid).
    /// The exit code stays the verdict's; the console, results.json and JUnit say pass or fail.
    #[arg(long, value_name = "valid|invalid|unknown|any")]
    pub expect: Option<crate::report::verdict::Expect>,
    /// Consistency models to check, comma-separated (the plan's workload `checker: {models}`
    /// for register, `consistency_models` for list-append and rw-register): register takes
    /// linearizable (default), sequential, causal, read-your-writes, monotonic-reads,
    /// monotonic-writes, writes-follow-reads, or all (docs/consistency-models.md).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub consistency_models: Option<Vec<String>>,
}

impl Overrides {
    /// The `--target-opt`s as `(KEY, VALUE)`, in the order given; a flag that is not
    /// `KEY=VALUE` is bad input.
    pub fn target_opts(&self) -> Result<Vec<(String, String)>> {
        self.target_opt.iter().map(|s| parse_kv(s)).collect()
    }
}

/// Parses `K=V` (for `--target-opt`).
pub fn parse_kv(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(bad_input(format!("--target-opt {s:?}: expected KEY=VALUE"))),
    }
}

/// The YAML workloads of the tree's `workloads/`, compiled in so an installed binary runs them
/// by name too (a file of the same name in a preset folder wins).
const EMBEDDED_WORKLOADS: &[(&str, &str)] = &[
    ("queue", include_str!("../workloads/queue.yaml")),
    ("ids", include_str!("../workloads/ids.yaml")),
    ("mutex", include_str!("../workloads/mutex.yaml")),
    (
        "keyed-register",
        include_str!("../workloads/keyed-register.yaml"),
    ),
];

/// Nemesis presets compiled into the binary.
const EMBEDDED_NEMESES: &[(&str, &str)] = &[
    ("none", include_str!("../nemeses/none.yaml")),
    ("default", include_str!("../nemeses/default.yaml")),
    ("all", include_str!("../nemeses/all.yaml")),
    ("clock", include_str!("../nemeses/clock.yaml")),
    ("disk", include_str!("../nemeses/disk.yaml")),
    ("kill", include_str!("../nemeses/kill.yaml")),
    ("packet", include_str!("../nemeses/packet.yaml")),
    ("partition", include_str!("../nemeses/partition.yaml")),
    (
        "partition-leader",
        include_str!("../nemeses/partition-leader.yaml"),
    ),
    ("pause", include_str!("../nemeses/pause.yaml")),
];

/// Directories searched for preset folders, in order: `$NETSPLIT_HOME`, then the nearest
/// ancestor of the running binary that has the folder (a source checkout's
/// `target/release/netsplit` finds the checkout).
fn preset_dirs(kind: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("NETSPLIT_HOME") {
        dirs.push(PathBuf::from(home).join(kind));
    }
    if let Ok(exe) = std::env::current_exe() {
        for anc in exe.ancestors().skip(1).take(5) {
            let d = anc.join(kind);
            if d.is_dir() {
                dirs.push(d);
                break;
            }
        }
    }
    dirs
}

/// A preset's YAML text and where it came from: a file in a preset folder if there is one,
/// else the compiled-in copy. `None`: no such preset.
pub fn preset(kind: &str, name: &str) -> Result<Option<(String, String)>> {
    if name.is_empty() || name.contains('/') || name.contains("..") {
        return Ok(None);
    }
    for dir in preset_dirs(kind) {
        let p = dir.join(format!("{name}.yaml"));
        if p.is_file() {
            let text = crate::input::read_text(&p, "preset", crate::input::MAX_TEXT_BYTES)?;
            return Ok(Some((p.display().to_string(), text)));
        }
    }
    let embedded = match kind {
        "nemeses" => EMBEDDED_NEMESES,
        "workloads" => EMBEDDED_WORKLOADS,
        _ => &[],
    };
    Ok(embedded
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, t)| (format!("<built-in {kind}/{n}.yaml>"), t.to_string())))
}

/// Known preset names of a kind (compiled-in plus any in preset folders), sorted.
pub fn preset_names(kind: &str) -> Vec<String> {
    let mut names: Vec<String> = match kind {
        "nemeses" => EMBEDDED_NEMESES
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
        "workloads" => EMBEDDED_WORKLOADS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
        _ => Vec::new(),
    };
    for dir in preset_dirs(kind) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "yaml") {
                    if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                        names.push(stem.to_string());
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Parses YAML into a JSON value, errors naming `origin` and the line.
fn yaml_value(text: &str, origin: &str) -> Result<Value> {
    let v: Value =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(text, origin, &e.to_string()))?;
    Ok(if v.is_null() {
        Value::Object(Default::default())
    } else {
        v
    })
}

/// Recursively overlays `over` on `base` (objects merge key by key; anything else replaces).
pub fn deep_merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => deep_merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// A user's preset for a workload, `workloads/<name>.yaml` in a preset folder (its keys are
/// laid under the plan's own), with the origins of its keys. Built-in workloads carry their
/// defaults in code; a preset is only for overriding them, or for a workload written in YAML.
fn workload_preset(name: &str, origins: &mut crate::opts::Origins) -> Result<Value> {
    let mut v = match preset("workloads", name)? {
        Some((origin, text)) => {
            origins.add_yaml_under(&text, &origin, "workload");
            yaml_value(&text, &origin)?
        }
        None => Value::Object(Default::default()),
    };
    if let Value::Object(m) = &mut v {
        m.insert("name".into(), Value::String(name.to_string()));
    }
    Ok(v)
}

/// Builds a nemesis section from `--nemesis LIST`: each item is a preset in `nemeses/` (its
/// faults, interval and options are merged) or else a fault name. `none` or empty: no faults.
fn nemesis_from_list(list: &str) -> Result<Value> {
    let mut out = serde_json::to_value(NemesisPlan::default())?;
    let mut faults: Vec<String> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((origin, text)) = preset("nemeses", item)? {
            serde_saphyr::from_str::<NemesisPlan>(&text)
                .map_err(|e| yaml_error(&text, &origin, &e.to_string()))?;
            let mut v = yaml_value(&text, &origin)?;
            if let Some(Value::Array(fs)) = v.get("faults") {
                faults.extend(fs.iter().map(value_as_text));
            }
            if let Value::Object(m) = &mut v {
                m.remove("faults");
            }
            deep_merge(&mut out, v);
        } else {
            faults.push(item.to_string());
        }
    }
    faults.dedup();
    out["faults"] = serde_json::to_value(faults)?;
    Ok(out)
}

/// Reads a plan file (if any), applies presets and command-line overrides, fills in a random
/// seed when none was given, and validates. Every error is bad input naming file, key or line.
pub fn resolve(plan_file: Option<&Path>, ov: &Overrides) -> Result<Plan> {
    // The flags are checked before the file is read.
    ov.target_opts()?;
    let file = match plan_file {
        Some(path) => Some((
            crate::input::read_text(path, "plan", crate::input::MAX_TEXT_BYTES)?,
            path.display().to_string(),
        )),
        None => None,
    };
    resolve_text(file, ov)
}

/// [`resolve`] for a plan file's text already read (`(text, origin)`, `origin` naming it in
/// errors), or none: everything `resolve` does after reading the file, so the fuzzers
/// (tests/fuzz/props.rs) run the same code on plan texts.
pub fn resolve_text(file: Option<(String, String)>, ov: &Overrides) -> Result<Plan> {
    let mut file_val = Value::Object(Default::default());
    let mut origins = crate::opts::Origins::default();
    let mut file_text = None;
    if let Some((text, origin)) = file {
        // typed parse first: unknown keys and bad values are reported with their line
        Plan::from_yaml(&text, &origin)?;
        file_val = yaml_value(&text, &origin)?;
        file_text = Some((text, origin));
    }
    let section = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let name_of = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_string);

    let mut merged = serde_json::to_value(Plan::default())?;

    // target: a different --target drops the file's target section (its options belong to
    // another database)
    let file_target = section(&file_val, "target");
    let target_name = ov
        .target
        .clone()
        .or_else(|| name_of(&file_target))
        .unwrap_or_else(|| "etcd".into());
    if name_of(&file_target).is_none_or(|n| n == target_name) && file_target.is_object() {
        deep_merge(&mut merged["target"], file_target);
    }
    merged["target"]["name"] = Value::String(target_name);

    // workload: preset, then the file's section when it is about the same workload
    let file_wl = section(&file_val, "workload");
    let wl_name = ov
        .workload
        .clone()
        .or_else(|| name_of(&file_wl))
        .unwrap_or_else(|| "register".into());
    deep_merge(
        &mut merged["workload"],
        workload_preset(&wl_name, &mut origins)?,
    );
    if name_of(&file_wl).is_none_or(|n| n == wl_name) && file_wl.is_object() {
        deep_merge(&mut merged["workload"], file_wl);
    }
    // The file's lines win over the preset's for the keys it gives.
    if let Some((text, origin)) = &file_text {
        origins.add_yaml(text, origin);
    }

    // nemesis: --nemesis replaces the file's section; a plan that names no faults gets the
    // `default` preset (partitions, kills and pauses, where the target can take them)
    let file_nem = section(&file_val, "nemesis");
    match &ov.nemesis {
        Some(list) => merged["nemesis"] = nemesis_from_list(list)?,
        None if file_nem.get("faults").is_none() => {
            merged["nemesis"] = nemesis_from_list("default")?;
            if file_nem.is_object() {
                deep_merge(&mut merged["nemesis"], file_nem);
            }
        }
        None => deep_merge(&mut merged["nemesis"], file_nem),
    }

    for k in ["nodes", "run"] {
        let s = section(&file_val, k);
        if s.is_object() {
            deep_merge(&mut merged[k], s);
        }
    }
    if let Some(n) = file_val.get("name") {
        merged["name"] = n.clone();
    }
    if let Some(e) = file_val.get("expect") {
        merged["expect"] = e.clone();
    }

    // A value the YAML reader took (`concurrency: "3"`) may still be the wrong type here:
    // the error names the key and where it came from (docs/plan-format.md promises both).
    let mut plan: Plan = serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        let why = crate::error::cut_line(&e.inner().to_string(), 200);
        match origins.get(&path) {
            Some(o) if path != "." => bad_input(format!("{o}: {path}: {why}")),
            _ if path != "." => bad_input(format!("plan: {path}: {why}")),
            _ => bad_input(format!("plan: {why}")),
        }
    })?;

    // scalar overrides
    if let Some(v) = &ov.name {
        plan.name = Some(v.clone());
    }
    if let Some(v) = ov.expect {
        plan.expect = v;
    }
    let target_opts = ov.target_opts()?;
    let mut flag_keys: Vec<&str> = Vec::new();
    for (k, v) in &target_opts {
        if flag_keys.contains(&k.as_str()) {
            return Err(bad_input(format!(
                "--target-opt {}: given twice; give each option once",
                crate::error::cut_line(k, 80)
            )));
        }
        flag_keys.push(k);
        plan.target.opts.insert(k.clone(), Value::String(v.clone()));
        origins.set(&format!("target.opts.{k}"), format!("--target-opt {k}={v}"));
    }
    same_option_twice(&plan.target.opts, &origins, &target_opts)?;
    let n = &ov.nodes;
    if !n.nodes.is_empty() {
        plan.nodes.nodes = n.nodes.clone();
    }
    if let Some(v) = &n.nodes_file {
        plan.nodes.nodes_file = Some(v.display().to_string());
    }
    if let Some(v) = &n.cluster {
        plan.nodes.cluster = Some(v.clone());
    }
    if let Some(v) = &n.username {
        plan.nodes.username = v.clone();
    }
    if let Some(v) = &n.ssh_private_key {
        plan.nodes.ssh_private_key = Some(v.display().to_string());
    }
    if let Some(v) = n.ssh_port {
        plan.nodes.ssh_port = v;
    }
    plan.nodes.strict_host_key_checking |= n.strict_host_key_checking;
    if let Some(v) = ov.concurrency {
        plan.run.concurrency = v;
    }
    if let Some(v) = ov.rate {
        plan.run.rate = v;
    }
    if let Some(v) = ov.time_limit {
        plan.run.time_limit = v;
    }
    if let Some(v) = ov.nemesis_interval {
        plan.nemesis.interval = v;
    }
    if let Some(v) = ov.nemesis_schedule {
        plan.nemesis.schedule = v;
    }
    if let Some(v) = ov.seed {
        plan.run.seed = Some(v);
    }
    if let Some(v) = &ov.store {
        plan.run.store = v.clone();
    }
    if let Some(v) = ov.test_count {
        plan.run.test_count = v;
    }
    if ov.leave_db_running {
        plan.run.leave_db_running = true;
    }
    if let Some(d) = ov.deploy {
        plan.target.deploy = d;
        origins.set("target.deploy", format!("--deploy {}", d.as_str()));
    }
    if ov.leave_data {
        plan.run.leave_data = true;
    }
    if ov.no_ssh {
        plan.nodes.no_ssh = true;
        origins.set("nodes.no_ssh", "--no-ssh");
    }
    if let Some(list) = &ov.consistency_models {
        let origin = format!("--consistency-models {}", list.join(","));
        match plan.workload.name.as_str() {
            "register" => {
                plan.workload
                    .opts
                    .insert("checker".into(), serde_json::json!({ "models": list }));
                origins.set("workload.checker", origin.clone());
                origins.set("workload.checker.models", origin);
            }
            "list-append" | "rw-register" => {
                plan.workload
                    .opts
                    .insert("consistency_models".into(), serde_json::json!(list));
                origins.set("workload.consistency_models", origin);
            }
            other => {
                return Err(bad_input(format!(
                    "--consistency-models applies to the register, list-append and rw-register \
                     workloads, not {other}"
                )))
            }
        }
    }
    if plan.run.seed.is_none() {
        plan.run.seed = Some(random_seed());
    }
    plan.origins = origins;
    plan.validate()?;
    Ok(plan)
}

/// The form of a target option's key that targets see: `read-mode`, `read_mode` and
/// `READ_MODE` are one option (a custom client gets each as `NETSPLIT_OPT_READ_MODE`,
/// crates/netsplit-db/src/custom/mod.rs), so a plan must not give two of them — one would silently win.
pub fn option_key_form(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Refuses two spellings of one target option, naming both and where each came from.
fn same_option_twice(
    opts: &BTreeMap<String, Value>,
    origins: &crate::opts::Origins,
    flags: &[(String, String)],
) -> Result<()> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for k in opts.keys() {
        if let Some(first) = seen.insert(option_key_form(k), k) {
            // (origins record `read-mode` and `read_mode` as one path: the flags say which)
            let at = |key: &str| {
                let from = match flags.iter().find(|(f, _)| f == key) {
                    Some((f, v)) => Some(format!("--target-opt {f}={v}")),
                    None => origins
                        .get(&format!("target.opts.{key}"))
                        .filter(|o| !o.starts_with("--target-opt"))
                        .map(str::to_string),
                };
                match from {
                    Some(o) => format!("{} ({})", key, crate::error::cut_line(&o, 80)),
                    None => key.to_string(),
                }
            };
            return Err(bad_input(format!(
                "target options {} and {} are the same option spelled two ways; give it once",
                crate::error::cut_line(&at(first), 120),
                crate::error::cut_line(&at(k), 120)
            )));
        }
    }
    Ok(())
}

/// A seed from the clock and the process id (the one place a seed is not given).
pub fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = t ^ ((std::process::id() as u64) << 32);
    // keep seeds below 2^53 so they survive any JSON/YAML reader as exact integers
    crate::generator::rng::splitmix64(&mut x) >> 11
}

#[cfg(test)]
mod tests;
