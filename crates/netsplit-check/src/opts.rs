//! Typed options out of a plan's free-form maps — `workload:`, `target.opts` (`--target-opt`)
//! and `nemesis.opts` — with errors that say where the bad value came from.
//!
//! Each workload, target and fault family declares its options as a `serde` struct (usually
//! `#[serde(deny_unknown_fields, default)]`); [`from_map`] fills it from the plan. Values may come
//! from YAML (typed) or from the command line (`--target-opt client-port=12379`, always text), so
//! the deserialiser here is lenient in the one way that matters: text is accepted wherever a
//! number, a boolean or a list is expected, if it parses as one (`"12379"`, `"true"`, `"a,b"`).
//! Keys may use `-` or `_` (`client-port` = `client_port`).
//!
//! [`Origins`] remembers where each key of the plan came from (`plan.yaml: line 7 column 9`,
//! `--target-opt read=x`), so an error reads as one line naming the file, line and key:
//! `plan.yaml: line 7 column 16: workload.max_txn_len: invalid type: string "x", expected usize`.

use crate::error::bad_input;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Where the values of a plan came from, by dotted path (`workload.keys`,
/// `target.opts.read`, `nemesis.opts.partition.shapes`). Paths use `_` for `-`.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    by_path: BTreeMap<String, String>,
}

/// Where a value came from does not change what the plan means.
impl PartialEq for Origins {
    fn eq(&self, _: &Origins) -> bool {
        true
    }
}

impl Origins {
    /// Records that `path` came from `origin` (replacing an earlier record).
    pub fn set(&mut self, path: &str, origin: impl Into<String>) {
        self.by_path.insert(normalize(path), origin.into());
    }

    /// Where `path` came from: its own record, else its nearest recorded ancestor's (an empty
    /// record says "from nowhere known" and ends the search).
    pub fn get(&self, path: &str) -> Option<&str> {
        let mut p = normalize(path);
        loop {
            if let Some(o) = self.by_path.get(&p) {
                return (!o.is_empty()).then_some(o.as_str());
            }
            match p.rfind('.') {
                Some(i) => p.truncate(i),
                None => return None,
            }
        }
    }

    /// `"<origin>: "` for `path` ([`Origins::get`]), or nothing: the start of an error line.
    pub fn at(&self, path: &str) -> String {
        self.get(path).map(|o| format!("{o}: ")).unwrap_or_default()
    }

    /// Forgets the records of `path` and of everything below it.
    fn forget(&mut self, path: &str) {
        let p = normalize(path);
        let below = format!("{p}.");
        self.by_path
            .retain(|k, _| *k != p && !k.starts_with(&below));
    }

    /// Copies `from`'s records of `from_path` and everything below it to `to_path`.
    fn copy_from(&mut self, from: &Origins, from_path: &str, to_path: &str) {
        let (fp, tp) = (normalize(from_path), normalize(to_path));
        let below = format!("{fp}.");
        for (k, v) in &from.by_path {
            if *k == fp || k.starts_with(&below) {
                self.by_path
                    .insert(format!("{tp}{}", &k[fp.len()..]), v.clone());
            }
        }
    }

