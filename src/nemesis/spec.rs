//! What faults to inject and how: `--nemesis LIST`, `--nemesis-interval S` and the plan's
//! `nemesis:` section (presets in `nemeses/*.yaml` have the same shape).
//!
//! ```yaml
//! faults: [partition, pause]     # partition, packet, pause, kill, clock; or none / all
//! interval: 10                   # seconds a fault lasts, and between faults
//! opts:
//!   partition: { shapes: [one, majority, majorities-ring, bridge] }
//!   packet:    { behaviours: [delay, loss, {delay: {time_ms: 200}}], targets: [one, all] }
//!   pause:     { targets: [one, minority, primaries] }
//!   kill:      { targets: [one, majority], graceful: true }
//!   clock:     { targets: [one], bump_ms: [-60000, 250, 60000], drift: [1.1], mode: faketime }
//! ```
//! Unknown keys are errors (exit 254) naming the key.

use super::clock::ClockMode;
use super::grudge::Shape;
use super::packet::Behaviour;
use super::select::NodeSpec;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A family of faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    Partition,
    Packet,
    Pause,
    Kill,
    Clock,
}

impl FaultKind {
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Partition,
        FaultKind::Packet,
        FaultKind::Pause,
        FaultKind::Kill,
        FaultKind::Clock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Packet => "packet",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::Clock => "clock",
        }
    }

    pub fn parse(s: &str) -> Result<FaultKind, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown fault {s:?} (expected partition, packet, pause, kill, clock, none or all)"
                )
            })
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for FaultKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for FaultKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FaultKind::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses `--nemesis LIST`: comma-separated fault names, `none` (no faults) or `all`.
pub fn parse_fault_list(list: &str) -> Result<Vec<FaultKind>, String> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "none" => {}
            "all" => out.extend(FaultKind::ALL),
            p => out.push(FaultKind::parse(p)?),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn default_interval() -> f64 {
    10.0
}

/// The plan's `nemesis:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisSpec {
    /// Which fault families to schedule (empty: none).
    #[serde(default)]
    pub faults: Vec<FaultKind>,
    /// Seconds a fault lasts, and the quiet time between faults.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Per-fault options.
    #[serde(default)]
    pub opts: FaultOpts,
}

impl Default for NemesisSpec {
    fn default() -> Self {
        NemesisSpec {
            faults: Vec::new(),
            interval: default_interval(),
            opts: FaultOpts::default(),
        }
    }
}

impl NemesisSpec {
    /// Reads a preset or a plan's section from YAML; `origin` names the file in errors.
    pub fn from_yaml(text: &str, origin: &str) -> anyhow::Result<NemesisSpec> {
        let spec: NemesisSpec = serde_saphyr::from_str(text)
            .map_err(|e| crate::error::bad_input(format!("{origin}: {e}")))?;
        spec.validate()
            .map_err(|e| crate::error::bad_input(format!("{origin}: {e}")))?;
        Ok(spec)
    }

    /// Applies `--nemesis LIST` and `--nemesis-interval S` over the plan's values.
    pub fn with_flags(mut self, list: Option<&str>, interval: Option<f64>) -> Result<Self, String> {
        if let Some(l) = list {
            self.faults = parse_fault_list(l).map_err(|e| format!("--nemesis: {e}"))?;
        }
        if let Some(i) = interval {
            self.interval = i;
        }
        self.validate()?;
        Ok(self)
    }

    /// Checks values a deserialiser cannot: positive interval, packet behaviours, clock ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.interval.is_finite() && self.interval > 0.0) {
            return Err(format!(
                "nemesis interval must be a positive number of seconds, got {}",
                self.interval
            ));
        }
        for b in &self.opts.packet.behaviours {
            b.resolve()?.validate()?;
        }
        for r in &self.opts.clock.drift {
            if !(r.is_finite() && *r > 0.0 && *r < 10.0) {
                return Err(format!(
                    "clock drift rate {r}: expected a factor in (0, 10)"
                ));
            }
        }
        if self.opts.clock.strobe.period_ms == 0 {
            return Err("clock strobe period_ms must be positive".into());
        }
        let lists = [
            ("partition shapes", self.opts.partition.shapes.is_empty()),
            ("packet targets", self.opts.packet.targets.is_empty()),
            ("packet behaviours", self.opts.packet.behaviours.is_empty()),
            ("pause targets", self.opts.pause.targets.is_empty()),
            ("kill targets", self.opts.kill.targets.is_empty()),
            ("clock targets", self.opts.clock.targets.is_empty()),
        ];
        for (what, empty) in lists {
            if empty {
                return Err(format!("nemesis {what}: the list is empty"));
            }
        }
        Ok(())
    }

    pub fn is_none(&self) -> bool {
        self.faults.is_empty()
    }
}

