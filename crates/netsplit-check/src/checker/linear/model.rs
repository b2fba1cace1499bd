//! Sequential specifications for the linearizability search.
//!
//! Every model works on pre-digested operations ([`LOp`]): JSON values are interned to `u32` ids
//! once, before the search, so a step is a few integer comparisons and a state hashes in
//! nanoseconds. The search itself ([`super::search`]) is generic over [`Model`]; [`Keyed`] turns
//! any model into one whose state is a map over independent keys (for `--no-partition`).

use serde_json::Value;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

/// A value id: the index of an interned JSON value.
pub type Vid = u32;

/// JSON values ↔ dense ids (equality is equality of the compact JSON text).
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: HashMap<String, Vid>,
    vals: Vec<Value>,
}

impl Interner {
    /// The id of `v`, allocating one the first time.
    pub fn id(&mut self, v: &Value) -> Vid {
        let k = v.to_string();
        if let Some(&id) = self.ids.get(&k) {
            return id;
        }
        let id = self.vals.len() as Vid;
        self.vals.push(v.clone());
        self.ids.insert(k, id);
        id
    }

    /// The value of an id (`null` for an id this interner never handed out).
    pub fn value(&self, id: Vid) -> Value {
        self.vals.get(id as usize).cloned().unwrap_or(Value::Null)
    }

    /// How many distinct values have been interned.
    pub fn len(&self) -> usize {
        self.vals.len()
    }
}

/// A micro-operation of a multi-register transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Micro {
    pub write: bool,
    pub key: Vid,
    pub val: Vid,
}

/// An operation as the models see it. Unknown outcomes are encoded per variant (an `info`
/// dequeue has no known result); reads with unknown results never reach a model (they impose
/// no constraint and change nothing, so they are dropped before the search).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LOp {
    Read(Vid),
    Write(Vid),
    Cas(Vid, Vid),
    Txn(Box<[Micro]>),
    Acquire,
    Release,
    Add(Vid),
    /// A set read: the elements returned, sorted (duplicates kept, so they never match).
    SetRead(Box<[Vid]>),
    Enqueue(Vid),
    /// `None`: outcome unknown; `Some(None)`: returned "empty"; `Some(Some(v))`: returned v.
    Dequeue(Option<Option<Vid>>),
    Get(KvStr),
    Put(KvStr),
    Append(KvStr),
}

/// An operation with its partition key (dense id; 0 when the history is not keyed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KOp {
    pub key: u32,
    pub op: LOp,
}

/// A sequential specification: an initial state and a partial step function.
pub trait Model: Sync {
    type State: Clone + Eq + Hash + Send;
    /// The initial state.
    fn init(&self) -> Self::State;
    /// The state after `op`, or `None` if `op` cannot happen in `s`.
    fn step(&self, s: &Self::State, op: &KOp) -> Option<Self::State>;
    /// A state as JSON, for evidence.
    fn state_json(&self, s: &Self::State) -> Value;
    /// Heap bytes a state holds beyond `size_of::<State>()` (for the memory budget).
    fn heap_bytes(&self, _s: &Self::State) -> usize {
        0
    }
}

/// `register` and `cas-register`: one value, read / write / compare-and-set.
pub struct Register<'a> {
    pub init: Vid,
    pub values: &'a Interner,
}

impl Model for Register<'_> {
    type State = Vid;
    fn init(&self) -> Vid {
        self.init
    }
    fn step(&self, s: &Vid, op: &KOp) -> Option<Vid> {
        match op.op {
            LOp::Read(v) => (v == *s).then_some(*s),
            LOp::Write(v) => Some(v),
            LOp::Cas(from, to) => (from == *s).then_some(to),
            _ => None,
        }
    }
    fn state_json(&self, s: &Vid) -> Value {
        self.values.value(*s)
    }
}

/// `multi-register`: registers over several keys, changed by transactions of reads and writes.
pub struct MultiRegister<'a> {
    /// The initial value of each register, by register id.
    pub init: Box<[Vid]>,
    pub values: &'a Interner,
    pub keys: &'a Interner,
}

impl Model for MultiRegister<'_> {
    type State = Box<[Vid]>;
    fn init(&self) -> Box<[Vid]> {
        self.init.clone()
    }
    fn step(&self, s: &Box<[Vid]>, op: &KOp) -> Option<Box<[Vid]>> {
        let LOp::Txn(micros) = &op.op else {
            return None;
        };
        let mut next: Option<Box<[Vid]>> = None;
        for m in micros.iter() {
            let cur = next.as_deref().unwrap_or(s);
            let k = m.key as usize;
            if m.write {
                next.get_or_insert_with(|| s.clone())[k] = m.val;
            } else if *cur.get(k)? != m.val {
                return None;
            }
        }
        Some(next.unwrap_or_else(|| s.clone()))
    }
    fn state_json(&self, s: &Box<[Vid]>) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in s.iter().enumerate() {
            m.insert(key_text(&self.keys.value(k as Vid)), self.values.value(*v));
        }
        Value::Object(m)
    }
    fn heap_bytes(&self, s: &Box<[Vid]>) -> usize {
        s.len() * 4
    }
}

