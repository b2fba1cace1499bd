//! The Wing & Gong search with Lowe's memoisation, as in Porcupine's `checkSingle`.
//!
//! Calls and returns of all operations sit in one doubly linked list in history order. The
//! search walks it from the front: at a call it tries to linearize that operation now (the model
//! must accept it, and the pair (set of linearized operations, new state) must be new — the memo
//! that makes the search practical); linearized operations are unlinked ("lifted") and the walk
//! restarts at the front. Reaching a return means the operation returning there was not
//! linearized in time: undo the last choice and try the next call after it.
//!
//! Operations without a return (`info`, or never completed) have only a call entry: they may be
//! linearized at any point after their call, or never. The search succeeds as soon as every
//! operation WITH a return is linearized — remaining open operations are simply never applied.
//!
//! Memo entries are keyed by a 64-bit hash: an incremental Zobrist hash of the linearized set
//! mixed with the state's hash; collisions are resolved by comparing the bitset and the state.

use super::model::{KOp, Model};
use crate::checker::Budget;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One operation for the search.
#[derive(Debug, Clone)]
pub struct SOp {
    /// Position of the invocation in the history (real-time order).
    pub call: usize,
    /// Position of the completion; `None` if it never returned (`info`): optional.
    pub ret: Option<usize>,
    pub op: KOp,
    /// Index of this operation in the caller's list of paired operations (for evidence).
    pub hist: usize,
}

/// How a search ended. `prefix` lists operations (indices into the slice searched) of the
/// deepest linearization reached, in order.
#[derive(Debug, Clone)]
pub enum Outcome {
    Valid,
    Invalid { prefix: Vec<u32> },
    Unknown { reason: String, prefix: Vec<u32> },
}

/// Work done by a search.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Distinct (linearized set, state) configurations memoised.
    pub configurations: u64,
    /// Entries visited in the walk.
    pub steps: u64,
}

/// FxHash's multiply-rotate hasher: fast and good enough for small integer-ish keys.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    h: u64,
}

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    fn write_u64(&mut self, i: u64) {
        self.h = (self.h.rotate_left(5) ^ i).wrapping_mul(FX_K);
    }
    fn finish(&self) -> u64 {
        self.h
    }
}

/// A hasher for keys that already are good 64-bit hashes.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, _bytes: &[u8]) {
        // Only u64 keys are hashed with this hasher.
        self.0 = 0;
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// splitmix64: the per-operation Zobrist keys (and the tests' PRNG).
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The 64-bit hash of a model state used in memo keys.
pub fn hash_state<S: Hash>(s: &S) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    splitmix64(h.finish())
}

/// The memo: (bitset, state) pairs, chained per 64-bit hash in flat arenas.
struct Memo<S> {
    heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    words: usize,
    bits: Vec<u64>,
    states: Vec<S>,
    next: Vec<u32>,
    bytes: usize,
}

const NIL: u32 = u32::MAX;

impl<S: Eq + Clone> Memo<S> {
    fn new(words: usize) -> Memo<S> {
        Memo {
            heads: HashMap::default(),
            words,
            bits: Vec::new(),
            states: Vec::new(),
            next: Vec::new(),
            bytes: 0,
        }
    }

    /// Inserts (lin, s) unless present; true if it was new.
    fn insert(&mut self, h: u64, lin: &[u64], s: &S, extra: usize) -> bool {
        let idx = self.states.len() as u32;
        match self.heads.entry(h) {
            Entry::Occupied(mut e) => {
                let mut at = *e.get();
                while at != NIL {
                    let a = at as usize;
                    if self.states[a] == *s
                        && self.bits[a * self.words..(a + 1) * self.words] == *lin
                    {
                        return false;
                    }
                    at = self.next[a];
                }
                self.next.push(*e.get());
                e.insert(idx);
            }
            Entry::Vacant(e) => {
                self.next.push(NIL);
                e.insert(idx);
            }
        }
        self.bits.extend_from_slice(lin);
        self.states.push(s.clone());
        self.bytes += self.words * 8 + std::mem::size_of::<S>() + extra + 4 + 24;
        true
    }
}

/// Checks whether `ops` (one partition) is linearizable under `model`, to the end.
///
/// `memory` is shared by searches running in parallel for one check: each adds its memo bytes
/// there, and all stop with `Unknown` once the total passes `budget.max_memory`.
pub fn search<M: Model>(
    model: &M,
    ops: &[SOp],
    budget: &Budget,
    memory: &AtomicUsize,
) -> (Outcome, Stats) {
    let mut s = Search::new(model, ops);
    loop {
        if let Some(o) = s.advance(budget, memory, u64::MAX) {
            return (o, s.stats());
        }
    }
}

/// A search in progress: can be advanced a slice of steps at a time, so that many partitions
/// share the cores fairly and the first invalid one can stop the others early.
pub struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [SOp],
    next: Vec<u32>,
    prev: Vec<u32>,
    zobrist: Vec<u64>,
    lin: Vec<u64>,
    zob: u64,
    memo: Memo<M::State>,
    state: M::State,
    calls: Vec<(u32, M::State)>,
    best: Vec<u32>,
    entry: u32,
    remaining: usize,
    reported: usize,
    stats: Stats,
}

