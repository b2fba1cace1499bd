//! Generators: pure, seeded descriptions of which operations to run, when, and on which worker.
//!
//! This module owns the [`Generator`] trait and its combinators, modelled on Jepsen's
//! `jepsen.generator`. A generator is asked for the next operation with a [`Ctx`] that carries
//! the *current relative time* (ns since the run started), the free worker threads and the run's
//! PRNG; it answers with [`GenOp::Op`] (run this, on this thread, not before this time),
//! [`GenOp::Pending`] (nothing now — ask again after the next completion or a short while), or
//! [`GenOp::Exhausted`]. Completions are fed back through [`Generator::update`].
//!
//! Time is explicit and nothing here reads a clock, does I/O or uses tokio, so the op stream is a
//! pure function of the seed and of the completions fed back; [`sim::simulate`] replays a
//! generator without any runtime, which is how the combinators are tested.
//!
//! Composing a workload (see `docs/writing-a-workload.md`):
//!
//! ```
//! use netsplit::generator::{self as g, Ctx};
//! use serde_json::json;
//! // reads and writes of random values, 3 threads per key, 100 ops per key, 20 ops/s in total,
//! // for 10 seconds
//! let gen = g::time_limit(10.0, g::stagger(1.0 / 20.0,
//!     g::independent_concurrent(3, (0..5).map(|k| json!(k)), 100, |_key| {
//!         g::mix(vec![
//!             g::repeat("read", json!(null)),
//!             Box::new(g::from_fn(|ctx: &mut Ctx| {
//!                 Some(("write".into(), json!(ctx.rng.below(5))))
//!             })),
//!         ])
//!     })));
//! let ops = g::sim::simulate(gen, 6, 42, 1_000_000, u64::MAX);
//! assert!(ops.len() > 150 && ops.len() < 250, "{}", ops.len());
//! ```

pub use netsplit_check::rng;
pub mod sim;

pub use rng::Rng;

use crate::history::OpType;
use serde_json::Value;

/// A worker thread: `0..concurrency` for clients (the nemesis has its own generator and its
/// own single thread 0).
pub type Thread = usize;

/// Nanoseconds per second, for converting plan seconds to generator time.
pub const NS: f64 = 1e9;

/// `secs` in nanoseconds (a negative span: none).
fn nanos(secs: f64) -> u64 {
    (secs.max(0.0) * NS) as u64
}

/// What a generator sees when asked for an operation.
pub struct Ctx<'a> {
    /// Current time, ns since the run started (the runner's monotonic clock; simulated in tests).
    pub time: u64,
    /// Threads that are idle now, ascending.
    pub free: &'a [Thread],
    /// Every thread this generator drives, ascending (combinators narrow it).
    pub all: &'a [Thread],
    /// The run's seeded PRNG.
    pub rng: &'a mut Rng,
}

impl Ctx<'_> {
    /// A context for a subset of threads (used by combinators that route ops to some threads).
    pub fn narrowed<'b>(&'b mut self, free: &'b [Thread], all: &'b [Thread]) -> Ctx<'b> {
        Ctx {
            time: self.time,
            free,
            all,
            rng: &mut *self.rng,
        }
    }
}

/// An operation to run: on `thread` (one of `ctx.free`), not before `time`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The thread that runs it.
    pub thread: Thread,
    /// Earliest start, ns since the run started.
    pub time: u64,
    /// The operation's function (`read`, `write`, …).
    pub f: String,
    /// The operation's argument.
    pub value: Value,
}

/// A generator's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum GenOp {
    /// Run this operation.
    Op(Invocation),
    /// Nothing right now; ask again after the next completion (or shortly).
    Pending,
    /// Never anything again.
    Exhausted,
}

/// A completion fed back to a generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The thread whose operation completed (it is free again).
    pub thread: Thread,
    /// When it completed, ns since the run started.
    pub time: u64,
    /// How it ended: `ok`, `fail` or `info` (unknown).
    pub kind: OpType,
    /// The operation's function.
    pub f: String,
    /// The completion's value.
    pub value: Value,
}

