//! The runner: one test run from resolved plan to stored verdict (docs/architecture.md, "A run").
//!
//! Lifecycle: target setup (install + start) → open one client per worker (worker `w` bound to
//! node `w mod n`) → main phase (the workload's generator under the plan's rate and time limit,
//! with the nemesis schedule beside it) → heal → quiesce → final phase (the final generator, a
//! read on every worker) → close clients → snarf node logs → teardown (unless
//! `leave_db_running`) → checkers → `results.json` → exit code.
//!
//! Heal and log snarfing run on every exit path: a failed phase, a panic (the phases run in a
//! spawned task whose panic is caught), and SIGINT/SIGTERM — the first signal stops generating
//! and finishes the run with what was recorded (healed, checked, stored); a second one heals and
//! exits at once.
//!
//! Workers are tokio tasks fed by one coordinator that owns the (pure) generator: it asks the
//! generator with the current time and free threads, sends each op to its worker, and feeds
//! completions back. A worker whose op times out records `info` and continues as a new process
//! (the next unused number) with a fresh client; an `info` completion also moves it to a new
//! process. Clients are told their process (`Client::set_process`) before their first op and
//! after every change, and the target gets the run directory once it exists
//! (`Db::on_run_dir`). With fewer workers than nodes, the final phase adds a worker per unbound node, so
//! final reads come from every node.

pub mod recorder;

pub use recorder::{Recorder, RecorderHandle};

use crate::checker::Validity;
use crate::control::{Node, Remote};
use crate::db::{Client, CommonOpts, Completion, Db, Deployment};
use crate::error::bad_input;
use crate::generator::{self as gen, BoxGen, Ctx, Event, GenOp, Invocation, Rng, Thread};
use crate::history::{Op, OpType, Process};
use crate::nemesis::{Ability, Nemesis, NemesisEnv};
use crate::plan::{Deploy, NemesisSchedule, Plan};
use crate::registry::{Prepared, Registry};
use crate::store;
use crate::workload::Instance;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

pub use crate::report::RunOutcome;

/// Signal state shared by a whole `netsplit test` invocation.
#[derive(Clone)]
pub struct Interrupt {
    tx: Arc<watch::Sender<u32>>,
    rx: watch::Receiver<u32>,
}

impl Default for Interrupt {
    fn default() -> Self {
        let (tx, rx) = watch::channel(0);
        Interrupt {
            tx: Arc::new(tx),
            rx,
        }
    }
}

impl Interrupt {
    /// How many signals have arrived.
    pub fn count(&self) -> u32 {
        *self.rx.borrow()
    }
    /// Records a signal (also used by tests to stop a run).
    pub fn raise(&self) {
        self.tx.send_modify(|n| *n += 1);
    }
    /// Resolves once at least one signal has arrived.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|n| *n > 0).await;
    }
    /// Installs SIGINT/SIGTERM handlers feeding this state. A second signal runs
    /// `on_second` (heal and exit at once).
    pub fn install_signal_handlers(&self, on_second: Arc<dyn Fn() + Send + Sync>) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                me.raise();
                if me.count() == 1 {
                    eprintln!(
                        "\nnetsplit: interrupted: stopping, healing, and checking what was \
                         recorded (signal again to heal and exit at once)"
                    );
                } else {
                    eprintln!("\nnetsplit: second signal: healing and exiting");
                    on_second();
                }
            }
        });
        Ok(())
    }
}

/// What the emergency path (second signal) needs: the current run's nemesis and recorder.
#[derive(Default, Clone)]
pub struct Emergency {
    inner: Arc<Mutex<Option<EmergencyState>>>,
}

type EmergencyState = (Arc<Nemesis>, Recorder, PathBuf);

impl Emergency {
    fn set(&self, v: Option<EmergencyState>) {
        if let Ok(mut g) = self.inner.lock() {
            *g = v;
        }
    }
    /// Heals, flushes the history, and exits the process: 2 (unknown: nothing was checked)
    /// when the heal succeeded, 255 when it did not.
    pub fn heal_and_exit(&self) -> ! {
        let cur = self.inner.lock().ok().and_then(|g| g.clone());
        let mut code = crate::error::EXIT_UNKNOWN;
        if let Some((nem, rec, dir)) = cur {
            let err = nem
                .heal_and_verify()
                .err()
                .map(|e| crate::error::one_line(&e));
            rec.nemesis("heal", Value::Null, err.clone());
            rec.flush(Duration::from_secs(2));
            match err {
                Some(e) => {
                    eprintln!("netsplit: interrupted twice; heal failed: {e}");
                    code = crate::error::EXIT_HARNESS;
                }
                None => eprintln!(
                    "netsplit: interrupted twice: faults healed, history kept, not checked \
                     (netsplit analyze {})",
                    dir.display()
                ),
            }
        }
        std::process::exit(code as i32)
    }
}