    /// Every record under `prefix` (for tests and diagnostics).
    pub fn under(&self, prefix: &str) -> Vec<(&str, &str)> {
        let pre = normalize(prefix);
        self.by_path
            .iter()
            .filter(|(k, _)| k.starts_with(&pre))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Adds the locations of every key in a YAML text: `file: line L column C`, by path.
    pub fn add_yaml(&mut self, text: &str, origin: &str) {
        self.add_yaml_under(text, origin, "")
    }

    /// [`Origins::add_yaml`] for a text that is one section of a plan (a preset): its keys are
    /// recorded under `prefix` (`workload`, `nemesis`).
    pub fn add_yaml_under(&mut self, text: &str, origin: &str, prefix: &str) {
        let Ok(root) = serde_saphyr::from_str::<SpanNode>(text) else {
            return;
        };
        fn walk(o: &mut Origins, prefix: &str, node: &SpanNode, origin: &str) {
            for (k, v) in &node.children {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let loc = &v.referenced;
                o.set(
                    &path,
                    format!("{origin}: line {} column {}", loc.line(), loc.column()),
                );
                walk(o, &path, &v.value, origin);
            }
        }
        walk(self, prefix, &root, origin);
    }
}

fn normalize(path: &str) -> String {
    path.replace('-', "_")
}

/// A YAML node, remembering where each mapping entry's value is (for [`Origins::add_yaml`]).
#[derive(Debug, Default)]
struct SpanNode {
    children: BTreeMap<String, serde_saphyr::Spanned<SpanNode>>,
}

impl<'de> serde::Deserialize<'de> for SpanNode {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A scalar has no entries: an empty node.
        macro_rules! leaf {
            ($($visit:ident($($t:ty)?)),* $(,)?) => {
                $(fn $visit<E>(self $(, _: $t)?) -> Result<SpanNode, E> {
                    Ok(SpanNode::default())
                })*
            };
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SpanNode;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<SpanNode, A::Error> {
                let mut children = BTreeMap::new();
                while let Some(k) = m.next_key::<Value>()? {
                    let v = m.next_value::<serde_saphyr::Spanned<SpanNode>>()?;
                    let k = match k {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    children.insert(k, v);
                }
                Ok(SpanNode { children })
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<SpanNode, A::Error> {
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(SpanNode::default())
            }
            leaf!(
                visit_bool(bool),
                visit_i64(i64),
                visit_u64(u64),
                visit_i128(i128),
                visit_u128(u128),
                visit_f64(f64),
                visit_str(&str),
                visit_unit(),
                visit_none(),
            );
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<SpanNode, D::Error> {
                <SpanNode as serde::Deserialize>::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

/// Fills `T` from a map of options. `section` is the dotted path of the map in the plan
/// (`workload`, `target.opts`, `nemesis.opts.partition`): errors name the key under it and,
/// from `origins`, the file and line it came from. Bad input (exit 254).
pub fn from_map<T: DeserializeOwned>(
    map: &BTreeMap<String, Value>,
    section: &str,
    origins: &Origins,
) -> anyhow::Result<T> {
    let obj: Map<String, Value> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    from_value(&Value::Object(obj), section, origins)
}

/// [`from_map`] for any JSON value (a whole section).
pub fn from_value<T: DeserializeOwned>(
    v: &Value,
    section: &str,
    origins: &Origins,
) -> anyhow::Result<T> {
    serde_path_to_error::deserialize(Lenient(v)).map_err(|e| {
        let inner = e.inner().to_string();
        // Unknown keys: the path stops at their parent, the message names the key.
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        if let Some(k) = inner
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
        {
            if path.is_empty() {
                path = k.to_string();
            } else if !path.ends_with(k) {
                path = format!("{path}.{k}");
            }
        }
        let full = match (section.is_empty(), path.is_empty()) {
            (true, _) => path.clone(),
            (false, true) => section.to_string(),
            (false, false) => format!("{section}.{path}"),
        };
        match origins.get(&full) {
            Some(o) => bad_input(format!("{o}: {full}: {inner}")),
            None => bad_input(format!("{full}: {inner}")),
        }
    })
}

/// Options whose defaults are a preset file: a YAML mapping whose keys are the options
/// themselves (a database's `targets/<name>/<name>.yaml`). [`with_preset`] lays the plan's map
/// over the preset and deserialises the result once, so the type is a plain `serde` struct
/// (`#[serde(deny_unknown_fields)]`) and any key of the preset can be given in the plan.
pub trait Preset: DeserializeOwned {
    /// The preset's text (usually `include_str!` of the file).
    const YAML: &'static str;
    /// The preset's path, for errors (`targets/etcd/etcd.yaml`).
    const FILE: &'static str;
    /// Other spellings of keys, `(alias, key)`: `("appendfsync", "fsync")`.
    const ALIASES: &'static [(&'static str, &'static str)] = &[];
    /// Checks the values together; `Err((key, why))` names the key the problem is about.
    fn check(&self) -> Result<(), (&'static str, String)> {
        Ok(())
    }
    /// The preset alone, checked (the defaults; errors name the preset's file and line).
    fn preset() -> anyhow::Result<Self> {
        from_layers(
            Self::YAML,
            Self::FILE,
            &BTreeMap::new(),
            "",
            &Origins::default(),
        )
    }
}

/// A [`Duration`](std::time::Duration) given in milliseconds (`timeout_ms: 3000`), for
/// `#[serde(deserialize_with = "netsplit_check::opts::millis")]`.
pub fn millis<'de, D: de::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    <u64 as serde::Deserialize>::deserialize(d).map(std::time::Duration::from_millis)
}

/// A [`Duration`](std::time::Duration) given in seconds (`start_timeout_s: 60`), at most a
/// day (a deadline further away is none), for `#[serde(deserialize_with = …)]`.
pub fn seconds<'de, D: de::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    <u64 as serde::Deserialize>::deserialize(d)
        .map(|s| std::time::Duration::from_secs(s.min(24 * 3600)))
}

/// `section.key`, or `key` at the top.
fn join(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_string()
    } else {
        format!("{section}.{key}")
    }
}

/// `T`'s preset with `given` (the plan's map at `section`, e.g. `target.opts`) laid over it,
/// deserialised once and checked ([`from_layers`] with the preset of `T`).
pub fn with_preset<T: Preset>(
    given: &BTreeMap<String, Value>,
    section: &str,
    origins: &Origins,
) -> anyhow::Result<T> {
    from_layers(T::YAML, T::FILE, given, section, origins)
}

/// The preset `yaml` (read from `file`) with `given` laid over it as maps — a later value
/// replaces an earlier one, maps are merged key by key, `-` and `_` are one in keys, aliases
/// become their key — then deserialised into `T` once ([`from_value`]: text from the command
/// line stands in for numbers, booleans and lists) and checked ([`Preset::check`]). Every
/// error is bad input naming where the value came from (the preset's file and line, the plan's
/// file and line, or the `--target-opt`) and its key. Two spellings of one key in `given` are
/// refused.
pub fn from_layers<T: Preset>(
    yaml: &str,
    file: &str,
    given: &BTreeMap<String, Value>,
    section: &str,
    origins: &Origins,
) -> anyhow::Result<T> {
    let preset: Value =
        serde_saphyr::from_str(yaml).map_err(|e| bad_input(format!("{file}: {e}")))?;
    let Value::Object(mut merged) = canonical(preset) else {
        return Err(bad_input(format!("{file}: expected a mapping of options")));
    };
    let key_of = |k: &str| {
        let k = normalize(k);
        T::ALIASES
            .iter()
            .find(|(alias, _)| normalize(alias) == k)
            .map(|(_, key)| normalize(key))
            .unwrap_or(k)
    };
    let mut at = Origins::default();
    at.add_yaml_under(yaml, file, section);
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (k, v) in given {
        let key = key_of(k);
        if let Some(first) = seen.insert(key.clone(), k) {
            return Err(bad_input(format!(
                "{}{}: the same option as {}; give it once",
                origins.at(&join(section, k)),
                join(section, k),
                join(section, first)
            )));
        }
        let slot = merged.entry(key.clone()).or_insert(Value::Null);
        let (from, to) = (join(section, k), join(section, &key));
        overlay(slot, canonical(v.clone()), &from, &to, &mut at, origins);
    }
    let t: T = from_value(&Value::Object(merged), section, &at)?;
    t.check().map_err(|(key, why)| {
        let path = join(section, key);
        bad_input(format!("{}{path}: {why}", at.at(&path)))
    })?;
    Ok(t)
}

/// `v` with `-` as `_` in every key of every map.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (normalize(&k), canonical(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Lays `over` on `base` (maps key by key, anything else replaced), moving the records of where
/// each laid value came from (`origins` at `from`) into `at` (at `to`).
fn overlay(
    base: &mut Value,
    over: Value,
    from: &str,
    to: &str,
    at: &mut Origins,
    origins: &Origins,
) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            if let Some(rec) = origins.by_path.get(&normalize(from)) {
                at.set(to, rec.clone());
            }
            for (k, v) in o {
                let slot = b.entry(k.clone()).or_insert(Value::Null);
                overlay(
                    slot,
                    v,
                    &format!("{from}.{k}"),
                    &format!("{to}.{k}"),
                    at,
                    origins,
                );
            }
        }
        (base, over) => {
            *base = over;
            at.forget(to);
            at.copy_from(origins, from, to);
            // No record of its own: the plan's nearest, never the preset's line it replaced.
            if !at.by_path.contains_key(&normalize(to)) {
                at.set(to, origins.get(from).unwrap_or_default());
            }
        }
    }
}

