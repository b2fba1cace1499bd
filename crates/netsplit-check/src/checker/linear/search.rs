//! The Wing & Gong search with Lowe's memoisation, as in Porcupine's `checkSingle`, extended for
//! histories with many `info` operations.
//!
//! Calls and returns of the required operations (those with a return) sit in one doubly linked
//! list in history order. The search walks it from the front: at a call it tries to linearize
//! that operation now (the model must accept it, and the pair (set of linearized operations, new
//! state) must be new — the memo that makes the search practical); linearized operations are
//! unlinked ("lifted") and the walk restarts at the front. Reaching a return means the operation
//! returning there was not linearized in time: before giving up on the configuration, the walk
//! tries the open operations (below); then it undoes the last choice and tries the next
//! candidate after it.
//!
//! Open operations (`info`, or never completed) have only a call: they may be linearized at any
//! point after their call, or never. They sit in a second list, in call order, and are tried only
//! once no required operation can go next — the order matters only for speed (every candidate is
//! still tried), and it keeps the search from applying long-pending open operations eagerly. The
//! search succeeds as soon as every required operation is linearized; remaining open operations
//! never take effect.
//!
//! Three prunings keep the verdict exact while cutting the configurations open operations
//! create. Each is decided by the configuration alone (never by the path to it), so the memo
//! stays sound; that the pruned search still finds a linearization whenever one exists follows
//! from rewriting any linearization into one the pruned search allows:
//! - *Interchangeable*: open operations with the same model operation (same function,
//!   arguments and key) are tried only in call order — the first one not yet linearized. In any
//!   linearization, such operations can be swapped and an unused earlier one substituted for a
//!   later one (an earlier call only loosens the real-time constraint on it; open operations
//!   constrain nobody), without changing any state.
//! - *No-op*: an open operation that would leave the state as it is is not linearized: removing
//!   it from a linearization changes no state.
//! - *Unobserved*: an open operation X that would take the state from s to s' is linearized only
//!   if some operation Y that could go next after it sees the difference: Y is accepted in s' and
//!   does not reach the same state from s. If no candidate does, then in any linearization the
//!   operation right after X reaches the same state without X (or X is last, and so useless), so
//!   X can be removed there. (Candidates after X are exactly the current ones minus X: X has no
//!   return, so lifting it does not move the walk's boundary.)
//!
//! A fourth pruning compares configurations: *dominated*. A configuration is (R, O, s): the
//! required operations linearized, the open ones linearized, the state. If (R, O, s) was
//! explored to the end and failed, then so does (R, O′, s) for any O′ ⊇ O: every continuation
//! of the latter is one of the former (the open operations of O′ \ O may simply never take
//! effect; real-time constraints come from required operations only). Configurations are
//! marked done when the search backtracks out of them, and only done ones prune others (one
//! still being explored proves nothing yet). Open operations of one class are linearized in call
//! order, so O ⊆ O′ is exactly "no more of any class".
//!
//! Memo entries store R, O and the state, keyed by a 64-bit hash of R (an incremental Zobrist
//! hash) mixed with the state's hash, so that entries differing only in O share a chain;
//! comparisons of sets and states make the memo exact. Small sets are stored as a bitset per
//! entry; large ones (more than [`FLAT_MAX_WORDS`] × 64 operations) as the root of a hash-consed
//! tree of bitset words, so that each new configuration costs a few tree nodes rather than a
//! whole bitset: a purely sequential history of n operations takes memory linear in n, not
//! quadratic.