/// Runs the plan `test_count` times, printing each run's summary. Returns every run's outcome
/// (stops early when interrupted).
pub async fn run_tests(
    plan: &Plan,
    registry: &Registry,
    interrupt: &Interrupt,
    emergency: &Emergency,
) -> Result<Vec<RunOutcome>> {
    run_tests_with(plan, registry, interrupt, emergency, &mut print_summary).await
}

/// [`run_tests`], handing each finished run to `on_run` instead of printing its summary
/// (`netsplit test-all` prints it around its progress bar).
pub async fn run_tests_with(
    plan: &Plan,
    registry: &Registry,
    interrupt: &Interrupt,
    emergency: &Emergency,
    on_run: &mut (dyn FnMut(&RunOutcome) + Send),
) -> Result<Vec<RunOutcome>> {
    let mut outs = Vec::new();
    for i in 0..plan.run.test_count {
        if interrupt.count() > 0 {
            break;
        }
        let mut p = plan.clone();
        if i > 0 {
            // each repetition gets its own op stream, recorded in its plan.yaml
            let mut x = plan.seed().wrapping_add(i as u64);
            p.run.seed = Some(gen::rng::splitmix64(&mut x) >> 11);
        }
        p.run.test_count = 1;
        let out = run_once(&p, registry, interrupt, emergency).await?;
        on_run(&out);
        outs.push(out);
    }
    Ok(outs)
}

/// Everything the phases share.
struct Shared {
    plan: Plan,
    workload: Instance,
    target: Arc<dyn Db>,
    nemesis: Arc<Nemesis>,
    nodes: Vec<Node>,
    remotes: Vec<Arc<dyn Remote>>,
    recorder: Recorder,
    interrupt: Interrupt,
    active_faults: Mutex<Vec<String>>,
    phase_end: Mutex<Option<Instant>>,
    generating: AtomicBool,
    /// The next unused process number (a worker whose op ended `info` continues as a new
    /// process). Workers start as processes `0..max(concurrency, nodes)`.
    next_process: AtomicU64,
}

/// Everything a run needs that can be refused as bad input, settled before a run directory
/// exists: the plan checked against the registry, the nodes connected, the target and the
/// nemesis built, and — for a database that is already deployed — the preflight passed.
pub struct Ready {
    /// The plan checked against the registry.
    pub prepared: Prepared,
    /// The plan's nodes.
    pub nodes: Vec<Node>,
    /// The connected remotes: `remotes[i]` reaches `nodes[i]`.
    pub remotes: Vec<Arc<dyn Remote>>,
    /// The target database, built from the plan.
    pub target: Arc<dyn Db>,
    /// The nemesis that runs the plan's faults.
    pub nemesis: Arc<Nemesis>,
    /// The run's data namespace (`netsplit/<run id>/`).
    pub namespace: String,
    /// What the preflight found, a line per node (empty unless `deploy: existing`).
    pub preflight: Vec<String>,
}

/// The names of the scheduled fault families that need one of `abilities` of the target.
fn faults_needing(plan: &Plan, registry: &Registry, abilities: &[Ability]) -> Vec<String> {
    plan.nemesis
        .faults
        .iter()
        .filter(|f| {
            registry
                .faults()
                .iter()
                .any(|d| &d.name == *f && d.needs.iter().any(|a| abilities.contains(a)))
        })
        .cloned()
        .collect()
}