/// Options per fault family.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultOpts {
    #[serde(default)]
    pub partition: PartitionOpts,
    #[serde(default)]
    pub packet: PacketOpts,
    #[serde(default)]
    pub pause: ProcessOpts,
    #[serde(default)]
    pub kill: KillOpts,
    #[serde(default)]
    pub clock: ClockOpts,
}

fn default_shapes() -> Vec<Shape> {
    vec![
        Shape::One,
        Shape::Majority,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::MinorityThird,
        Shape::Asymmetric,
    ]
}

/// Partition options: which shapes to draw from (add `primaries` for targets with a leader).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionOpts {
    #[serde(default = "default_shapes")]
    pub shapes: Vec<Shape>,
}

impl Default for PartitionOpts {
    fn default() -> Self {
        PartitionOpts {
            shapes: default_shapes(),
        }
    }
}

/// A packet behaviour in a plan: a preset name (`delay`) or a full behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BehaviourSpec {
    Named(String),
    Custom(Behaviour),
}

impl BehaviourSpec {
    pub fn resolve(&self) -> Result<Behaviour, String> {
        match self {
            BehaviourSpec::Named(n) => Behaviour::preset(n),
            BehaviourSpec::Custom(b) => {
                if b.is_empty() {
                    Err("packet behaviour: empty (give delay, loss, duplicate, reorder, corrupt or rate)".into())
                } else {
                    Ok(b.clone())
                }
            }
        }
    }
}

fn default_behaviours() -> Vec<BehaviourSpec> {
    ["delay", "loss", "duplicate", "reorder", "corrupt", "rate"]
        .into_iter()
        .map(|s| BehaviourSpec::Named(s.into()))
        .collect()
}

fn default_targets() -> Vec<NodeSpec> {
    vec![
        NodeSpec::One,
        NodeSpec::Minority,
        NodeSpec::Majority,
        NodeSpec::All,
    ]
}

/// Packet options: behaviours to draw from, and whose outgoing traffic they hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketOpts {
    #[serde(default = "default_behaviours")]
    pub behaviours: Vec<BehaviourSpec>,
    #[serde(default = "default_targets")]
    pub targets: Vec<NodeSpec>,
}

impl Default for PacketOpts {
    fn default() -> Self {
        PacketOpts {
            behaviours: default_behaviours(),
            targets: default_targets(),
        }
    }
}

/// Pause options: which nodes' processes to stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessOpts {
    #[serde(default = "default_targets")]
    pub targets: Vec<NodeSpec>,
}

impl Default for ProcessOpts {
    fn default() -> Self {
        ProcessOpts {
            targets: default_targets(),
        }
    }
}

/// Kill options: targets, and whether to alternate SIGKILL with the target's graceful stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillOpts {
    #[serde(default = "default_targets")]
    pub targets: Vec<NodeSpec>,
    /// Also use graceful stop/start (half of the kills, chosen at random).
    #[serde(default)]
    pub graceful: bool,
}

impl Default for KillOpts {
    fn default() -> Self {
        KillOpts {
            targets: default_targets(),
            graceful: false,
        }
    }
}

/// A strobe: alternate between `+delta_ms` and the previous offset every `period_ms`, for
/// `duration_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrobeOpts {
    pub delta_ms: i64,
    pub period_ms: u64,
    pub duration_ms: u64,
}