/// A source of operations. Implementations must be deterministic given the calls they receive
/// and the PRNG in the context.
pub trait Generator: Send {
    /// The next operation, if any.
    fn op(&mut self, ctx: &mut Ctx) -> GenOp;
    /// The completion (`ok`, `fail` or `info`) of an operation this generator (or one it
    /// wraps) emitted. Invocations are not fed back: the op returned by [`Generator::op`] is
    /// the invocation.
    fn update(&mut self, _ctx: &Ctx, _event: &Event) {}
}

impl<G: Generator + ?Sized> Generator for Box<G> {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        (**self).op(ctx)
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        (**self).update(ctx, event)
    }
}

/// A boxed generator, the unit of composition.
pub type BoxGen = Box<dyn Generator>;

// ---------------------------------------------------------------------------------------------
// Sources

/// An endless source: `f` is called for each op and returns `(f, value)`; `None` ends it.
/// The op goes to the lowest free thread, now.
pub fn from_fn<F>(f: F) -> FromFn<F>
where
    F: FnMut(&mut Ctx) -> Option<(String, Value)> + Send,
{
    FromFn { f, done: false }
}

/// The generator [`from_fn`] returns.
pub struct FromFn<F> {
    f: F,
    done: bool,
}

impl<F> Generator for FromFn<F>
where
    F: FnMut(&mut Ctx) -> Option<(String, Value)> + Send,
{
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        if self.done {
            return GenOp::Exhausted;
        }
        let Some(&thread) = ctx.free.first() else {
            return GenOp::Pending;
        };
        match (self.f)(ctx) {
            Some((f, value)) => GenOp::Op(Invocation {
                thread,
                time: ctx.time,
                f,
                value,
            }),
            None => {
                self.done = true;
                GenOp::Exhausted
            }
        }
    }
}

/// The same operation forever.
pub fn repeat(f: &str, value: Value) -> BoxGen {
    let f = f.to_string();
    Box::new(from_fn(move |_| Some((f.clone(), value.clone()))))
}

/// One operation, once.
pub fn once(f: &str, value: Value) -> BoxGen {
    limit(1, repeat(f, value))
}

/// These operations, in order, one each.
pub fn seq(ops: Vec<(String, Value)>) -> BoxGen {
    let mut it = ops.into_iter();
    Box::new(from_fn(move |_| it.next()))
}

// ---------------------------------------------------------------------------------------------
// Combinators

/// A random choice among generators for every op, weighted; exhausted members drop out.
pub fn mix_weighted(gens: Vec<(f64, BoxGen)>) -> BoxGen {
    Box::new(Mix { gens })
}

/// A uniform random choice among generators for every op.
pub fn mix(gens: Vec<BoxGen>) -> BoxGen {
    mix_weighted(gens.into_iter().map(|g| (1.0, g)).collect())
}

struct Mix {
    gens: Vec<(f64, BoxGen)>,
}

impl Generator for Mix {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        // No free thread: answer before drawing, so the PRNG is consumed only by ops that are
        // emitted and the stream does not depend on how often the runner asked.
        if ctx.free.is_empty() && !self.gens.is_empty() {
            return GenOp::Pending;
        }
        loop {
            let total: f64 = self.gens.iter().map(|(w, _)| w.max(0.0)).sum();
            if self.gens.is_empty() || total <= 0.0 {
                return GenOp::Exhausted;
            }
            let mut x = ctx.rng.unit() * total;
            let mut pick = self.gens.len() - 1;
            for (i, (w, _)) in self.gens.iter().enumerate() {
                let w = w.max(0.0);
                if x < w {
                    pick = i;
                    break;
                }
                x -= w;
            }
            match self.gens[pick].1.op(ctx) {
                GenOp::Exhausted => {
                    self.gens.remove(pick);
                }
                other => return other,
            }
        }
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        for (_, g) in &mut self.gens {
            g.update(ctx, event);
        }
    }
}

/// At most `n` operations from `gen`.
pub fn limit(n: u64, gen: BoxGen) -> BoxGen {
    Box::new(Limit { left: n, gen })
}