/// Checks the plan, connects the nodes, builds the target and the nemesis, and runs the
/// preflight of a deployed database (see [`Ready`]).
pub fn ready(plan: &Plan, registry: &Registry) -> Result<Ready> {
    let prepared = registry.prepare(plan)?;
    let plan = &prepared.plan;
    let existing = plan.target.deploy == Deploy::Existing;
    let db_plan = plan.for_db();
    let common = CommonOpts::from_plan(&db_plan)?;
    // Nodes given as client endpoints alone: clients only, no SSH.
    let endpoint_nodes = existing
        && common.endpoints.is_some()
        && plan.nodes.cluster.is_none()
        && plan.nodes.nodes.is_empty()
        && plan.nodes.nodes_file.is_none();
    let client_only = plan.nodes.no_ssh || endpoint_nodes;
    let shared = plan.local_nodes() && !endpoint_nodes;
    let mut deploy = Deployment::from_plan(&db_plan, shared, client_only)?;
    let faults: Vec<&String> = plan
        .nemesis
        .faults
        .iter()
        .filter(|f| !matches!(f.trim(), "" | "none"))
        .collect();
    // The `default` preset (no faults named) leaves out what cannot run instead.
    let named = !plan.nemesis.if_able;
    if client_only && named && !faults.is_empty() {
        return Err(bad_input(format!(
            "nemesis.faults {faults:?}: faults need SSH to the nodes, and this run has none ({}): it records and checks the workload without faults (--nemesis none)",
            if plan.nodes.no_ssh {
                "--no-ssh"
            } else {
                "nodes given as endpoints only"
            }
        )));
    }
    if existing && named && deploy.process.is_none() {
        let need = faults_needing(plan, registry, &[Ability::Kill, Ability::Pause]);
        if let Some(f) = need.first() {
            return Err(bad_input(format!(
                "nemesis.faults: {f} needs the database's process, and netsplit did not start it: name it with --target-opt process=NAME, pidfile=PATH or service=UNIT"
            )));
        }
    }
    let (nodes, remotes) = if endpoint_nodes {
        let eps: Vec<(String, u16)> = deploy
            .endpoints
            .iter()
            .map(|e| (e.host.clone(), e.port.unwrap_or(0)))
            .collect();
        (crate::nodes::nodes_from_endpoints(&eps)?, Vec::new())
    } else if client_only {
        (crate::nodes::resolve_plan_no_ssh(plan)?, Vec::new())
    } else {
        let def = &prepared.target;
        crate::nodes::resolve_plan(
            plan,
            def.needs_nodes || (def.nodes_optional && crate::nodes::given(plan)),
        )
        .map_err(|e| if existing { e.context("preflight") } else { e })?
    };
    deploy.shared_process_table = shared && !nodes.is_empty();
    let namespace = deploy.namespace();
    let target = prepared.build_target(db_plan, &nodes, &remotes, deploy)?;
    if client_only {
        let preflight = target.preflight(false)?;
        for l in &preflight {
            eprintln!("netsplit: preflight: {l}");
        }
        // The plan records that no fault runs (the `default` preset's are left out).
        let mut prepared = prepared;
        prepared.plan.nemesis.faults = Vec::new();
        return Ok(Ready {
            prepared,
            nodes,
            remotes,
            target,
            nemesis: Arc::new(Nemesis::none()),
            namespace,
            preflight,
        });
    }
    let local = !nodes.is_empty() && plan.local_nodes();
    let control_ip = match (&plan.nodes.cluster, local) {
        (Some(name), true) => {
            crate::cluster::load(name)?.and_then(|info| info.control_address.parse().ok())
        }
        (None, true) => crate::cluster::load(crate::nodes::DEFAULT_CLUSTER)?
            .and_then(|info| info.control_address.parse().ok()),
        _ => None,
    };
    let nemesis = Nemesis::build(NemesisEnv {
        plan,
        nodes: nodes.clone(),
        remotes: remotes.clone(),
        target: target.clone(),
        defs: registry.faults(),
        local_nodes: local,
        control_ip,
    })?;
    // `all` and presets resolved: the plan records the families that will run.
    let mut prepared = prepared;
    prepared.plan.nemesis.faults = nemesis.scheduled().to_vec();
    // Before anything changes: a deployed database is where the plan says, and can be started
    // again if the run kills it.
    let restart = !faults_needing(&prepared.plan, registry, &[Ability::Kill]).is_empty();
    let preflight = target.preflight(restart)?;
    for l in &preflight {
        eprintln!("netsplit: preflight: {l}");
    }
    let nemesis = Arc::new(nemesis);
    Ok(Ready {
        prepared,
        nodes,
        remotes,
        target,
        nemesis,
        namespace,
        preflight,
    })
}