use super::model::{KOp, Model};
use crate::checker::txn::fx::le_words;
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
    /// `ret` is a deadline inferred for an operation that never returned (see
    /// [`super::reduce`]), not its completion.
    pub bounded: bool,
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
        for (word, len) in le_words(bytes) {
            // a short last word is told apart from one padded with zeros by its length
            self.write_u64(if len < 8 {
                word ^ ((len as u64) << 59)
            } else {
                word
            });
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

type IdMap = HashMap<u64, u32, BuildHasherDefault<IdHasher>>;

/// Bytes a hash map entry (u64 → u32) costs, with the table's slack.
const MAP_ENTRY_BYTES: usize = 24;

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

const NIL: u32 = u32::MAX;

/// Partitions of at most this many 64-operation words store memo sets as plain bitsets.
pub const FLAT_MAX_WORDS: usize = 32;

/// Children per node of the hash-consed set tree.
const FAN: usize = 16;

/// One level of the hash-consed set tree: nodes of [`FAN`] child ids, deduplicated.
#[derive(Default)]
struct Level {
    kids: Vec<u32>,
    heads: IdMap,
    next: Vec<u32>,
}

impl Level {
    fn node(&self, id: u32) -> &[u32] {
        &self.kids[id as usize * FAN..(id as usize + 1) * FAN]
    }

    /// The id of the node with children `kids`: found, or (with `create`) added.
    fn intern(&mut self, kids: &[u32; FAN], create: bool) -> Option<u32> {
        let mut h = FxHasher::default();
        for &k in kids {
            h.write_u32(k);
        }
        let h = splitmix64(h.finish());
        let new = (self.kids.len() / FAN) as u32;
        match self.heads.entry(h) {
            Entry::Occupied(mut e) => {
                let mut at = *e.get();
                while at != NIL {
                    if self.kids[at as usize * FAN..(at as usize + 1) * FAN] == *kids {
                        return Some(at);
                    }
                    at = self.next[at as usize];
                }
                if !create {
                    return None;
                }
                self.next.push(*e.get());
                e.insert(new);
            }
            Entry::Vacant(e) => {
                if !create {
                    return None;
                }
                self.next.push(NIL);
                e.insert(new);
            }
        }
        self.kids.extend_from_slice(kids);
        Some(new)
    }
}

/// Sets of operations as roots of a hash-consed tree: leaves are 64-bit words of the bitset,
/// each inner level groups [`FAN`] nodes of the level below. Equal sets have equal roots, and a
/// set that differs from a stored one in one bit shares all but one path with it.
struct SetTree {
    leaves: Vec<u64>,
    leaf_ids: IdMap,
    /// `levels[0]` holds the parents of leaves; the last level holds roots.
    levels: Vec<Level>,
}

impl SetTree {
    fn new(words: usize) -> SetTree {
        let mut depth = 1;
        let mut span = FAN;
        while span < words {
            span *= FAN;
            depth += 1;
        }
        let mut t = SetTree {
            leaves: vec![0],
            leaf_ids: IdMap::default(),
            levels: (0..depth).map(|_| Level::default()).collect(),
        };
        t.leaf_ids.insert(splitmix64(0), 0);
        // The empty set: node 0 of every level, all children 0.
        for l in 0..depth {
            t.levels[l].intern(&[0; FAN], true);
        }
        t
    }

    /// Bytes held (approximately).
    fn bytes(&self) -> usize {
        self.leaves.len() * (8 + MAP_ENTRY_BYTES)
            + self
                .levels
                .iter()
                .map(|l| l.kids.len() * 4 + l.next.len() * (4 + MAP_ENTRY_BYTES))
                .sum::<usize>()
    }

    fn leaf(&mut self, w: u64, create: bool) -> Option<u32> {
        match self.leaf_ids.entry(splitmix64(w)) {
            // splitmix64 is a bijection: equal hashes are equal words.
            Entry::Occupied(e) => Some(*e.get()),
            Entry::Vacant(e) => {
                if !create {
                    return None;
                }
                let id = self.leaves.len() as u32;
                self.leaves.push(w);
                e.insert(id);
                Some(id)
            }
        }
    }

    /// Whether the set of root `a` is a subset of that of root `b`.
    fn subset(&self, a: u32, b: u32) -> bool {
        self.sub(self.levels.len(), a, b)
    }

    /// `a ⊆ b` for nodes at `level` (0: leaves). Node 0 is the empty set at every level.
    fn sub(&self, level: usize, a: u32, b: u32) -> bool {
        if a == b || a == 0 {
            return true;
        }
        if level == 0 {
            return self.leaves[a as usize] & !self.leaves[b as usize] == 0;
        }
        let (na, nb) = (
            self.levels[level - 1].node(a),
            self.levels[level - 1].node(b),
        );
        na.iter().zip(nb).all(|(&x, &y)| self.sub(level - 1, x, y))
    }

    /// The root of `root`'s set plus operation `i`: found (or, with `create`, built); `None`
    /// when that set was never built (so no memo entry can hold it).
    fn with(&mut self, root: u32, i: usize, create: bool) -> Option<u32> {
        let depth = self.levels.len();
        let word = i / 64;
        // Walk down, remembering the node at each level and the child taken.
        let mut path = [(0u32, 0usize); 16];
        let mut node = root;
        for l in (0..depth).rev() {
            let slot = (word / FAN.pow(l as u32)) % FAN;
            path[l] = (node, slot);
            node = self.levels[l].node(node)[slot];
        }
        let mut child = self.leaf(self.leaves[node as usize] | 1 << (i % 64), create)?;
        for (l, &(node, slot)) in path.iter().enumerate().take(depth) {
            let mut kids = [0u32; FAN];
            kids.copy_from_slice(self.levels[l].node(node));
            kids[slot] = child;
            child = self.levels[l].intern(&kids, create)?;
        }
        Some(child)
    }
}

/// One of a search's two sets — required operations linearized, open ones linearized — as the
/// memo stores it: the bitset itself, or (large sets) its root in a hash-consed tree.
struct Keys {
    bits: Vec<u64>,
    tree: Option<SetTree>,
    root: u32,
}

impl Keys {
    /// A set over `n` elements, empty.
    fn new(n: usize) -> Keys {
        let words = n.div_ceil(64).max(1);
        Keys {
            bits: vec![0; words],
            tree: (words > FLAT_MAX_WORDS).then(|| SetTree::new(words)),
            root: 0,
        }
    }

    /// Words per stored key.
    fn width(&self) -> usize {
        if self.tree.is_some() {
            1
        } else {
            self.bits.len()
        }
    }

    /// The key of the current set, plus element `j` if given, into `out`.
    fn key(&mut self, j: Option<usize>, out: &mut Vec<u64>) {
        out.clear();
        match &mut self.tree {
            None => {
                out.extend_from_slice(&self.bits);
                if let Some(j) = j {
                    out[j / 64] |= 1 << (j % 64);
                }
            }
            Some(t) => {
                let r = match j {
                    Some(j) => t.with(self.root, j, true).expect("create always builds"),
                    None => self.root,
                };
                out.push(r as u64);
            }
        }
    }

    /// Adds element `j`, whose new key `key` gave; returns the prior root (for [`Keys::remove`]).
    fn add(&mut self, j: usize, k: &[u64]) -> u32 {
        self.bits[j / 64] |= 1 << (j % 64);
        let prior = self.root;
        if self.tree.is_some() {
            self.root = k[0] as u32;
        }
        prior
    }

    fn remove(&mut self, j: usize, prior_root: u32) {
        self.bits[j / 64] &= !(1 << (j % 64));
        self.root = prior_root;
    }

    /// Whether the set of key `a` is a subset of that of key `b`.
    fn subset(&self, a: &[u64], b: &[u64]) -> bool {
        match &self.tree {
            None => a.iter().zip(b).all(|(x, y)| x & !y == 0),
            Some(t) => t.subset(a[0] as u32, b[0] as u32),
        }
    }

    fn bytes(&self) -> usize {
        self.tree.as_ref().map_or(0, SetTree::bytes)
    }
}

/// What the memo knows of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    New,
    /// Visited before (and so explored to the end: see [`Search::try_lift`]).
    Seen,
    /// A done configuration with the same required set and state and fewer open operations.
    Dominated,
}

