//! netsplit-report: what a run leaves for people and CI to read.
//!
//! - [`verdict`]: the verdict of a run against its expectation (`expect:`), the anomaly
//!   summary, the fields [`verdict::annotate`] adds to `results.json`;
//! - [`summary_text`] (`summary.rs`): the console summary `netsplit test` and `netsplit analyze`
//!   print;
//! - [`render`] and [`write()`] (`page/`): `report.html` — the verdict, every checker's
//!   evidence, the drawn counterexample, latency and throughput charts, the fault timeline;
//! - [`index`]: the store's `index.html` (every test, its runs and verdict history);
//! - [`junit`]: JUnit XML for CI systems;
//! - [`serve`]: a store served read-only over HTTP (`netsplit serve`).
//!
//! Everything here reads `results.json` and histories; it knows nothing of nodes, SSH or
//! databases (`netsplit-control` and `netsplit-db` are not dependencies).

#![warn(missing_docs)]

pub mod index;
pub mod junit;
mod page;
pub mod serve;
mod summary;
pub mod verdict;

/// Text made safe inside HTML element content and quoted attribute values: the one escaper
/// of every page this crate writes (report, store index, served listings).
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

use netsplit_check::{checker, history};
pub use page::{render, write};
pub use summary::summary_text;

use netsplit_check::checker::Validity;
use serde_json::Value;
use std::path::PathBuf;

/// What became of one run: where it is stored, its verdict, a harness error if there was one,
/// and its `results.json`.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's directory in the store (`<store>/<test>/<start time>`).
    pub run_dir: PathBuf,
    /// The merged verdict of every checker (unknown after a harness error).
    pub valid: Validity,
    /// The run was cut short by a signal.
    pub interrupted: bool,
    /// A harness error (setup failed, a phase panicked): the run's verdict is then unknown and
    /// the exit code 255.
    pub error: Option<String>,
    /// The run's `results.json` as written: the checkers' results and the fields
    /// [`verdict::annotate`] adds.
    pub results: Value,
}

impl RunOutcome {
    /// The exit code: 255 on a harness error, else by verdict.
    pub fn exit_code(&self) -> u8 {
        if self.error.is_some() {
            netsplit_check::error::EXIT_HARNESS
        } else {
            self.valid.exit_code()
        }
    }
}