/// One run: creates the run directory, runs the lifecycle, stores the results.
pub async fn run_once(
    plan: &Plan,
    registry: &Registry,
    interrupt: &Interrupt,
    emergency: &Emergency,
) -> Result<RunOutcome> {
    // Everything that can be refused as bad input is settled before a run directory exists.
    let r = ready(plan, registry)?;
    let plan = &r.prepared.plan;
    let (namespace, preflight) = (r.namespace.clone(), r.preflight.clone());
    let nem = r.nemesis.clone();
    let (nodes, remotes, target) = (r.nodes, r.remotes, r.target);

    let run_dir = store::create_run_dir(Path::new(&plan.run.store), &plan.test_name())?;
    std::fs::write(run_dir.join("plan.yaml"), plan.to_yaml()?)
        .with_context(|| format!("writing {}/plan.yaml", run_dir.display()))?;
    store::update_latest(Path::new(&plan.run.store), &run_dir)?;
    let _log = store::RunLog::open(&run_dir.join("netsplit.log"))?;
    target.on_run_dir(&run_dir);
    let started = Instant::now();
    tracing::info!(run_dir = %run_dir.display(), seed = plan.seed(), "run starting");
    tracing::info!(
        deploy = plan.target.deploy.as_str(),
        namespace = %namespace,
        "the workload's data lives under the run's namespace"
    );
    for l in &preflight {
        tracing::info!("preflight: {l}");
    }

    let handle = Recorder::start(&run_dir.join("history.jsonl"), Instant::now())?;
    let first_free_process = plan.run.concurrency.max(nodes.len()) as u64;
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        workload: r.prepared.workload.clone(),
        target,
        nemesis: nem.clone(),
        nodes,
        remotes,
        recorder: handle.recorder(),
        interrupt: interrupt.clone(),
        active_faults: Mutex::new(Vec::new()),
        phase_end: Mutex::new(None),
        generating: AtomicBool::new(false),
        next_process: AtomicU64::new(first_free_process),
    });
    emergency.set(Some((nem, handle.recorder(), run_dir.clone())));

    let progress = tokio::spawn(progress_loop(shared.clone()));
    // The phases run in their own task so that a panic in them is caught here and cleanup runs.
    let body = tokio::spawn(phases(shared.clone()));
    let mut error = match body.await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(crate::error::one_line(&e)),
        Err(j) if j.is_panic() => Some(format!("a run phase panicked: {}", panic_text(j))),
        Err(j) => Some(format!("a run phase was cancelled: {j}")),
    };
    shared.generating.store(false, Ordering::Relaxed);
    progress.abort();
    if std::io::stderr().is_terminal() && !progress_sunk() {
        eprintln!();
    }
    if let Some(e) = &error {
        tracing::error!(error = %e, "run failed; healing and collecting logs");
    }

    // Cleanup on every path.
    if let Err(e) = cleanup(shared.clone(), &run_dir).await {
        let msg = crate::error::one_line(&e);
        tracing::error!(error = %msg, "cleanup");
        error.get_or_insert(msg);
    }
    emergency.set(None);
    drop(shared);

    let ops = handle.finish()?;
    let interrupted = interrupt.count() > 0;
    let ops_arc = Arc::new(ops);
    let ops_for_check = ops_arc.clone();
    let wl = r.prepared.workload.workload.clone();
    let limit = check_time_limit(plan);
    let (valid, checkers) = tokio::task::spawn_blocking(move || {
        crate::workload::check(wl.as_ref(), &ops_for_check, limit)
    })
    .await
    .context("the checkers panicked")?;
    let valid = if error.is_some() {
        // a run that broke says nothing for sure about the database
        valid.merge(Validity::Unknown)
    } else {
        valid
    };
    let results = store::results_json(
        plan,
        &ops_arc,
        valid,
        checkers,
        &run_dir,
        interrupted,
        error.as_deref(),
        started.elapsed(),
    );
    let mut results = results;
    results["data_namespace"] = json!(namespace);
    store::write_results(&run_dir, &results)?;
    store::write_report(&run_dir, &results, &ops_arc);
    crate::report::index::write_logged(Path::new(&plan.run.store));
    tracing::info!(valid = valid.as_str(), "run done");
    Ok(RunOutcome {
        run_dir,
        valid,
        interrupted,
        error,
        results,
    })
}

fn panic_text(j: tokio::task::JoinError) -> String {
    let p = j.into_panic();
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

/// Runs a blocking closure off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow::anyhow!("blocking task failed: {e}"))?
}