/// The memo: (required-set key, open-set key, state) entries in flat arenas, with two
/// indexes. Every entry is chained under a hash of all three (to find the very configuration);
/// done entries are also chained under a hash of the required set and the state alone, keeping
/// only those whose open set is minimal among them (to find one that dominates). Each entry
/// carries a fingerprint of its open set (an OR of one bit per operation), so most non-subsets
/// are rejected without comparing sets.
struct Memo<S> {
    exact: IdMap,
    dominant: IdMap,
    rw: usize,
    ow: usize,
    req: Vec<u64>,
    open: Vec<u64>,
    states: Vec<S>,
    /// Hash of (required set, state) of each entry, and its open set's fingerprint.
    hash: Vec<u64>,
    print: Vec<u64>,
    next: Vec<u32>,
    /// Next in the dominance chain (`NIL` also for entries not in one).
    dnext: Vec<u32>,
    /// Whether open sets can differ at all (the partition has open operations); if not, the
    /// dominance index stays empty.
    dominance: bool,
    bytes: usize,
}

impl<S: Eq + Clone> Memo<S> {
    fn new(rw: usize, ow: usize, dominance: bool) -> Memo<S> {
        Memo {
            dominance,
            exact: IdMap::default(),
            dominant: IdMap::default(),
            rw,
            ow,
            req: Vec::new(),
            open: Vec::new(),
            states: Vec::new(),
            hash: Vec::new(),
            print: Vec::new(),
            next: Vec::new(),
            dnext: Vec::new(),
            bytes: 0,
        }
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    fn req_of(&self, a: usize) -> &[u64] {
        &self.req[a * self.rw..(a + 1) * self.rw]
    }

    fn open_of(&self, a: usize) -> &[u64] {
        &self.open[a * self.ow..(a + 1) * self.ow]
    }

    /// `h`: hash of (required set, state); `hx`: of all three; `fp`: the open set's
    /// fingerprint.
    #[allow(clippy::too_many_arguments)]
    fn find(
        &self,
        h: u64,
        hx: u64,
        rk: &[u64],
        ok: &[u64],
        fp: u64,
        s: &S,
        subset: impl Fn(&[u64], &[u64]) -> bool,
    ) -> Found {
        let mut at = self.exact.get(&hx).copied().unwrap_or(NIL);
        while at != NIL {
            let a = at as usize;
            if self.states[a] == *s && self.req_of(a) == rk && self.open_of(a) == ok {
                return Found::Seen;
            }
            at = self.next[a];
        }
        if !self.dominance {
            return Found::New;
        }
        let mut at = self.dominant.get(&h).copied().unwrap_or(NIL);
        while at != NIL {
            let a = at as usize;
            if self.print[a] & !fp == 0
                && self.states[a] == *s
                && self.req_of(a) == rk
                && subset(self.open_of(a), ok)
            {
                return Found::Dominated;
            }
            at = self.dnext[a];
        }
        Found::New
    }

    /// Adds an entry (not done); returns its index.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        h: u64,
        hx: u64,
        rk: &[u64],
        ok: &[u64],
        fp: u64,
        s: S,
        extra: usize,
    ) -> u32 {
        let idx = self.states.len() as u32;
        let prev = self.exact.insert(hx, idx).unwrap_or(NIL);
        self.next.push(prev);
        self.req.extend_from_slice(rk);
        self.open.extend_from_slice(ok);
        self.states.push(s);
        self.bytes += (self.rw + self.ow) * 8 + std::mem::size_of::<S>() + extra + 4;
        self.bytes += MAP_ENTRY_BYTES;
        if self.dominance {
            self.dnext.push(NIL);
            self.hash.push(h);
            self.print.push(fp);
            self.bytes += 20 + MAP_ENTRY_BYTES;
        }
        idx
    }