struct Limit {
    left: u64,
    gen: BoxGen,
}

impl Generator for Limit {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        if self.left == 0 {
            return GenOp::Exhausted;
        }
        let r = self.gen.op(ctx);
        if let GenOp::Op(_) = r {
            self.left -= 1;
        }
        r
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        self.gen.update(ctx, event)
    }
}

/// Operations from `gen` until `secs` seconds after the first time it is asked; ops scheduled
/// at or after the deadline are dropped.
pub fn time_limit(secs: f64, gen: BoxGen) -> BoxGen {
    Box::new(TimeLimit {
        dt: nanos(secs),
        deadline: None,
        gen,
    })
}

struct TimeLimit {
    dt: u64,
    deadline: Option<u64>,
    gen: BoxGen,
}

impl Generator for TimeLimit {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        let deadline = *self
            .deadline
            .get_or_insert(ctx.time.saturating_add(self.dt));
        if ctx.time >= deadline {
            return GenOp::Exhausted;
        }
        match self.gen.op(ctx) {
            GenOp::Op(op) if op.time >= deadline => GenOp::Exhausted,
            other => other,
        }
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        self.gen.update(ctx, event)
    }
}

/// Spaces operations by a random interval, uniform in `0..2·secs`, so `1/secs` ops per second
/// in total across all threads (Jepsen's `stagger`). `secs <= 0` passes ops through.
pub fn stagger(secs: f64, gen: BoxGen) -> BoxGen {
    spaced(secs, gen, true)
}

/// Spaces operations exactly `secs` apart (Jepsen's `delay`).
pub fn delay(secs: f64, gen: BoxGen) -> BoxGen {
    spaced(secs, gen, false)
}

/// [`stagger`] (`jitter`: a random interval) or [`delay`] (an exact one).
fn spaced(secs: f64, gen: BoxGen, jitter: bool) -> BoxGen {
    Box::new(Stagger {
        dt: nanos(secs),
        next: None,
        gen,
        jitter,
    })
}

/// A total rate in ops/s (`0` or less: unlimited), as [`stagger`].
pub fn rate(hz: f64, gen: BoxGen) -> BoxGen {
    if hz <= 0.0 {
        gen
    } else {
        stagger(1.0 / hz, gen)
    }
}

struct Stagger {
    dt: u64,
    next: Option<u64>,
    gen: BoxGen,
    jitter: bool,
}

impl Generator for Stagger {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        if self.dt == 0 {
            return self.gen.op(ctx);
        }
        match self.gen.op(ctx) {
            GenOp::Op(mut op) => {
                let next = *self.next.get_or_insert(ctx.time);
                op.time = op.time.max(next);
                let step = if self.jitter {
                    ctx.rng.below(2 * self.dt)
                } else {
                    self.dt
                };
                self.next = Some(op.time + step);
                GenOp::Op(op)
            }
            other => other,
        }
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        self.gen.update(ctx, event)
    }
}

/// Runs generators one after another; each phase starts only once the previous one is
/// exhausted *and* every thread is idle (Jepsen's `phases`, which synchronises).
pub fn phases(gens: Vec<BoxGen>) -> BoxGen {
    Box::new(Phases {
        gens: gens.into_iter().collect(),
    })
}

/// `a`, then (after synchronising) `b`.
pub fn then(a: BoxGen, b: BoxGen) -> BoxGen {
    phases(vec![a, b])
}

struct Phases {
    gens: std::collections::VecDeque<BoxGen>,
}

impl Generator for Phases {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        loop {
            let Some(g) = self.gens.front_mut() else {
                return GenOp::Exhausted;
            };
            match g.op(ctx) {
                GenOp::Exhausted => {
                    if ctx.free.len() < ctx.all.len() {
                        return GenOp::Pending;
                    }
                    self.gens.pop_front();
                }
                other => return other,
            }
        }
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        if let Some(g) = self.gens.front_mut() {
            g.update(ctx, event)
        }
    }
}