/// The checkers' time budget: `workload.check_time_limit` seconds, `0` for none.
pub fn check_time_limit(plan: &Plan) -> Option<Duration> {
    let s = plan.workload.check_time_limit;
    (s > 0.0).then(|| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
}

async fn phases(sh: Arc<Shared>) -> Result<()> {
    let plan = &sh.plan;
    // Before anything else: whatever an earlier run left on these nodes (it may have been
    // killed before it could heal) is found and healed, and the history says so.
    let s = sh.clone();
    let lo = blocking(move || Ok(s.nemesis.heal_leftovers())).await?;
    if !lo.found.is_empty() || !lo.is_clean() {
        tracing::warn!(
            found = %lo.found.join("; "),
            left = %lo.left.join("; "),
            "healed what an earlier run left on the nodes"
        );
        sh.recorder.nemesis(
            "note",
            json!({
                "note": "healed what an earlier run left on the nodes",
                "found": lo.found,
                "healed": lo.heal.healed,
                "errors": lo.heal.errors,
                "left": lo.left,
            }),
            None,
        );
    }
    let s = sh.clone();
    blocking(move || s.target.setup().context("setting up the target")).await?;
    let s = sh.clone();
    let notes = blocking(move || s.nemesis.setup().context("setting up the nemesis")).await?;
    for n in notes {
        tracing::warn!("{n}");
        sh.recorder.nemesis("note", json!({ "note": n }), None);
    }

    let workload = sh.workload.workload.clone();
    let n = plan.run.concurrency;
    let (comp_tx, mut comp_rx) = mpsc::unbounded_channel::<Event>();
    let mut dispatch: Vec<mpsc::Sender<Invocation>> = Vec::with_capacity(n);
    let mut workers = Vec::with_capacity(n);
    for w in 0..n {
        let node = if sh.nodes.is_empty() {
            None
        } else {
            Some(w % sh.nodes.len())
        };
        let client = sh
            .target
            .client(node)
            .await
            .with_context(|| format!("opening the client of worker {w}"))?;
        let (tx, rx) = mpsc::channel::<Invocation>(1);
        dispatch.push(tx);
        workers.push(tokio::spawn(worker(
            sh.clone(),
            w,
            node,
            client,
            rx,
            comp_tx.clone(),
        )));
    }
    tracing::info!(workers = n, "clients open; main phase");

    // main phase, with the nemesis schedule beside it
    let mut rng = Rng::new(plan.seed());
    let main_gen = gen::time_limit(
        plan.run.time_limit,
        gen::rate(plan.run.rate, workload.generator()),
    );
    let nem_faults = sh.nemesis.scheduled().to_vec();
    let nem_gen = gen::time_limit(
        plan.run.time_limit,
        match plan.nemesis.schedule {
            NemesisSchedule::Overlap => gen::nemesis_overlap(nem_faults, plan.nemesis.interval),
            NemesisSchedule::Sequential => gen::nemesis_cycle(nem_faults, plan.nemesis.interval),
        },
    );
    let nem_rng = rng.fork();
    sh.generating.store(true, Ordering::Relaxed);
    set_phase_end(&sh, plan.run.time_limit);
    let (nem_stop_tx, nem_stop_rx) = watch::channel(false);
    let nem_task = tokio::spawn(nemesis_loop(sh.clone(), nem_gen, nem_rng, nem_stop_rx));
    let main = coordinate(&sh, main_gen, &mut rng, &dispatch, &mut comp_rx).await;
    // the client ops are over (time limit, exhausted, or interrupted): so is the fault schedule
    let _ = nem_stop_tx.send(true);
    let nem_result = nem_task.await;
    main?;
    nem_result.map_err(|e| anyhow::anyhow!("nemesis task failed: {e}"))??;

    // heal, quiesce, final phase
    heal(&sh).await?;
    if sh.interrupt.count() == 0 {
        if !plan.nemesis.faults.is_empty() && plan.run.quiesce > 0.0 {
            tracing::info!(secs = plan.run.quiesce, "quiescing");
            set_phase_end(&sh, plan.run.quiesce);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(plan.run.quiesce)) => {}
                _ = sh.interrupt.wait() => {}
            }
        }
        if let Some(fg) = workload.final_generator() {
            if sh.interrupt.count() == 0 {
                // Final reads from every node: with fewer workers than nodes, one more worker
                // (and client) for each node no worker is bound to.
                for w in n..sh.nodes.len() {
                    match sh.target.client(Some(w)).await {
                        Ok(client) => {
                            let (tx, rx) = mpsc::channel::<Invocation>(1);
                            dispatch.push(tx);
                            workers.push(tokio::spawn(worker(
                                sh.clone(),
                                w,
                                Some(w),
                                client,
                                rx,
                                comp_tx.clone(),
                            )));
                        }
                        Err(e) => tracing::warn!(
                            node = %sh.nodes[w].name,
                            error = %crate::error::one_line(&e),
                            "no client for this node's final read"
                        ),
                    }
                }
                tracing::info!("final phase");
                set_phase_end(&sh, plan.run.final_time_limit);
                let g = gen::time_limit(plan.run.final_time_limit, fg);
                coordinate(&sh, g, &mut rng, &dispatch, &mut comp_rx).await?;
            }
        }
    }
    sh.generating.store(false, Ordering::Relaxed);
    drop(comp_tx);

    // close clients: workers close theirs when their channel closes
    drop(dispatch);
    for w in workers {
        let _ = w.await;
    }
    Ok(())
}

fn set_phase_end(sh: &Shared, secs: f64) {
    if let Ok(mut g) = sh.phase_end.lock() {
        *g = Some(Instant::now() + Duration::from_secs_f64(secs));
    }
}