/// `mutex`: acquire / release of one lock (`init`: held at the start).
pub struct Mutex {
    pub init: bool,
}

impl Model for Mutex {
    type State = bool;
    fn init(&self) -> bool {
        self.init
    }
    fn step(&self, held: &bool, op: &KOp) -> Option<bool> {
        match op.op {
            LOp::Acquire => (!*held).then_some(true),
            LOp::Release => (*held).then_some(false),
            _ => None,
        }
    }
    fn state_json(&self, held: &bool) -> Value {
        Value::String(if *held { "held" } else { "free" }.into())
    }
}

/// How operations change a sequence of values: the sequence after an operation, or `None` if
/// the operation cannot happen.
pub type ElementsStep = fn(&[Vid], &LOp) -> Option<Box<[Vid]>>;

/// `set` and `fifo-queue`: the state is a sequence of values, shown as a JSON array; the
/// models differ only in how operations change it ([`set_step`], [`fifo_queue_step`]).
pub struct Elements<'a> {
    pub init: Box<[Vid]>,
    pub values: &'a Interner,
    pub step: ElementsStep,
}

impl Model for Elements<'_> {
    type State = Box<[Vid]>;
    fn init(&self) -> Box<[Vid]> {
        self.init.clone()
    }
    fn step(&self, s: &Box<[Vid]>, op: &KOp) -> Option<Box<[Vid]>> {
        (self.step)(s, &op.op)
    }
    fn state_json(&self, s: &Box<[Vid]>) -> Value {
        Value::Array(s.iter().map(|v| self.values.value(*v)).collect())
    }
    fn heap_bytes(&self, s: &Box<[Vid]>) -> usize {
        s.len() * 4
    }
}

/// `set`: add elements; a read returns the whole set. The state is kept sorted.
pub fn set_step(s: &[Vid], op: &LOp) -> Option<Box<[Vid]>> {
    match op {
        LOp::Add(v) => match s.binary_search(v) {
            Ok(_) => Some(s.into()),
            Err(at) => {
                let mut n = Vec::with_capacity(s.len() + 1);
                n.extend_from_slice(&s[..at]);
                n.push(*v);
                n.extend_from_slice(&s[at..]);
                Some(n.into_boxed_slice())
            }
        },
        LOp::SetRead(vs) => (**vs == *s).then(|| s.into()),
        _ => None,
    }
}

/// `fifo-queue`: enqueue v; dequeue returns the oldest element, or null when empty. The state
/// is oldest first.
pub fn fifo_queue_step(s: &[Vid], op: &LOp) -> Option<Box<[Vid]>> {
    match op {
        LOp::Enqueue(v) => {
            let mut n = Vec::with_capacity(s.len() + 1);
            n.extend_from_slice(s);
            n.push(*v);
            Some(n.into_boxed_slice())
        }
        LOp::Dequeue(None) => Some(if s.is_empty() {
            s.into()
        } else {
            s[1..].into()
        }),
        LOp::Dequeue(Some(None)) => s.is_empty().then(|| s.into()),
        LOp::Dequeue(Some(Some(v))) => (s.first() == Some(v)).then(|| s[1..].into()),
        _ => None,
    }
}

/// A shared string with a polynomial hash maintained under concatenation, so that kv states
/// (strings that grow with every append) hash and compare unequal in O(1) in the memo.
#[derive(Debug, Clone)]
pub struct KvStr {
    hash: u64,
    /// `HASH_BASE ^ len`, to extend the hash when something is appended.
    pow: u64,
    s: Arc<str>,
}

const HASH_BASE: u64 = 0x100_0000_01b3;

impl KvStr {
    /// A string and its hash.
    pub fn new(s: &str) -> KvStr {
        let (mut hash, mut pow) = (0u64, 1u64);
        for b in s.bytes() {
            hash = hash.wrapping_mul(HASH_BASE).wrapping_add(b as u64 + 1);
            pow = pow.wrapping_mul(HASH_BASE);
        }
        KvStr {
            hash,
            pow,
            s: Arc::from(s),
        }
    }