    /// Entry `e` has been explored to the end: it joins its dominance chain, unless a done
    /// entry there already has a subset of its open set; those with a superset leave it.
    fn set_done(&mut self, e: u32, subset: impl Fn(&[u64], &[u64]) -> bool) {
        if !self.dominance {
            return;
        }
        let ea = e as usize;
        let h = self.hash[ea];
        let same =
            |m: &Memo<S>, a: usize| m.states[a] == m.states[ea] && m.req_of(a) == m.req_of(ea);
        let head = self.dominant.get(&h).copied().unwrap_or(NIL);
        let (mut prev, mut at) = (NIL, head);
        let mut first = head;
        while at != NIL {
            let a = at as usize;
            let nx = self.dnext[a];
            if same(self, a) {
                if self.print[a] & !self.print[ea] == 0 && subset(self.open_of(a), self.open_of(ea))
                {
                    return;
                }
                if self.print[ea] & !self.print[a] == 0 && subset(self.open_of(ea), self.open_of(a))
                {
                    // Dominated by `e` from now on: unlink.
                    if prev == NIL {
                        first = nx;
                    } else {
                        self.dnext[prev as usize] = nx;
                    }
                    self.dnext[a] = NIL;
                    at = nx;
                    continue;
                }
            }
            prev = at;
            at = nx;
        }
        self.dnext[ea] = first;
        self.dominant.insert(h, e);
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

/// Where the walk is.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    /// At this node of the required list (`NIL`: past its end).
    Main(u32),
    /// At this slot of the open list, which holds candidates while their call comes before
    /// `boundary` (the first return not yet lifted).
    Open { slot: u32, boundary: usize },
}

/// A choice made: the operation linearized, what it replaced, the memo entry of the
/// configuration it led to, and where the walk resumes.
struct Frame<S> {
    op: u32,
    prior: S,
    /// The prior root of the set the operation joined (required or open), and the prior
    /// fingerprint of the open set.
    prior_root: u32,
    prior_fp: u64,
    entry: u32,
    /// For open operations: the boundary the open list was walked with.
    boundary: usize,
}

/// A search in progress: can be advanced a slice of steps at a time, so that many partitions
/// share the cores fairly and the first invalid one can stop the others early.
pub struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [SOp],
    /// Required list: node 0 = head; op i has call node 1 + 2i and return node 2 + 2i.
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Open list: slot 0 = head; `open[s - 1]` is the op in slot s (call order).
    open: Vec<u32>,
    onext: Vec<u32>,
    oprev: Vec<u32>,
    /// Slot of each open op (0 for required ops).
    slot_of: Vec<u32>,
    /// For open ops: the previous open op with the same model operation (or `NIL`).
    class_prev: Vec<u32>,
    /// Each op's position among the required ops, or among the open ops.
    rank: Vec<u32>,
    /// Zobrist keys of required ops, and the hash of the required set.
    zobrist: Vec<u64>,
    zob: u64,
    /// Every op linearized (membership), and the two sets as the memo keys them.
    lin: Vec<u64>,
    req: Keys,
    opened: Keys,
    /// The open set's Zobrist hash and fingerprint.
    ozob: u64,
    ofp: u64,
    /// Scratch keys.
    rk: Vec<u64>,
    ok: Vec<u64>,
    memo: Memo<M::State>,
    state: M::State,
    frames: Vec<Frame<M::State>>,
    best: Vec<u32>,
    /// `best[..best_common]` equals the ops of `frames[..best_common]`.
    best_common: usize,
    cursor: Cursor,
    remaining: usize,
    reported: usize,
    stats: Stats,
}