impl Default for StrobeOpts {
    fn default() -> Self {
        StrobeOpts {
            delta_ms: 200,
            period_ms: 10,
            duration_ms: 2000,
        }
    }
}

fn default_bumps() -> Vec<i64> {
    vec![-262_144, -2_500, -100, 100, 2_500, 262_144]
}

fn default_clock_targets() -> Vec<NodeSpec> {
    vec![NodeSpec::One, NodeSpec::Minority, NodeSpec::Primaries]
}

/// Clock options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockOpts {
    #[serde(default = "default_clock_targets")]
    pub targets: Vec<NodeSpec>,
    /// Offsets a bump draws from, milliseconds (both signs: ms to minutes).
    #[serde(default = "default_bumps")]
    pub bump_ms: Vec<i64>,
    #[serde(default)]
    pub strobe: StrobeOpts,
    /// Drift rates to draw from (empty: no drift). libfaketime nodes only.
    #[serde(default)]
    pub drift: Vec<f64>,
    /// Force a mode; by default the runner picks faketime for local nodes and the real clock
    /// for machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClockMode>,
}

impl Default for ClockOpts {
    fn default() -> Self {
        ClockOpts {
            targets: default_clock_targets(),
            bump_ms: default_bumps(),
            strobe: StrobeOpts::default(),
            drift: Vec::new(),
            mode: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_flag_accepts_lists_none_and_all() {
        assert_eq!(
            parse_fault_list("pause, partition").unwrap(),
            vec![FaultKind::Partition, FaultKind::Pause]
        );
        assert!(parse_fault_list("none").unwrap().is_empty());
        assert_eq!(parse_fault_list("all").unwrap().len(), 5);
        assert!(parse_fault_list("partition,meteor")
            .unwrap_err()
            .contains("meteor"));
    }

    #[test]
    fn yaml_section_parses_with_presets_and_custom_behaviours() {
        let y = "faults: [partition, packet, clock]\ninterval: 5\nopts:\n  partition:\n    shapes: [one, bridge]\n  packet:\n    behaviours: [delay, {loss: {percent: 5}}]\n    targets: [one, n2]\n  clock:\n    bump_ms: [-1000, 1000]\n    drift: [1.1]\n";
        let s = NemesisSpec::from_yaml(y, "test.yaml").unwrap();
        assert_eq!(s.interval, 5.0);
        assert_eq!(s.opts.partition.shapes, vec![Shape::One, Shape::Bridge]);
        assert_eq!(
            s.opts.packet.behaviours[1]
                .resolve()
                .unwrap()
                .loss
                .unwrap()
                .percent,
            5.0
        );
        assert_eq!(s.opts.packet.targets[1], NodeSpec::Named(vec!["n2".into()]));
        assert_eq!(s.opts.clock.drift, vec![1.1]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_bad_input_naming_them() {
        let e =
            NemesisSpec::from_yaml("faults: [partition]\nintervall: 3\n", "p.yaml").unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
        assert!(e.to_string().contains("intervall"), "{e}");
        let e = NemesisSpec::from_yaml("opts:\n  partition:\n    shapes: [square]\n", "p.yaml")
            .unwrap_err();
        assert!(e.to_string().contains("square"), "{e}");
        let e = NemesisSpec::from_yaml("interval: 0\n", "p.yaml").unwrap_err();
        assert!(e.to_string().contains("interval"), "{e}");
    }

    #[test]
    fn flags_override_the_plan() {
        let s = NemesisSpec::default()
            .with_flags(Some("kill"), Some(3.0))
            .unwrap();
        assert_eq!(s.faults, vec![FaultKind::Kill]);
        assert_eq!(s.interval, 3.0);
        assert!(NemesisSpec::default().with_flags(None, Some(-1.0)).is_err());
    }
}

#[cfg(test)]
mod preset_tests {
    use super::*;

    /// Every preset in `nemeses/` parses and validates with this module's rules.
    #[test]
    fn every_nemesis_preset_is_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("nemeses");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                let text = std::fs::read_to_string(&p).unwrap();
                NemesisSpec::from_yaml(&text, &p.display().to_string())
                    .unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 7, "only {n} presets found in {}", dir.display());
    }
}
