//! `netsplit list`: the workloads, targets and fault families this build knows — the built-ins
//! and whatever the application registered — with what each is and which target speaks which
//! workload.

use crate::registry::Registry;

/// Runs `netsplit list`: prints what `registry` knows; returns the process exit code.
pub fn run(registry: &Registry) -> anyhow::Result<u8> {
    say!("workloads (--workload):");
    for w in registry.workloads() {
        say!("  {:<14} {}", w.name, w.about);
    }
    say!("workloads in YAML (--workload; workloads/<name>.yaml):");
    for name in crate::plan::preset_names("workloads") {
        if let Some((origin, text)) = crate::plan::preset("workloads", &name)? {
            say!("  {:<14} {}", name, first_comment(&text, &name));
            say!("  {:<14}   from: {origin}", "");
        }
    }
    say!("targets (--target):");
    for t in registry.dbs() {
        let nodes = match (t.needs_nodes, t.nodes_optional) {
            (true, _) => "",
            (false, true) => " [nodes optional]",
            (false, false) => " [no nodes]",
        };
        say!("  {:<14} {}{nodes}", t.name, t.about);
        say!("  {:<14}   speaks: {}", "", t.vocabularies.join(", "));
    }
    say!("faults (--nemesis):");
    for f in registry.faults() {
        say!("  {:<14} {}", f.name, f.about);
    }
    Ok(0)
}

/// The first comment line of a preset, without its `name:` prefix (what the file is about).
fn first_comment(text: &str, name: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix('#'))
        .unwrap_or("")
        .trim();
    line.strip_prefix(&format!("{name}:"))
        .unwrap_or(line)
        .trim()
        .to_string()
}