/// An independent copy of a generator for every thread, made by `make(thread)`; each thread
/// runs its own copy to exhaustion (Jepsen's `each-thread`).
pub fn each_thread<F>(make: F) -> BoxGen
where
    F: FnMut(Thread) -> BoxGen + Send + 'static,
{
    Box::new(EachThread {
        make: Box::new(make),
        gens: std::collections::BTreeMap::new(),
    })
}

type MakeGen = Box<dyn FnMut(Thread) -> BoxGen + Send>;

struct EachThread {
    make: MakeGen,
    gens: std::collections::BTreeMap<Thread, Option<BoxGen>>,
}

impl Generator for EachThread {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        let mut pending = false;
        for &t in ctx.all {
            let slot = self.gens.entry(t).or_insert_with(|| Some((self.make)(t)));
            let Some(g) = slot else { continue };
            if !ctx.free.contains(&t) {
                pending = true;
                continue;
            }
            let one = [t];
            let mut sub = ctx.narrowed(&one, &one);
            match g.op(&mut sub) {
                GenOp::Op(op) => return GenOp::Op(op),
                GenOp::Pending => pending = true,
                GenOp::Exhausted => *slot = None,
            }
        }
        if pending {
            GenOp::Pending
        } else {
            GenOp::Exhausted
        }
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        if let Some(Some(g)) = self.gens.get_mut(&event.thread) {
            g.update(ctx, event)
        }
    }
}

/// Restricts `gen` to the threads for which `pred` holds (Jepsen's `on-threads`).
pub fn on_threads<P>(pred: P, gen: BoxGen) -> BoxGen
where
    P: Fn(Thread) -> bool + Send + 'static,
{
    Box::new(OnThreads {
        pred: Box::new(pred),
        gen,
        free: Vec::new(),
        all: Vec::new(),
    })
}

struct OnThreads {
    pred: Box<dyn Fn(Thread) -> bool + Send>,
    gen: BoxGen,
    free: Vec<Thread>,
    all: Vec<Thread>,
}

impl Generator for OnThreads {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        self.free.clear();
        self.free
            .extend(ctx.free.iter().copied().filter(|t| (self.pred)(*t)));
        self.all.clear();
        self.all
            .extend(ctx.all.iter().copied().filter(|t| (self.pred)(*t)));
        if self.all.is_empty() {
            return GenOp::Exhausted;
        }
        let (free, all) = (
            std::mem::take(&mut self.free),
            std::mem::take(&mut self.all),
        );
        let r = self.gen.op(&mut ctx.narrowed(&free, &all));
        self.free = free;
        self.all = all;
        r
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        if (self.pred)(event.thread) {
            self.gen.update(ctx, event)
        }
    }
}

/// Changes every operation `gen` emits.
pub fn map<F>(f: F, gen: BoxGen) -> BoxGen
where
    F: FnMut(Invocation) -> Invocation + Send + 'static,
{
    Box::new(Map { f, gen })
}

struct Map<F> {
    f: F,
    gen: BoxGen,
}

impl<F> Generator for Map<F>
where
    F: FnMut(Invocation) -> Invocation + Send,
{
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        match self.gen.op(ctx) {
            GenOp::Op(op) => GenOp::Op((self.f)(op)),
            other => other,
        }
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        self.gen.update(ctx, event)
    }
}

/// Per-key independence (Jepsen's `independent/concurrent-generator`): threads are split into
/// groups of `threads_per_key`; each group works on one key at a time, running
/// `limit(ops_per_key, make(key))` and wrapping every value as `[key, value]`; when that is
/// exhausted the group takes the next unused key (`keys` may be endless). Threads left over
/// after grouping stay idle.
/// Exhausted when the keys run out and every group has finished.
pub fn independent_concurrent<K, F>(
    threads_per_key: usize,
    keys: K,
    ops_per_key: u64,
    make: F,
) -> BoxGen
where
    K: IntoIterator<Item = Value>,
    K::IntoIter: Send + 'static,
    F: FnMut(&Value) -> BoxGen + Send + 'static,
{
    Box::new(Independent {
        n: threads_per_key.max(1),
        keys: Box::new(keys.into_iter()),
        ops_per_key,
        make: Box::new(make),
        groups: Vec::new(),
        started: false,
        base_seed: 0,
    })
}