/// Drives a generator over the workers until it is exhausted or a signal arrives, then waits
/// for the ops in flight (bounded: workers time out on their own).
async fn coordinate(
    sh: &Shared,
    mut g: BoxGen,
    rng: &mut Rng,
    dispatch: &[mpsc::Sender<Invocation>],
    comp_rx: &mut mpsc::UnboundedReceiver<Event>,
) -> Result<()> {
    let all: Vec<Thread> = (0..dispatch.len()).collect();
    let mut free: Vec<Thread> = all.clone();
    let rec = &sh.recorder;
    let complete = |ev: Event, free: &mut Vec<Thread>, g: &mut BoxGen, rng: &mut Rng| {
        if let Err(pos) = free.binary_search(&ev.thread) {
            free.insert(pos, ev.thread);
        }
        let ctx = Ctx {
            time: ev.time,
            free,
            all: &all,
            rng,
        };
        g.update(&ctx, &ev);
    };
    'outer: loop {
        while let Ok(ev) = comp_rx.try_recv() {
            complete(ev, &mut free, &mut g, rng);
        }
        if sh.interrupt.count() > 0 {
            break;
        }
        let now = rec.now();
        let answer = g.op(&mut Ctx {
            time: now,
            free: &free,
            all: &all,
            rng,
        });
        match answer {
            GenOp::Op(inv) => {
                if inv.time > now {
                    let at = rec.start_instant() + Duration::from_nanos(inv.time);
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = sh.interrupt.wait() => break 'outer,
                    }
                }
                let Ok(pos) = free.binary_search(&inv.thread) else {
                    return Err(anyhow::anyhow!(
                        "generator chose thread {} which is busy (a generator bug)",
                        inv.thread
                    ));
                };
                free.remove(pos);
                let t = inv.thread;
                if dispatch[t].send(inv).await.is_err() {
                    return Err(anyhow::anyhow!("worker {t} stopped unexpectedly"));
                }
            }
            GenOp::Pending => {
                tokio::select! {
                    ev = comp_rx.recv() => match ev {
                        Some(ev) => complete(ev, &mut free, &mut g, rng),
                        None => break 'outer,
                    },
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = sh.interrupt.wait() => break 'outer,
                }
            }
            GenOp::Exhausted => break,
        }
    }
    // wait for in-flight ops (workers give up after the op timeout)
    let limit = Duration::from_secs_f64(sh.plan.run.op_timeout) + Duration::from_secs(5);
    let deadline = tokio::time::Instant::now() + limit;
    while free.len() < all.len() {
        tokio::select! {
            ev = comp_rx.recv() => match ev {
                Some(ev) => complete(ev, &mut free, &mut g, rng),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(busy = all.len() - free.len(), "workers still busy after the op timeout");
                break;
            }
        }
    }
    Ok(())
}

/// How long a worker waits before its next op after ops that failed fast: nothing after an
/// `ok` or a slow failure; after consecutive fast `fail`/`info` answers, 10 ms doubling to 1 s.
#[derive(Debug, Default)]
struct Backoff {
    fast_failures: u32,
}

impl Backoff {
    /// A failure answered faster than this counts as "fast".
    const FAST: Duration = Duration::from_millis(100);
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// The pause after an op of `kind` that took `took`, if any.
    fn after(&mut self, kind: OpType, took: Duration) -> Option<Duration> {
        if kind == OpType::Ok || took >= Self::FAST {
            self.fast_failures = 0;
            return None;
        }
        let pause = Self::FIRST.saturating_mul(1 << self.fast_failures.min(10));
        self.fast_failures += 1;
        Some(pause.min(Self::MAX))
    }
}

/// One worker: runs the ops sent to it on its client and records them.
async fn worker(
    sh: Arc<Shared>,
    w: usize,
    node: Option<usize>,
    mut client: Box<dyn Client>,
    mut rx: mpsc::Receiver<Invocation>,
    done: mpsc::UnboundedSender<Event>,
) {
    let mut process = w as u64;
    client.set_process(process);
    let timeout = Duration::from_secs_f64(sh.plan.run.op_timeout);
    let node_name = node.map(|i| sh.nodes[i].name.clone());
    let rec = sh.recorder.clone();
    let mut backoff = Backoff::default();
    while let Some(inv) = rx.recv().await {
        let mut op = Op::new(
            Process::Client(process),
            OpType::Invoke,
            inv.f.as_str(),
            inv.value,
        );
        op.time = rec.now();
        op.node = node_name.clone();
        rec.record(op.clone());
        let started = std::time::Instant::now();
        // A signal ends the op at once (as `info`: it may still take effect): a client that
        // never answers must not hold a stopped run for its whole op_timeout.
        let mut stopped = false;
        let (c, timed_out) = tokio::select! {
            r = tokio::time::timeout(timeout, client.invoke(&op.f, &op.value)) => match r {
                Ok(c) => (c, false),
                Err(_) => (
                    Completion::info(op.value.clone(), format!("timed out after {timeout:?}")),
                    true,
                ),
            },
            _ = sh.interrupt.wait() => {
                stopped = true;
                (
                    Completion::info(
                        op.value.clone(),
                        "interrupted: the run was stopped while this op was pending",
                    ),
                    false,
                )
            }
        };
        let kind = match c.kind {
            OpType::Invoke => OpType::Info, // a client must not answer "invoke"; treat as unknown
            k => k,
        };
        let mut done_op = Op::new(Process::Client(process), kind, op.f.as_str(), c.value);
        done_op.time = rec.now();
        done_op.node = node_name.clone();
        done_op.error = c.error;
        let ev = Event {
            thread: w,
            time: done_op.time,
            kind,
            f: inv.f,
            value: done_op.value.clone(),
        };
        rec.record(done_op);
        if stopped {
            // no op follows a signal: the pending answer is abandoned with this client
            let _ = done.send(ev);
            break;
        }
        if kind == OpType::Info {
            // the op may still take effect: this process is done; continue as a new one
            process = sh.next_process.fetch_add(1, Ordering::Relaxed);
            if timed_out {
                match sh.target.client(node).await {
                    Ok(c) => client = c,
                    Err(e) => tracing::warn!(
                        worker = w,
                        error = %crate::error::one_line(&e),
                        "could not reopen the client after a timeout; keeping the old one"
                    ),
                }
            }
            client.set_process(process);
        }
        // A node that refuses at once (down, paused gateway, no leader) would otherwise be asked
        // again at once, thousands of times: pause before saying this worker is free. The op's
        // times above are already recorded; the pause lies between ops, not inside one.
        if let Some(pause) = backoff.after(kind, started.elapsed()) {
            tokio::time::sleep(pause).await;
        }
        if done.send(ev).is_err() {
            break;
        }
    }
    client.close().await;
}

