//! A custom client's answer line: `db::custom::protocol::parse_answer`. Panics when a property of `tests/fuzz/props.rs` breaks.
#![no_main]

#[path = "../../tests/fuzz/props.rs"]
#[allow(dead_code)]
mod props;

#[allow(unused_imports)]
use netsplit::history::import::Format;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for target in [props::Db::Answer] {
        if let Err(e) = props::run(target, data) {
            panic!("{}: {e}", target.name());
        }
    }
});