struct Group {
    threads: Vec<Thread>,
    key: Option<Value>,
    gen: Option<BoxGen>,
    /// The current key's own PRNG (seeded from the key), so each key's op stream replays
    /// regardless of how the groups' requests interleave in real time.
    rng: Rng,
}

struct Independent {
    n: usize,
    keys: Box<dyn Iterator<Item = Value> + Send>,
    ops_per_key: u64,
    make: Box<dyn FnMut(&Value) -> BoxGen + Send>,
    groups: Vec<Group>,
    started: bool,
    base_seed: u64,
}

impl Independent {
    fn next_key(&mut self, g: usize) {
        let group = &mut self.groups[g];
        match self.keys.next() {
            Some(k) => {
                let mut h = self.base_seed;
                for b in k.to_string().bytes() {
                    h = (h ^ b as u64).wrapping_mul(0x100_0000_01B3);
                }
                group.rng = Rng::new(h);
                group.gen = Some(limit(self.ops_per_key, (self.make)(&k)));
                group.key = Some(k);
            }
            None => {
                group.gen = None;
                group.key = None;
            }
        }
    }
}

impl Generator for Independent {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        if !self.started {
            self.started = true;
            self.base_seed = ctx.rng.next_u64();
            // Fewer workers than a group (the default group size with `concurrency: 1`): one
            // group of all of them, rather than none and an idle run.
            self.n = self.n.min(ctx.all.len().max(1));
            let n_groups = ctx.all.len() / self.n;
            for g in 0..n_groups {
                self.groups.push(Group {
                    threads: ctx.all[g * self.n..(g + 1) * self.n].to_vec(),
                    key: None,
                    gen: None,
                    rng: Rng::new(0),
                });
                self.next_key(g);
            }
        }
        let mut pending = false;
        for g in 0..self.groups.len() {
            loop {
                let group = &mut self.groups[g];
                let Some(gen) = group.gen.as_mut() else { break };
                let free: Vec<Thread> = ctx
                    .free
                    .iter()
                    .copied()
                    .filter(|t| group.threads.contains(t))
                    .collect();
                let all = group.threads.clone();
                let mut sub = Ctx {
                    time: ctx.time,
                    free: &free,
                    all: &all,
                    rng: &mut group.rng,
                };
                match gen.op(&mut sub) {
                    GenOp::Op(mut op) => {
                        let key = group.key.clone().unwrap_or(Value::Null);
                        op.value = Value::Array(vec![key, op.value]);
                        return GenOp::Op(op);
                    }
                    GenOp::Pending => {
                        pending = true;
                        break;
                    }
                    GenOp::Exhausted => self.next_key(g),
                }
            }
        }
        if pending {
            GenOp::Pending
        } else {
            GenOp::Exhausted
        }
    }
    fn update(&mut self, ctx: &Ctx, event: &Event) {
        let Some(group) = self
            .groups
            .iter_mut()
            .find(|g| g.threads.contains(&event.thread))
        else {
            return;
        };
        let (Some(gen), Some(key)) = (group.gen.as_mut(), group.key.as_ref()) else {
            return;
        };
        // Only events for the group's current key reach its generator, unwrapped.
        if let Value::Array(kv) = &event.value {
            if kv.len() == 2 && &kv[0] == key {
                let inner = Event {
                    value: kv[1].clone(),
                    ..event.clone()
                };
                gen.update(ctx, &inner);
            }
        } else {
            // A completion without a `[key, value]` value: still tell the generator.
            gen.update(ctx, event);
        }
    }
}

/// One `f`/`value` op on every thread (the usual final phase: a read from every worker; the
/// runner adds a worker for each node no worker is bound to, so every node is read).
pub fn each_thread_once(f: &'static str, value: Value) -> BoxGen {
    each_thread(move |_| once(f, value.clone()))
}

