//! A whole plan file: `plan::resolve_text` then `Registry::prepare`. Panics when a property of `tests/fuzz/props.rs` breaks.
#![no_main]

#[path = "../../tests/fuzz/props.rs"]
#[allow(dead_code)]
mod props;

#[allow(unused_imports)]
use netsplit::history::import::Format;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for target in [props::Db::PlanFile] {
        if let Err(e) = props::run(target, data) {
            panic!("{}: {e}", target.name());
        }
    }
});