/// Runs the nemesis schedule: each op at its time, recorded as an invocation and a completion
/// (both `info`, process `"nemesis"`).
async fn nemesis_loop(
    sh: Arc<Shared>,
    mut g: BoxGen,
    mut rng: Rng,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let rec = sh.recorder.clone();
    let one = [0usize];
    loop {
        if sh.interrupt.count() > 0 || *stop.borrow() {
            return Ok(());
        }
        let now = rec.now();
        let answer = g.op(&mut Ctx {
            time: now,
            free: &one,
            all: &one,
            rng: &mut rng,
        });
        let inv = match answer {
            GenOp::Op(inv) => inv,
            GenOp::Pending => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            GenOp::Exhausted => return Ok(()),
        };
        if inv.time > now {
            let at = rec.start_instant() + Duration::from_nanos(inv.time);
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                _ = sh.interrupt.wait() => return Ok(()),
                _ = stop.wait_for(|s| *s) => return Ok(()),
            }
        }
        rec.nemesis(&inv.f, inv.value.clone(), None);
        let s = sh.clone();
        let (f, v) = (inv.f.clone(), inv.value.clone());
        let out = tokio::task::spawn_blocking(move || s.nemesis.invoke(&f, &v)).await;
        let (value, error) = match out {
            Ok(o) => (o.value, o.error),
            Err(e) => (Value::Null, Some(format!("nemesis panicked: {e}"))),
        };
        if let Ok(mut a) = sh.active_faults.lock() {
            if let Some(fault) = inv.f.strip_prefix("start-") {
                a.push(fault.to_string());
            } else if let Some(fault) = inv.f.strip_prefix("stop-") {
                a.retain(|x| x != fault);
            }
        }
        rec.nemesis(&inv.f, value, error.clone());
        let ev = Event {
            thread: 0,
            time: rec.now(),
            kind: OpType::Info,
            f: inv.f,
            value: Value::Null,
        };
        g.update(
            &Ctx {
                time: ev.time,
                free: &one,
                all: &one,
                rng: &mut rng,
            },
            &ev,
        );
    }
}

async fn heal(sh: &Arc<Shared>) -> Result<()> {
    let s = sh.clone();
    let r = blocking(move || s.nemesis.heal_and_verify()).await;
    let err = r.as_ref().err().map(crate::error::one_line);
    if !sh.nemesis.scheduled().is_empty() || err.is_some() {
        sh.recorder.nemesis("heal", Value::Null, err);
    }
    if let Ok(mut a) = sh.active_faults.lock() {
        a.clear();
    }
    r.context("healing faults")
}