impl<'a, M: Model> Search<'a, M> {
    /// Lays out the lists of `ops` in history order.
    pub fn new(model: &'a M, ops: &'a [SOp]) -> Search<'a, M> {
        let n = ops.len();
        let nodes = 1 + 2 * n;
        let mut events: Vec<(usize, u32)> = Vec::with_capacity(2 * n);
        let mut open: Vec<(usize, u32)> = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            match o.ret {
                Some(r) => {
                    events.push((o.call, 1 + 2 * i as u32));
                    events.push((r, 2 + 2 * i as u32));
                }
                None => open.push((o.call, i as u32)),
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
        open.sort_unstable();
        let open: Vec<u32> = open.into_iter().map(|o| o.1).collect();
        let mut slot_of = vec![0u32; n];
        let mut onext = vec![NIL; open.len() + 1];
        let mut oprev = vec![NIL; open.len() + 1];
        let mut class_prev = vec![NIL; n];
        let mut last_of: HashMap<&KOp, u32> = HashMap::new();
        for (s, &i) in open.iter().enumerate() {
            let s = s as u32 + 1;
            slot_of[i as usize] = s;
            onext[s as usize - 1] = s;
            oprev[s as usize] = s - 1;
            if let Some(p) = last_of.insert(&ops[i as usize].op, i) {
                class_prev[i as usize] = p;
            }
        }
        let mut rank = vec![0u32; n];
        let mut counts = [0u32; 2];
        for (i, o) in ops.iter().enumerate() {
            let c = &mut counts[o.ret.is_none() as usize];
            rank[i] = *c;
            *c += 1;
        }
        let req = Keys::new(counts[0] as usize);
        let opened = Keys::new(counts[1] as usize);
        // Without open operations every open set is empty: no key words, no dominance.
        let ow = if counts[1] > 0 { opened.width() } else { 0 };
        let memo = Memo::new(req.width(), ow, counts[1] > 0);
        let entry = next[0];
        Search {
            model,
            ops,
            next,
            prev,
            open,
            onext,
            oprev,
            slot_of,
            class_prev,
            rank,
            zobrist: (0..n as u64).map(|i| splitmix64(i ^ 0x5eed)).collect(),
            zob: 0,
            lin: vec![0u64; n.div_ceil(64).max(1)],
            req,
            opened,
            ozob: 0,
            ofp: 0,
            rk: Vec::new(),
            ok: Vec::new(),
            memo,
            state: model.init(),
            frames: Vec::new(),
            best: Vec::new(),
            best_common: 0,
            cursor: Cursor::Main(entry),
            remaining: ops.iter().filter(|o| o.ret.is_some()).count(),
            reported: 0,
            stats: Stats::default(),
        }
    }

