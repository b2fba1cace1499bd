//! Exact reductions of a history's operations before the linearizability search.
//!
//! An `info` operation (one that never returned) may take effect at any point after its
//! invocation, or never. Left as it is, each one doubles the configurations the search may have
//! to tell apart, and a faulted run can leave hundreds per key. This module removes or pins down
//! those the rest of the history decides, without changing the verdict:
//!
//! - **Dropped**: an `info` operation that no operation can observe after it is removed from the
//!   history (proofs per model below).
//! - **Bounded**: an `info` operation that is the only possible source of something a completed
//!   operation saw must have taken effect before that operation returned. It gets that return
//!   as a deadline and becomes required, like an `ok` operation.
//!
//! Both rewrite the history into one that is linearizable exactly when the original is, so they
//! may be applied repeatedly, in any order ([`reduce`] alternates them until nothing changes).
//!
//! # Tokens
//!
//! Each model states what an operation can *produce* and what a completed operation *observes*,
//! as tokens `(partition key, sub-key, value)`:
//!
//! | model | produces | observes |
//! |---|---|---|
//! | register, cas-register | `write v` → v; `cas [f t]` (f ≠ t) → t | `read v` → v; `cas [f t]` → f |
//! | set | `add v` → v (v not initially present) | `read vs` → every v in vs |
//! | fifo-queue | `enqueue v` → v | `dequeue` returning v → v |
//! | multi-register | each register's last write in the txn → (register, value) | each read of a register not written earlier in the txn → (register, value) |
//!
//! mutex and kv have no tokens here: their info operations are left to the search.
//!
//! # Dropping (register, cas-register, set, multi-register)
//!
//! Claim: an `info` operation P whose every produced token τ has no `info` observer (other than
//! P) and no completed observer returning after P's invocation can be removed. Take any
//! linearization L that includes P. An operation X placed after P in L cannot have returned
//! before P was invoked (real-time order would put X before P), so no operation placed after P
//! observes τ. Per model:
//! - register / cas-register: the state after P is τ's value; the operation right after P (if
//!   any) neither reads it nor compares with it, so it is a `write` (a read of another value or a
//!   cas from another value would not be accepted). A write does not depend on the state before
//!   it, so L without P reaches the same state after that write, and every later step is
//!   unchanged; if P is last, removing it changes nothing that anyone checks.
//! - set: every read after P would have to contain P's element (and no read after P observes
//!   it), so no read follows P. Without P, the later adds are still accepted (adds always are)
//!   and only the element itself is missing from states nobody reads.
//! - multi-register: for each register P writes, no transaction after P reads it (before its own
//!   write to it) until another write to it. Without P, each such register differs only in a
//!   span in which nobody reads it.
//!
//! So L minus P is a linearization of the history without P; conversely, a linearization
//! without P is one of the history with P never taking effect. An `info` operation that never
//! changes the state (a `cas [v v]`, an `add` of an initial element) is dropped outright: removing
//! it from any linearization leaves every state as it was. A dropped `info` cas no longer observes
//! anything, which may make more producers droppable; the rule is applied to a fixpoint.
//!
//! fifo-queue is excluded: an unobserved enqueue still changes what later dequeues return.
//!
//! # Bounding (register, cas-register, set, fifo-queue, multi-register)
//!
//! Claim: if a token τ is not initially present, exactly one remaining operation P can produce
//! it, P is `info`, and completed operations R₁ … observe τ, then P takes effect before each Rⱼ
//! in every linearization (the state Rⱼ sees can only come from P), hence before
//! d = min(Rⱼ's return). Giving P a return at d adds the constraint "P precedes every operation
//! invoked after d", which every linearization already meets (P precedes R, R precedes those
//! operations), and makes P required, which it already was. The rewrite is applied only when d
//! comes after P's invocation; otherwise the history is not linearizable and the search says so
//! (pointing at R rather than at P).
//!
//! The register workload writes values that are unique per key, so on its histories every `info`
//! write or cas is either dropped (nobody saw its value) or bounded (someone did): none is left
//! open for the search.