impl<'a, M: Model> Search<'a, M> {
    /// Lays out the call/return list of `ops` in history order.
    pub fn new(model: &'a M, ops: &'a [SOp]) -> Search<'a, M> {
        let n = ops.len();
        // Nodes: 0 = head; op i has call node 1 + 2i and return node 2 + 2i.
        let nodes = 1 + 2 * n;
        let mut events: Vec<(usize, u32)> = Vec::with_capacity(2 * n);
        for (i, o) in ops.iter().enumerate() {
            events.push((o.call, 1 + 2 * i as u32));
            if let Some(r) = o.ret {
                events.push((r, 2 + 2 * i as u32));
            }
        }
        events.sort_unstable();
        let mut next = vec![NIL; nodes];
        let mut prev = vec![NIL; nodes];
        let mut last = 0u32;
        for &(_, node) in &events {
            next[last as usize] = node;
            prev[node as usize] = last;
            last = node;
        }
        let words = n.div_ceil(64).max(1);
        let entry = next[0];
        Search {
            model,
            ops,
            next,
            prev,
            zobrist: (0..n as u64).map(|i| splitmix64(i ^ 0x5eed)).collect(),
            lin: vec![0u64; words],
            zob: 0,
            memo: Memo::new(words),
            state: model.init(),
            calls: Vec::new(),
            best: Vec::new(),
            entry,
            remaining: ops.iter().filter(|o| o.ret.is_some()).count(),
            reported: 0,
            stats: Stats::default(),
        }
    }

    /// Work done so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Ends the search: returns its share of the shared memory count and drops the memo.
    fn finish(&mut self, memory: &AtomicUsize, outcome: Outcome) -> Option<Outcome> {
        memory.fetch_sub(self.reported, Ordering::Relaxed);
        self.reported = 0;
        self.memo = Memo::new(1);
        Some(outcome)
    }

    /// Stops the search where it is (another partition decided the verdict): frees its memory.
    pub fn abandon(&mut self, memory: &AtomicUsize) {
        self.finish(memory, Outcome::Valid);
    }

    /// Runs up to `max_steps` more steps. `Some` when the search has ended (call no more).
    pub fn advance(
        &mut self,
        budget: &Budget,
        memory: &AtomicUsize,
        max_steps: u64,
    ) -> Option<Outcome> {
        if self.remaining == 0 {
            return self.finish(memory, Outcome::Valid);
        }
        let ops = self.ops;
        let model = self.model;
        let stop_at = self.stats.steps.saturating_add(max_steps);
        loop {
            self.stats.steps += 1;
            if self.stats.steps & 1023 == 0 {
                self.stats.configurations = self.memo.states.len() as u64;
                let delta = self.memo.bytes - self.reported;
                self.reported = self.memo.bytes;
                let total = memory.fetch_add(delta, Ordering::Relaxed) + delta;
                let reason = if budget.exhausted() {
                    Some("time limit or cancelled")
                } else if total > budget.max_memory {
                    Some("memory limit")
                } else {
                    None
                };
                if let Some(reason) = reason {
                    let prefix = std::mem::take(&mut self.best);
                    return self.finish(
                        memory,
                        Outcome::Unknown {
                            reason: reason.to_string(),
                            prefix,
                        },
                    );
                }
                if self.stats.steps >= stop_at {
                    return None;
                }
            }
            let entry = self.entry;
            if entry != NIL && entry % 2 == 1 {
                let i = ((entry - 1) / 2) as usize;
                if let Some(ns) = model.step(&self.state, &ops[i].op) {
                    self.lin[i / 64] |= 1 << (i % 64);
                    let z = self.zob ^ self.zobrist[i];
                    let h = z ^ hash_state(&ns);
                    let extra = model.heap_bytes(&ns);
                    if self.memo.insert(h, &self.lin, &ns, extra) {
                        self.zob = z;
                        let prior = std::mem::replace(&mut self.state, ns);
                        self.calls.push((i as u32, prior));
                        if ops[i].ret.is_some() {
                            self.remaining -= 1;
                            if self.remaining == 0 {
                                self.stats.configurations = self.memo.states.len() as u64;
                                return self.finish(memory, Outcome::Valid);
                            }
                        }
                        // Lift: unlink the call and its return.
                        self.unlink(entry);
                        if ops[i].ret.is_some() {
                            self.unlink(entry + 1);
                        }
                        if self.calls.len() > self.best.len() {
                            self.best = self.calls.iter().map(|c| c.0).collect();
                        }
                        self.entry = self.next[0];
                        continue;
                    }
                    self.lin[i / 64] &= !(1 << (i % 64));
                }
                self.entry = self.next[entry as usize];
            } else {
                // A return (or the end): the op returning here was not linearized in time.
                let Some((i, prior)) = self.calls.pop() else {
                    self.stats.configurations = self.memo.states.len() as u64;
                    let prefix = std::mem::take(&mut self.best);
                    return self.finish(memory, Outcome::Invalid { prefix });
                };
                let i = i as usize;
                self.state = prior;
                self.lin[i / 64] &= !(1 << (i % 64));
                self.zob ^= self.zobrist[i];
                let call = 1 + 2 * i as u32;
                // Unlift in reverse order: return first, then call.
                if ops[i].ret.is_some() {
                    self.relink(call + 1);
                    self.remaining += 1;
                }
                self.relink(call);
                self.entry = self.next[call as usize];
            }
        }
    }

    fn unlink(&mut self, node: u32) {
        let (p, nx) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = nx;
        if nx != NIL {
            self.prev[nx as usize] = p;
        }
    }

    fn relink(&mut self, node: u32) {
        let (p, nx) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if nx != NIL {
            self.prev[nx as usize] = node;
        }
    }
}