    /// Work done so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn bytes(&self) -> usize {
        self.memo.bytes + self.req.bytes() + self.opened.bytes()
    }

    /// Ends the search: returns its share of the shared memory count and drops the memo.
    fn finish(&mut self, memory: &AtomicUsize, outcome: Outcome) -> Option<Outcome> {
        self.stats.configurations = self.memo.len() as u64;
        memory.fetch_sub(self.reported, Ordering::Relaxed);
        self.reported = 0;
        self.memo = Memo::new(1, 1, false);
        self.req = Keys::new(0);
        self.opened = Keys::new(0);
        Some(outcome)
    }

    /// Stops the search where it is (another partition decided the verdict): frees its memory.
    pub fn abandon(&mut self, memory: &AtomicUsize) {
        self.finish(memory, Outcome::Valid);
    }

    fn linearized(&self, i: usize) -> bool {
        self.lin[i / 64] & (1 << (i % 64)) != 0
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
        let stop_at = self.stats.steps.saturating_add(max_steps);
        loop {
            self.stats.steps += 1;
            if self.stats.steps & 1023 == 0 {
                self.stats.configurations = self.memo.len() as u64;
                let bytes = self.bytes();
                let total = if bytes >= self.reported {
                    let delta = bytes - self.reported;
                    memory.fetch_add(delta, Ordering::Relaxed) + delta
                } else {
                    let delta = self.reported - bytes;
                    memory.fetch_sub(delta, Ordering::Relaxed) - delta
                };
                self.reported = bytes;
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
            match self.cursor {
                Cursor::Main(node) if node != NIL && node % 2 == 1 => {
                    let i = ((node - 1) / 2) as usize;
                    if self.try_lift(i, 0) {
                        if self.remaining == 0 {
                            return self.finish(memory, Outcome::Valid);
                        }
                    } else {
                        self.cursor = Cursor::Main(self.next[node as usize]);
                    }
                }
                Cursor::Main(node) => {
                    // A return (or the end): no required operation can go next but those
                    // already tried. Try the open ones invoked before this return.
                    let boundary = if node == NIL {
                        usize::MAX
                    } else {
                        self.ops[((node - 2) / 2) as usize]
                            .ret
                            .unwrap_or(usize::MAX)
                    };
                    self.cursor = Cursor::Open {
                        slot: self.onext[0],
                        boundary,
                    };
                }
                Cursor::Open { slot, boundary }
                    if slot != NIL
                        && self.ops[self.open[slot as usize - 1] as usize].call < boundary =>
                {
                    let i = self.open[slot as usize - 1] as usize;
                    if !self.try_lift(i, boundary) {
                        self.cursor = Cursor::Open {
                            slot: self.onext[slot as usize],
                            boundary,
                        };
                    }
                }
                Cursor::Open { .. } => {
                    // Nothing more to try here: undo the last choice.
                    if !self.backtrack() {
                        let prefix = std::mem::take(&mut self.best);
                        return self.finish(memory, Outcome::Invalid { prefix });
                    }
                }
            }
        }
    }

    /// Tries to linearize op `i` next (`boundary`: the open list's, for open ops). On success
    /// the op is lifted and the walk restarts at the front.
    fn try_lift(&mut self, i: usize, boundary: usize) -> bool {
        let ops = self.ops;
        let o = &ops[i];
        let open = o.ret.is_none();
        if open {
            let p = self.class_prev[i];
            if p != NIL && !self.linearized(p as usize) {
                return false;
            }
        }
        let Some(ns) = self.model.step(&self.state, &o.op) else {
            return false;
        };
        if open && ns == self.state {
            return false;
        }
        let j = self.rank[i] as usize;
        let z = if open {
            self.zob
        } else {
            self.zob ^ self.zobrist[i]
        };
        let h = z ^ hash_state(&ns);
        let (oz, fp) = if open {
            (
                self.ozob ^ self.zobrist[i],
                self.ofp | 1 << (self.zobrist[i] >> 58),
            )
        } else {
            (self.ozob, self.ofp)
        };
        let hx = h ^ splitmix64(oz);
        // The configuration's keys, and what the memo knows of it. A configuration found is
        // one explored to the end: it cannot be on the current path, where every configuration
        // has fewer operations linearized than this one.
        let (mut rk, mut ok) = (std::mem::take(&mut self.rk), std::mem::take(&mut self.ok));
        self.req.key((!open).then_some(j), &mut rk);
        if self.memo.ow > 0 {
            self.opened.key(open.then_some(j), &mut ok);
        }
        let opened = &self.opened;
        let found = self
            .memo
            .find(h, hx, &rk, &ok, fp, &ns, |a, b| opened.subset(a, b));
        if found != Found::New || (open && !self.observable(i, &ns, boundary)) {
            (self.rk, self.ok) = (rk, ok);
            return false;
        }
        self.lin[i / 64] |= 1 << (i % 64);
        let prior_root = if open {
            self.opened.add(j, &ok)
        } else {
            self.req.add(j, &rk)
        };
        let extra = self.model.heap_bytes(&ns);
        let entry = self.memo.insert(h, hx, &rk, &ok, fp, ns.clone(), extra);
        (self.rk, self.ok) = (rk, ok);
        self.zob = z;
        self.ozob = oz;
        let prior_fp = std::mem::replace(&mut self.ofp, fp);
        let prior = std::mem::replace(&mut self.state, ns);
        self.frames.push(Frame {
            op: i as u32,
            prior,
            prior_root,
            prior_fp,
            entry,
            boundary,
        });
        if open {
            let s = self.slot_of[i];
            let (p, nx) = (self.oprev[s as usize], self.onext[s as usize]);
            self.onext[p as usize] = nx;
            if nx != NIL {
                self.oprev[nx as usize] = p;
            }
        } else {
            self.remaining -= 1;
            let call = 1 + 2 * i as u32;
            self.unlink(call);
            self.unlink(call + 1);
        }
        if self.frames.len() > self.best.len() {
            self.best.truncate(self.best_common);
            self.best
                .extend(self.frames[self.best_common..].iter().map(|f| f.op));
            self.best_common = self.frames.len();
        }
        self.cursor = Cursor::Main(self.next[0]);
        true
    }

    /// Whether some candidate that could follow open op `x` (taking the state to `after`) sees
    /// the difference `x` makes (see the module docs).
    fn observable(&self, x: usize, after: &M::State, boundary: usize) -> bool {
        let model = self.model;
        let sees = |y: usize| match model.step(after, &self.ops[y].op) {
            Some(t) => model.step(&self.state, &self.ops[y].op).as_ref() != Some(&t),
            None => false,
        };
        let mut node = self.next[0];
        while node != NIL && node % 2 == 1 {
            if sees(((node - 1) / 2) as usize) {
                return true;
            }
            node = self.next[node as usize];
        }
        let mut slot = self.onext[0];
        while slot != NIL {
            let y = self.open[slot as usize - 1] as usize;
            if self.ops[y].call >= boundary {
                break;
            }
            if y != x && sees(y) {
                return true;
            }
            slot = self.onext[slot as usize];
        }
        false
    }

    /// Undoes the last choice and moves the walk past it. False when there is none.
    fn backtrack(&mut self) -> bool {
        let Some(f) = self.frames.pop() else {
            return false;
        };
        self.best_common = self.best_common.min(self.frames.len());
        // Every continuation of that configuration has been tried.
        let opened = &self.opened;
        self.memo.set_done(f.entry, |a, b| opened.subset(a, b));
        self.ofp = f.prior_fp;
        let i = f.op as usize;
        let j = self.rank[i] as usize;
        self.state = f.prior;
        self.lin[i / 64] &= !(1 << (i % 64));
        if self.ops[i].ret.is_some() {
            self.zob ^= self.zobrist[i];
            self.req.remove(j, f.prior_root);
        } else {
            self.ozob ^= self.zobrist[i];
            self.opened.remove(j, f.prior_root);
        }
        if self.ops[i].ret.is_some() {
            let call = 1 + 2 * i as u32;
            // Unlift in reverse order: return first, then call.
            self.relink(call + 1);
            self.relink(call);
            self.remaining += 1;
            self.cursor = Cursor::Main(self.next[call as usize]);
        } else {
            let s = self.slot_of[i];
            let (p, nx) = (self.oprev[s as usize], self.onext[s as usize]);
            self.onext[p as usize] = s;
            if nx != NIL {
                self.oprev[nx as usize] = s;
            }
            self.cursor = Cursor::Open {
                slot: nx,
                boundary: f.boundary,
            };
        }
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of open sets (flat for 100 elements, a tree for 5000) and memo entries over them.
    fn memo_case(n: usize) {
        let mut keys = Keys::new(n);
        let key = |keys: &mut Keys, elems: &[usize]| {
            // Build the set element by element (as the search does), then read its key.
            let mut k = Vec::new();
            let saved = (keys.bits.clone(), keys.root);
            for &e in elems {
                keys.key(Some(e), &mut k);
                keys.add(e, &k);
            }
            keys.key(None, &mut k);
            (keys.bits, keys.root) = saved;
            k
        };
        let fp = |elems: &[usize]| elems.iter().fold(0u64, |f, &e| f | 1 << (e % 64));
        let (a, ab, abc, c) = (&[3][..], &[3, n - 1][..], &[3, n - 1, 40][..], &[40][..]);
        let (ka, kab, kabc, kc) = (
            key(&mut keys, a),
            key(&mut keys, ab),
            key(&mut keys, abc),
            key(&mut keys, c),
        );
        let rk = [0u64];
        let mut m: Memo<u32> = Memo::new(1, keys.width(), true);
        let sub = |x: &[u64], y: &[u64]| keys.subset(x, y);
        let e = m.insert(7, 70, &rk, &kab, fp(ab), 1, 0);
        // Not done yet: only the very same configuration is found.
        assert_eq!(m.find(7, 70, &rk, &kab, fp(ab), &1, sub), Found::Seen);
        assert_eq!(m.find(7, 71, &rk, &kabc, fp(abc), &1, sub), Found::New);
        m.set_done(e, sub);
        // Done: supersets of its open set are dominated; subsets, other sets, other states and
        // other required sets are not.
        assert_eq!(
            m.find(7, 71, &rk, &kabc, fp(abc), &1, sub),
            Found::Dominated
        );
        assert_eq!(m.find(7, 72, &rk, &ka, fp(a), &1, sub), Found::New);
        assert_eq!(m.find(7, 73, &rk, &kc, fp(c), &1, sub), Found::New);
        assert_eq!(m.find(7, 71, &rk, &kabc, fp(abc), &2, sub), Found::New);
        assert_eq!(m.find(7, 71, &[1], &kabc, fp(abc), &1, sub), Found::New);
        // A done subset replaces it in the chain; a done superset does not join.
        let e2 = m.insert(7, 72, &rk, &ka, fp(a), 1, 0);
        m.set_done(e2, sub);
        assert_eq!(m.dominant[&7], e2);
        assert_eq!(m.dnext[e2 as usize], NIL);
        let e3 = m.insert(7, 71, &rk, &kabc, fp(abc), 1, 0);
        m.set_done(e3, sub);
        assert_eq!(m.dominant[&7], e2);
        assert_eq!(m.find(7, 70, &rk, &kab, fp(ab), &1, sub), Found::Seen);
        assert_eq!(m.find(7, 74, &rk, &kab, fp(ab), &1, sub), Found::Dominated);
        assert_eq!(m.find(7, 73, &rk, &kc, fp(c), &1, sub), Found::New);
    }

    #[test]
    fn memo_prunes_by_done_subsets_only() {
        memo_case(100);
        memo_case(5000);
    }

    #[test]
    fn set_tree_roots_are_canonical() {
        // 5000 ops: 79 words, two inner levels.
        let mut t = SetTree::new(79);
        assert_eq!(t.levels.len(), 2);
        let a = t.with(0, 4000, true).unwrap();
        let ab = t.with(a, 7, true).unwrap();
        let b = t.with(0, 7, true).unwrap();
        let ba = t.with(b, 4000, true).unwrap();
        assert_eq!(ab, ba);
        assert_ne!(a, b);
        assert_eq!(t.with(0, 4000, false), Some(a));
        assert_eq!(t.with(a, 8, false), None);
        // Adding a present element gives the same set.
        assert_eq!(t.with(ab, 7, true), Some(ab));
    }
}