use super::model::{LOp, Vid};
use super::search::SOp;
use super::ModelKind;
use std::collections::HashMap;

/// What the reductions did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reduced {
    /// `info` operations removed because nothing could observe them.
    pub dropped: usize,
    /// `info` operations given a deadline (and so made required).
    pub bounded: usize,
}

/// The initial state as tokens: the value every register starts with, or the elements a set or
/// queue starts with.
#[derive(Debug, Clone)]
pub enum Initial<'a> {
    /// register, cas-register: every register starts as this value.
    Value(Vid),
    /// multi-register: register `r` starts as the `r`-th value.
    Registers(&'a [Vid]),
    /// set, fifo-queue: these elements.
    Elements(&'a [Vid]),
    /// mutex, kv: no tokens.
    None,
}

/// A token: (partition key, sub-key, value). The sub-key is the register of a multi-register
/// transaction, 0 otherwise.
type Token = (u32, u32, Vid);

struct Facts {
    produces: Vec<Token>,
    observes: Vec<Token>,
}

/// Rounds of (drop to a fixpoint, then bound) at most; each round that changes nothing ends it.
const MAX_ROUNDS: usize = 8;

/// Applies the reductions to `ops` (the operations of one history, all partitions together —
/// tokens carry the partition key). Dropped operations are removed; bounded ones get `ret` and
/// `bounded` set. Order of the remaining operations is kept.
pub fn reduce(model: ModelKind, init: Initial<'_>, ops: &mut Vec<SOp>) -> Reduced {
    let droppable_model = matches!(
        model,
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Set | ModelKind::MultiRegister
    );
    let bounding_model = droppable_model || model == ModelKind::FifoQueue;
    let mut out = Reduced::default();
    if !bounding_model || !ops.iter().any(|o| o.ret.is_none()) {
        return out;
    }
    let initial = |t: &Token| match init {
        Initial::Value(v) => t.2 == v,
        Initial::Registers(rs) => rs.get(t.1 as usize) == Some(&t.2),
        Initial::Elements(es) => es.contains(&t.2),
        Initial::None => false,
    };
    let facts: Vec<Facts> = ops.iter().map(|o| facts(model, &init, o)).collect();
    let mut alive = vec![true; ops.len()];
    for _ in 0..MAX_ROUNDS {
        let mut changed = false;
        if droppable_model {
            let d = drop_unobserved(ops, &facts, &mut alive);
            out.dropped += d;
            changed |= d > 0;
        }
        let b = bound_unique(ops, &facts, &alive, &initial);
        out.bounded += b;
        changed |= b > 0;
        if !changed {
            break;
        }
    }
    if out.dropped > 0 {
        let mut i = 0;
        ops.retain(|_| {
            i += 1;
            alive[i - 1]
        });
    }
    out
}

/// The tokens an operation produces and observes (see the module docs).
fn facts(model: ModelKind, init: &Initial<'_>, o: &SOp) -> Facts {
    let k = o.op.key;
    let mut f = Facts {
        produces: Vec::new(),
        observes: Vec::new(),
    };
    match (&o.op.op, model) {
        (LOp::Read(v), _) => f.observes.push((k, 0, *v)),
        (LOp::Write(v), _) => f.produces.push((k, 0, *v)),
        (LOp::Cas(from, to), _) => {
            f.observes.push((k, 0, *from));
            if from != to {
                f.produces.push((k, 0, *to));
            }
        }
        (LOp::Add(v), _) => {
            let present = matches!(init, Initial::Elements(es) if es.contains(v));
            if !present {
                f.produces.push((k, 0, *v));
            }
        }
        (LOp::SetRead(vs), _) => f.observes.extend(vs.iter().map(|v| (k, 0, *v))),
        (LOp::Enqueue(v), _) => f.produces.push((k, 0, *v)),
        (LOp::Dequeue(Some(Some(v))), _) => f.observes.push((k, 0, *v)),
        (LOp::Txn(micros), ModelKind::MultiRegister) => {
            // Reads before the txn's own write to that register observe the state; the last
            // write to each register is what the txn leaves behind.
            let mut written: Vec<u32> = Vec::new();
            for m in micros.iter() {
                if m.write {
                    written.push(m.key);
                } else if !written.contains(&m.key) {
                    f.observes.push((k, m.key, m.val));
                }
            }
            for (j, m) in micros.iter().enumerate() {
                let last = m.write && !micros[j + 1..].iter().any(|n| n.write && n.key == m.key);
                if last {
                    f.produces.push((k, m.key, m.val));
                }
            }
        }
        _ => {}
    }
    f
}

/// Drops `info` operations whose tokens nobody can observe after them, to a fixpoint. Returns
/// how many it dropped.
fn drop_unobserved(ops: &[SOp], facts: &[Facts], alive: &mut [bool]) -> usize {
    // Per token: the latest return of a required observer, and how many live open
    // (`info`) observers it has.
    let mut last_ret: HashMap<Token, usize> = HashMap::new();
    let mut open_observers: HashMap<Token, usize> = HashMap::new();
    let mut producers: HashMap<Token, Vec<u32>> = HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        if !alive[i] {
            continue;
        }
        for t in &facts[i].observes {
            match o.ret {
                Some(r) => {
                    let e = last_ret.entry(*t).or_insert(r);
                    *e = (*e).max(r);
                }
                None => *open_observers.entry(*t).or_insert(0) += 1,
            }
        }
        if o.ret.is_none() {
            for t in &facts[i].produces {
                producers.entry(*t).or_default().push(i as u32);
            }
        }
    }
    let droppable = |i: usize, open_observers: &HashMap<Token, usize>| {
        let o = &ops[i];
        o.ret.is_none()
            && facts[i].produces.iter().all(|t| {
                // (An operation never observes a token it produces: a cas [v v] produces
                // nothing, and info transactions keep no reads.)
                open_observers.get(t).is_none_or(|&c| c == 0)
                    && last_ret.get(t).is_none_or(|&r| r < o.call)
            })
    };
    let mut dropped = 0;
    let mut work: Vec<u32> = (0..ops.len() as u32)
        .filter(|&i| alive[i as usize] && ops[i as usize].ret.is_none())
        .collect();
    while let Some(i) = work.pop() {
        let i = i as usize;
        if !alive[i] || !droppable(i, &open_observers) {
            continue;
        }
        alive[i] = false;
        dropped += 1;
        for t in &facts[i].observes {
            if let Some(c) = open_observers.get_mut(t) {
                *c -= 1;
                if let Some(ps) = producers.get(t) {
                    work.extend(ps.iter().copied());
                }
            }
        }
    }
    dropped
}

