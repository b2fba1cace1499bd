//! netsplit: a black-box fault-injection test harness for distributed databases.
//!
//! The harness around its crates: `netsplit-check` (histories, checkers, error classes and
//! typed options; re-exported as [`checker`], [`history`], [`error`], [`opts`]),
//! `netsplit-control` (node control and local clusters: [`control`], [`cluster`]),
//! `netsplit-db` (the database layer and the built-in databases: [`db`]) and
//! `netsplit-report` ([`report`]). Here: plans, generators, workloads, fault families, the runner, the store and the command line.
//! `docs/architecture.md` is the map — the run lifecycle, the crates and modules and which
//! way they depend (no cycles), and how to add a workload, a database or a fault;
//! [`registry::Registry`] is where they are registered, and [`cli::main_with`] gives an
//! application's registry the whole command line.

#![warn(missing_docs)]

pub mod cli;
pub mod generator;
pub mod input;
pub mod nemesis;
pub mod nodes;
pub mod plan;
pub mod registry;
pub mod runner;
pub mod store;
pub mod workload;

pub use netsplit_check::{checker, error, history, opts};
pub use netsplit_control::{self as control, cluster};
pub use netsplit_db::{self as db, speaks};
pub use netsplit_report as report;