    /// `self` followed by `tail`.
    pub fn concat(&self, tail: &KvStr) -> KvStr {
        let mut n = String::with_capacity(self.s.len() + tail.s.len());
        n.push_str(&self.s);
        n.push_str(&tail.s);
        KvStr {
            hash: self.hash.wrapping_mul(tail.pow).wrapping_add(tail.hash),
            pow: self.pow.wrapping_mul(tail.pow),
            s: Arc::from(n),
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.s
    }
}

impl PartialEq for KvStr {
    fn eq(&self, o: &KvStr) -> bool {
        self.hash == o.hash
            && self.s.len() == o.s.len()
            && (Arc::ptr_eq(&self.s, &o.s) || *self.s == *o.s)
    }
}

impl Eq for KvStr {}

impl Hash for KvStr {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

/// `kv` (one key of it): a string register with get / put / append.
pub struct KvString {
    pub init: KvStr,
}

impl Model for KvString {
    type State = KvStr;
    fn init(&self) -> KvStr {
        self.init.clone()
    }
    fn step(&self, s: &KvStr, op: &KOp) -> Option<KvStr> {
        match &op.op {
            LOp::Get(v) => (v == s).then(|| s.clone()),
            LOp::Put(v) => Some(v.clone()),
            LOp::Append(v) => Some(if v.s.is_empty() {
                s.clone()
            } else {
                s.concat(v)
            }),
            _ => None,
        }
    }
    fn state_json(&self, s: &KvStr) -> Value {
        Value::String(s.as_str().to_string())
    }
    fn heap_bytes(&self, s: &KvStr) -> usize {
        s.s.len() + 16
    }
}

/// Any model over independent keys as one state: a map from key to the inner state. Used when
/// a keyed history is checked as a whole (`--no-partition`).
pub struct Keyed<'a, M> {
    pub inner: &'a M,
    pub nkeys: usize,
    pub keys: &'a [Value],
}

impl<M: Model> Model for Keyed<'_, M> {
    type State = Box<[M::State]>;
    fn init(&self) -> Self::State {
        vec![self.inner.init(); self.nkeys].into_boxed_slice()
    }
    fn step(&self, s: &Self::State, op: &KOp) -> Option<Self::State> {
        let k = op.key as usize;
        let cur = s.get(k)?;
        let n = self.inner.step(cur, op)?;
        if n == *cur {
            return Some(s.clone());
        }
        let mut out = s.clone();
        out[k] = n;
        Some(out)
    }
    fn state_json(&self, s: &Self::State) -> Value {
        let mut m = serde_json::Map::new();
        for (k, st) in s.iter().enumerate() {
            let key = self.keys.get(k).map_or(k.to_string(), key_text);
            m.insert(key, self.inner.state_json(st));
        }
        Value::Object(m)
    }
    fn heap_bytes(&self, s: &Self::State) -> usize {
        s.iter()
            .map(|x| std::mem::size_of::<M::State>() + self.inner.heap_bytes(x))
            .sum()
    }
}

/// A key as an object key: strings as they are, anything else as JSON text.
pub fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(op: LOp) -> KOp {
        KOp { key: 0, op }
    }

    #[test]
    fn cas_register_compares_before_setting() {
        let values = Interner::default();
        let m = Register {
            init: 0,
            values: &values,
        };
        assert_eq!(m.step(&0, &k(LOp::Cas(0, 2))), Some(2));
        assert_eq!(m.step(&1, &k(LOp::Cas(0, 2))), None);
        assert_eq!(m.step(&1, &k(LOp::Read(1))), Some(1));
        assert_eq!(m.step(&1, &k(LOp::Read(2))), None);
    }

    #[test]
    fn fifo_queue_dequeues_oldest_or_reports_empty() {
        let values = Interner::default();
        let q = Elements {
            init: Box::new([]),
            values: &values,
            step: fifo_queue_step,
        };
        let s = q.step(&q.init(), &k(LOp::Enqueue(1))).unwrap();
        let s = q.step(&s, &k(LOp::Enqueue(2))).unwrap();
        assert!(q.step(&s, &k(LOp::Dequeue(Some(Some(2))))).is_none());
        let s = q.step(&s, &k(LOp::Dequeue(Some(Some(1))))).unwrap();
        assert_eq!(&*s, &[2]);
        assert!(q.step(&s, &k(LOp::Dequeue(Some(None)))).is_none());
    }

    #[test]
    fn kv_string_hash_survives_concatenation() {
        let ab = KvStr::new("a").concat(&KvStr::new("b"));
        assert_eq!(ab, KvStr::new("ab"));
        assert_eq!(
            super::super::search::hash_state(&ab),
            super::super::search::hash_state(&KvStr::new("ab"))
        );
        assert_ne!(ab, KvStr::new("ba"));
    }

    #[test]
    fn keyed_model_changes_only_its_key() {
        let keys = vec![Value::from("a"), Value::from("b")];
        let inner = KvString {
            init: KvStr::new(""),
        };
        let m = Keyed {
            inner: &inner,
            nkeys: 2,
            keys: &keys,
        };
        let s = m
            .step(
                &m.init(),
                &KOp {
                    key: 1,
                    op: LOp::Append(KvStr::new("x")),
                },
            )
            .unwrap();
        assert_eq!(m.state_json(&s), serde_json::json!({"a":"","b":"x"}));
    }
}