/// Heal, snarf logs, teardown: run whatever happened before.
async fn cleanup(sh: Arc<Shared>, run_dir: &Path) -> Result<()> {
    let mut first_err: Option<anyhow::Error> = None;
    if let Err(e) = heal(&sh).await {
        first_err.get_or_insert(e);
    }
    // snarf logs
    let s = sh.clone();
    let dir = run_dir.to_path_buf();
    if let Err(e) = blocking(move || snarf_logs(&s, &dir)).await {
        tracing::warn!(error = %crate::error::one_line(&e), "collecting node logs");
    }
    let s = sh.clone();
    let rep = blocking(move || Ok(s.nemesis.teardown())).await?;
    if !rep.is_ok() {
        first_err.get_or_insert(anyhow::anyhow!(
            "tearing down the nemesis: {}",
            rep.errors.join("; ")
        ));
    }
    if sh.plan.run.leave_db_running && sh.plan.target.deploy == Deploy::Install {
        tracing::info!("leaving the database running");
    } else {
        let s = sh.clone();
        if let Err(e) = blocking(move || s.target.teardown()).await {
            first_err.get_or_insert(e.context("tearing down the target"));
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Copies every node's log files into `<run>/nodes/<node>/`. Errors are logged per file.
fn snarf_logs(sh: &Shared, run_dir: &Path) -> Result<()> {
    let Some(logs) = sh.target.as_log_files() else {
        return Ok(());
    };
    for (i, node) in sh.nodes.iter().enumerate() {
        let files = logs.log_files(i);
        if files.is_empty() {
            continue;
        }
        let dir = run_dir.join("nodes").join(&node.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for f in files {
            let base = Path::new(&f)
                .file_name()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "log".into());
            if let Some(r) = sh.remotes.get(i) {
                if let Err(e) = r.download(&f, &dir.join(&base)) {
                    tracing::warn!(node = %node.name, file = %f, error = %e, "log not collected");
                }
            }
        }
    }
    Ok(())
}

/// The progress line: on a terminal, redrawn every second; otherwise a line every 10 s.
async fn progress_loop(sh: Arc<Shared>) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    };
    let c = sh.recorder.counters();
    let mut last_done = 0u64;
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        if !sh.generating.load(Ordering::Relaxed) {
            continue;
        }
        let ok = c.ok.load(Ordering::Relaxed);
        let fail = c.fail.load(Ordering::Relaxed);
        let info = c.info.load(Ordering::Relaxed);
        let done = ok + fail + info;
        let rate = (done - last_done) as f64 / last.elapsed().as_secs_f64().max(1e-3);
        last_done = done;
        last = Instant::now();
        let faults = sh
            .active_faults
            .lock()
            .map(|a| a.join(","))
            .unwrap_or_default();
        let left = sh
            .phase_end
            .lock()
            .ok()
            .and_then(|g| *g)
            .map(|end| end.saturating_duration_since(Instant::now()).as_secs())
            .unwrap_or(0);
        let line = format!(
            "{rate:>8.0} ops/s  ok {ok}  fail {fail}  info {info}  faults [{}]  {left}s left",
            if faults.is_empty() { "-" } else { &faults }
        );
        let sunk = match PROGRESS_SINK.lock() {
            Ok(g) => g.as_ref().map(|sink| sink(&line)).is_some(),
            Err(_) => false,
        };
        if !sunk && tty {
            eprint!("\r\x1b[2K{line}");
        } else if !sunk {
            eprintln!("netsplit: {line}");
        }
        tracing::debug!(progress = %line);
    }
}

/// Prints a run's summary on stdout.
pub fn print_summary(out: &RunOutcome) {
    use std::io::Write as _;
    let _ = write!(
        std::io::stdout(),
        "{}",
        crate::report::summary_text(&out.results)
    );
    let _ = std::io::stdout().flush();
}

/// Where a run's progress line goes instead of stderr, when set: `netsplit test-all` shows it
/// in its own progress bar, which a second line on the terminal would break.
type ProgressSink = Box<dyn Fn(&str) + Send>;
static PROGRESS_SINK: Mutex<Option<ProgressSink>> = Mutex::new(None);

/// Sends the runs' progress lines to `sink` (`None`: back to stderr).
pub fn set_progress_sink(sink: Option<ProgressSink>) {
    if let Ok(mut g) = PROGRESS_SINK.lock() {
        *g = sink;
    }
}

fn progress_sunk() -> bool {
    PROGRESS_SINK.lock().map(|g| g.is_some()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_after_fast_failures_and_resets_after_an_ok_or_a_slow_one() {
        let mut b = Backoff::default();
        let fast = Duration::from_millis(1);
        assert_eq!(b.after(OpType::Ok, fast), None);
        assert_eq!(b.after(OpType::Fail, fast), Some(Duration::from_millis(10)));
        assert_eq!(b.after(OpType::Info, fast), Some(Duration::from_millis(20)));
        assert_eq!(b.after(OpType::Fail, fast), Some(Duration::from_millis(40)));
        for _ in 0..20 {
            assert!(b.after(OpType::Fail, fast).unwrap() <= Backoff::MAX);
        }
        assert_eq!(b.after(OpType::Fail, fast), Some(Backoff::MAX));
        assert_eq!(b.after(OpType::Ok, fast), None);
        assert_eq!(b.after(OpType::Fail, fast), Some(Duration::from_millis(10)));
        assert_eq!(b.after(OpType::Fail, Duration::from_secs(2)), None);
        assert_eq!(b.after(OpType::Fail, fast), Some(Duration::from_millis(10)));
    }
}