/// A JSON value deserialised leniently: text stands in for numbers, booleans and
/// comma-separated lists; struct keys may use `-` for `_`.
struct Lenient<'a>(&'a Value);

type Error = serde_json::Error;

fn err(msg: impl std::fmt::Display) -> Error {
    de::Error::custom(msg)
}

impl<'a> Lenient<'a> {
    fn text(&self) -> Option<&'a str> {
        self.0.as_str().map(str::trim)
    }

    /// Visits an object's entries (leniently, as `fields` of a struct when given); anything
    /// else is an error saying it expected `what`.
    fn object<V: Visitor<'a>>(
        self,
        v: V,
        fields: &'static [&'static str],
        what: &str,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(m) => v.visit_map(MapAcc {
                it: m.iter(),
                fields,
                pending: None,
            }),
            other => Err(err(format!(
                "invalid type: {}, expected {what}",
                kind(other)
            ))),
        }
    }
}

macro_rules! lenient_number {
    ($($m:ident => $t:ty),* $(,)?) => {$(
        fn $m<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            match self.text() {
                Some(s) => match s.parse::<$t>() {
                    Ok(n) => n.into_deserializer().$m(v),
                    Err(_) => Err(err(format!(
                        "invalid value: {s:?}, expected {}",
                        stringify!($t)
                    ))),
                },
                None => self.0.$m(v),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Lenient<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(a) => v.visit_seq(Seq {
                items: a.iter(),
                wrap: Lenient,
            }),
            Value::Object(m) => v.visit_map(MapAcc {
                it: m.iter(),
                fields: &[],
                pending: None,
            }),
            other => other.deserialize_any(v),
        }
    }

    lenient_number! {
        deserialize_i8 => i8, deserialize_i16 => i16, deserialize_i32 => i32,
        deserialize_i64 => i64, deserialize_u8 => u8, deserialize_u16 => u16,
        deserialize_u32 => u32, deserialize_u64 => u64, deserialize_f32 => f32,
        deserialize_f64 => f64,
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.text() {
            Some(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => v.visit_bool(true),
                "false" | "no" | "off" | "0" => v.visit_bool(false),
                _ => Err(err(format!("invalid value: {s:?}, expected true or false"))),
            },
            None => self.0.deserialize_bool(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => v.visit_string(n.to_string()),
            Value::Bool(b) => v.visit_string(b.to_string()),
            other => other.deserialize_string(v),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_string(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(a) => v.visit_seq(Seq {
                items: a.iter(),
                wrap: Lenient,
            }),
            Value::String(s) => {
                let parts: Vec<Value> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect();
                v.visit_seq(Seq {
                    items: parts.into_iter(),
                    wrap: OwnedLenient,
                })
            }
            other => Err(err(format!(
                "invalid type: {}, expected a list",
                kind(other)
            ))),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.object(v, &[], "a map")
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.object(v, fields, "a map of options")
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct identifier ignored_any
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// A list's elements, each deserialised through the deserialiser `wrap` makes of it: a
/// [`Lenient`] for a list in the options, an [`OwnedLenient`] for one made from comma-separated
/// text (owned values, so deserialised through `serde_json`'s owned deserialiser with the same
/// leniency for numbers).
struct Seq<I: Iterator, W> {
    items: I,
    wrap: fn(I::Item) -> W,
}

impl<'de, I: Iterator, W: de::Deserializer<'de, Error = Error>> de::SeqAccess<'de> for Seq<I, W> {
    type Error = Error;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(v) => seed.deserialize((self.wrap)(v)).map(Some),
            None => Ok(None),
        }
    }
}

/// A text element of a comma-separated list: a number, boolean or string as asked.
struct OwnedLenient(Value);

impl OwnedLenient {
    /// The text parsed as a `T`, or an error saying it is not the `expected` kind of value.
    fn parse<T: std::str::FromStr>(&self, expected: &str) -> Result<T, Error> {
        let s = self.0.as_str().unwrap_or_default();
        s.parse::<T>()
            .map_err(|_| err(format!("invalid value: {s:?}, expected {expected}")))
    }
}

impl<'de> de::Deserializer<'de> for OwnedLenient {
    type Error = Error;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.0.deserialize_any(v)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.parse::<u64>("u64")?
            .into_deserializer()
            .deserialize_u64(v)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.parse::<i64>("i64")?
            .into_deserializer()
            .deserialize_i64(v)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.parse::<f64>("a number")?
            .into_deserializer()
            .deserialize_f64(v)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_i64(v)
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.0.deserialize_enum(name, variants, v)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i128 u128 f32 char str string bytes byte_buf option unit unit_struct
        newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct MapAcc<'a> {
    it: serde_json::map::Iter<'a>,
    fields: &'static [&'static str],
    pending: Option<&'a Value>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'de> {
    type Error = Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.it.next() {
            Some((k, v)) => {
                self.pending = Some(v);
                let key = if !self.fields.is_empty() && !self.fields.contains(&k.as_str()) {
                    let alt = k.replace('-', "_");
                    if self.fields.contains(&alt.as_str()) {
                        alt
                    } else {
                        k.clone()
                    }
                } else {
                    k.clone()
                };
                seed.deserialize(key.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.pending.take() {
            Some(v) => seed.deserialize(Lenient(v)),
            None => Err(err("value without a key")),
        }
    }
}

#[cfg(test)]
mod tests;