/// Gives a deadline to each `info` operation that is the only producer of a token a required
/// operation observes. Returns how many it bounded.
fn bound_unique(
    ops: &mut [SOp],
    facts: &[Facts],
    alive: &[bool],
    initial: &dyn Fn(&Token) -> bool,
) -> usize {
    // Per token: its producers (up to two: only "exactly one" matters).
    let mut producer: HashMap<Token, (u32, bool)> = HashMap::new();
    for (i, f) in facts.iter().enumerate() {
        if !alive[i] {
            continue;
        }
        for t in &f.produces {
            producer
                .entry(*t)
                .and_modify(|p| p.1 = true)
                .or_insert((i as u32, false));
        }
    }
    // Per open producer: the earliest return of a required observer of one of its tokens.
    let mut deadline: HashMap<u32, usize> = HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        let Some(r) = o.ret else { continue };
        if !alive[i] {
            continue;
        }
        for t in &facts[i].observes {
            if initial(t) {
                continue;
            }
            match producer.get(t) {
                Some(&(p, false)) if p as usize != i && ops[p as usize].ret.is_none() => {
                    let d = deadline.entry(p).or_insert(r);
                    *d = (*d).min(r);
                }
                _ => {}
            }
        }
    }
    let mut bounded = 0;
    for (p, d) in deadline {
        let o = &mut ops[p as usize];
        if d > o.call {
            o.ret = Some(d);
            o.bounded = true;
            bounded += 1;
        }
    }
    bounded
}
