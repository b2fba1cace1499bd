//! netsplit: a black-box fault-injection test harness for distributed databases.
//!
//! The harness around the pure core (`netsplit-check`, re-exported as [`checker`] and
//! [`history`]): plans, generators, workloads, targets, nodes and local clusters, fault
//! families, the runner, the store, the report and the command line. `docs/architecture.md` is
//! the map — the run lifecycle, the modules and which way they depend (no cycles), and how to
//! add a workload, a target or a fault; [`registry::Registry`] is where they are registered,
//! and [`cli::main_with`] gives an application's registry the whole command line.

pub mod cli;
pub mod cluster;
pub mod control;
pub mod error;
pub mod generator;
pub mod junit;
pub mod nemesis;
pub mod nodes;
pub mod opts;
pub mod plan;
pub mod registry;
pub mod report;
pub mod runner;
pub mod serve;
pub mod store;
pub mod target;
pub mod verdict;
pub mod workload;

pub use netsplit_check::{checker, history};
