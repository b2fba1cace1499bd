use super::*;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
struct Opts {
    client_port: u16,
    read: Option<String>,
    ratio: f64,
    on: bool,
    endpoints: Vec<String>,
    ports: Vec<u16>,
    mode: Mode,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    #[default]
    Install,
    Existing,
}

fn map(v: Value) -> BTreeMap<String, Value> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn text_from_the_command_line_fills_typed_fields() {
    let o: Opts = from_map(
        &map(
            json!({"client-port": "12379", "read": "serializable", "ratio": "0.5",
                        "on": "yes", "endpoints": "a:1, b:2", "ports": "1,2", "mode": "existing"}),
        ),
        "target.opts",
        &Origins::default(),
    )
    .unwrap();
    assert_eq!(o.client_port, 12379);
    assert_eq!(o.read.as_deref(), Some("serializable"));
    assert_eq!(o.ratio, 0.5);
    assert!(o.on);
    assert_eq!(o.endpoints, vec!["a:1", "b:2"]);
    assert_eq!(o.ports, vec![1, 2]);
    assert_eq!(o.mode, Mode::Existing);
    let o: Opts = from_map(
        &map(json!({"client_port": 1, "endpoints": ["x"], "on": true})),
        "target.opts",
        &Origins::default(),
    )
    .unwrap();
    assert_eq!(
        (o.client_port, o.endpoints, o.on),
        (1, vec!["x".into()], true)
    );
}

#[test]
fn errors_name_the_origin_the_section_and_the_key() {
    let yaml = "target:\n  name: etcd\n  opts:\n    client-port: lots\n    bogus: 1\n";
    let mut origins = Origins::default();
    origins.add_yaml(yaml, "p.yaml");
    assert_eq!(
        origins.get("target.opts.client_port"),
        Some("p.yaml: line 4 column 18")
    );
    let e = from_map::<Opts>(
        &map(json!({"client-port": "lots"})),
        "target.opts",
        &origins,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("p.yaml: line 4 column 18: target.opts.client_port: "),
        "{msg}"
    );
    assert_eq!(crate::error::exit_code_for(&e), 254);
    let msg = from_map::<Opts>(&map(json!({"bogus": 1})), "target.opts", &origins)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("p.yaml: line 5 column 12: target.opts.bogus: unknown field"),
        "{msg}"
    );
    // No record: the path alone.
    let msg = from_map::<Opts>(&map(json!({"ports": "1,x"})), "target.opts", &origins)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("target.opts.ports"), "{msg}");
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Db {
    port: u16,
    fsync: bool,
    paths: Paths,
    #[serde(deserialize_with = "millis")]
    timeout_ms: std::time::Duration,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Paths {
    data: String,
    log: String,
}

const DB_YAML: &str = "port: 6379\nfsync: true\npaths:\n  data: d\n  log: l\ntimeout_ms: 3000\n";

impl Preset for Db {
    const YAML: &'static str = DB_YAML;
    const FILE: &'static str = "db.yaml";
    const ALIASES: &'static [(&'static str, &'static str)] = &[("appendfsync", "fsync")];
    fn check(&self) -> Result<(), (&'static str, String)> {
        match self.port {
            0 => Err(("port", "must be 1..65535".into())),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_preset_and_the_plan_are_merged_as_maps_then_read_once() {
    let d = Db::preset().unwrap();
    assert_eq!((d.port, d.fsync, d.paths.log.as_str()), (6379, true, "l"));
    assert_eq!(d.timeout_ms, std::time::Duration::from_secs(3));
    // Text from the command line, an alias, a nested key: the rest stays the preset's.
    let given = map(
        json!({"port": "16379", "appendfsync": "off", "paths": {"data": "x"},
                               "timeout-ms": 5}),
    );
    let d: Db = with_preset(&given, "target.opts", &Origins::default()).unwrap();
    assert_eq!((d.port, d.fsync), (16379, false));
    assert_eq!((d.paths.data.as_str(), d.paths.log.as_str()), ("x", "l"));
    assert_eq!(d.timeout_ms, std::time::Duration::from_millis(5));
}

#[test]
fn errors_from_merged_options_name_where_each_value_came_from() {
    let mut origins = Origins::default();
    origins.set("target.opts.port", "--target-opt port=0");
    let e = |given: Value, origins: &Origins| {
        let e = with_preset::<Db>(&map(given), "target.opts", origins).unwrap_err();
        assert_eq!(crate::error::exit_code_for(&e), 254);
        e.to_string()
    };
    // A check names the key and the flag it came from.
    let msg = e(json!({"port": "0"}), &origins);
    assert_eq!(
        msg,
        "--target-opt port=0: target.opts.port: must be 1..65535"
    );
    // A bad value from the plan, without a record: the key alone, not the preset's line.
    let msg = e(json!({"paths": {"log": [1]}}), &Origins::default());
    assert!(
        msg.starts_with("target.opts.paths.log: invalid type"),
        "{msg}"
    );
    // An unknown key, and one option spelled two ways.
    let msg = e(json!({"prot": 1}), &Origins::default());
    assert!(msg.starts_with("target.opts.prot: unknown field"), "{msg}");
    let msg = e(
        json!({"fsync": true, "appendfsync": false}),
        &Origins::default(),
    );
    assert!(msg.contains("the same option"), "{msg}");
    // A bad preset: its file and line.
    let bad = DB_YAML.replace("log: l", "log: [l]");
    let none = BTreeMap::new();
    let e = from_layers::<Db>(&bad, "my.yaml", &none, "target.opts", &Origins::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("my.yaml: line 5 column 8: target.opts.paths.log: "),
        "{e}"
    );
}

#[test]
fn nested_sections_keep_their_lines() {
    let yaml = "nemesis:\n  opts:\n    partition:\n      shapes: [square]\n";
    let mut o = Origins::default();
    o.add_yaml(yaml, "n.yaml");
    assert_eq!(
        o.get("nemesis.opts.partition.shapes"),
        Some("n.yaml: line 4 column 15")
    );
    assert_eq!(
        o.get("nemesis.opts.partition.shapes.0"),
        Some("n.yaml: line 4 column 15")
    );
    // Not YAML at all: no records, no panic.
    o.add_yaml("{{{", "x");
}