/// The nemesis schedule: every `interval` seconds, alternately start a fault (chosen at random
/// from `faults`) and stop it, as ops `start-<fault>` / `stop-<fault>` on the nemesis's one
/// thread. Endless; wrap it in [`time_limit`]. No faults: exhausted at once.
pub fn nemesis_cycle(faults: Vec<String>, interval_secs: f64) -> BoxGen {
    Box::new(NemesisCycle {
        faults,
        dt: nanos(interval_secs),
        next: None,
        active: None,
    })
}

/// The thread a nemesis schedule emits its next op on, or why it cannot: no faults to
/// schedule (exhausted), or the nemesis's one thread busy (pending).
fn nemesis_thread(ctx: &Ctx, has_faults: bool) -> Result<Thread, GenOp> {
    if !has_faults {
        return Err(GenOp::Exhausted);
    }
    ctx.free.first().copied().ok_or(GenOp::Pending)
}

struct NemesisCycle {
    faults: Vec<String>,
    dt: u64,
    next: Option<u64>,
    active: Option<String>,
}

impl Generator for NemesisCycle {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        let thread = match nemesis_thread(ctx, !self.faults.is_empty()) {
            Ok(t) => t,
            Err(wait_or_end) => return wait_or_end,
        };
        let at = *self.next.get_or_insert(ctx.time + self.dt);
        let f = match self.active.take() {
            Some(fault) => format!("stop-{fault}"),
            None => {
                let fault = self.faults[ctx.rng.below(self.faults.len() as u64) as usize].clone();
                let f = format!("start-{fault}");
                self.active = Some(fault);
                f
            }
        };
        self.next = Some(at.max(ctx.time) + self.dt);
        GenOp::Op(Invocation {
            thread,
            time: at.max(ctx.time),
            f,
            value: Value::Null,
        })
    }
}

/// The overlapping nemesis schedule (Jepsen's composed fault packages): every fault family
/// runs its own cycle — quiet for `interval`, active for `interval`, stopped, and again — and
/// family `i` of `k` is shifted by `i/k` of an interval, so several faults are in force at once
/// (every pair of families overlaps for part of each cycle) and each start has its own stop.
/// Ops come out in time order on the nemesis's one thread. No faults: exhausted at once.
pub fn nemesis_overlap(faults: Vec<String>, interval_secs: f64) -> BoxGen {
    let dt = nanos(interval_secs);
    let k = faults.len().max(1) as u64;
    Box::new(NemesisOverlap {
        lanes: faults
            .into_iter()
            .enumerate()
            .map(|(i, fault)| Lane {
                fault,
                shift: dt / k * i as u64,
                next: None,
                active: false,
            })
            .collect(),
        dt,
    })
}

struct Lane {
    fault: String,
    shift: u64,
    next: Option<u64>,
    active: bool,
}

struct NemesisOverlap {
    lanes: Vec<Lane>,
    dt: u64,
}

impl Generator for NemesisOverlap {
    fn op(&mut self, ctx: &mut Ctx) -> GenOp {
        let thread = match nemesis_thread(ctx, !self.lanes.is_empty()) {
            Ok(t) => t,
            Err(wait_or_end) => return wait_or_end,
        };
        for lane in &mut self.lanes {
            lane.next.get_or_insert(ctx.time + self.dt + lane.shift);
        }
        // The lane due first (ties: the first family), so ops stay in time order.
        let lane = self
            .lanes
            .iter_mut()
            .min_by_key(|l| l.next.unwrap_or(u64::MAX))
            .expect("lanes is not empty");
        let at = lane.next.unwrap_or(ctx.time).max(ctx.time);
        let f = if lane.active {
            format!("stop-{}", lane.fault)
        } else {
            format!("start-{}", lane.fault)
        };
        lane.active = !lane.active;
        lane.next = Some(at + self.dt);
        GenOp::Op(Invocation {
            thread,
            time: at,
            f,
            value: Value::Null,
        })
    }
}

#[cfg(test)]
mod tests;
