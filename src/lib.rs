//! netsplit: a black-box fault-injection test harness for distributed databases.
//!
//! The map of modules follows ARCHITECTURE.md §2. Dependencies point one way:
//! `history ← checker ← workload ← runner` and `control ← cluster, target, nemesis ← runner`.
//! `history`, `generator` and `checker` do no I/O and use no tokio.

pub mod cli;
pub mod cluster;
pub mod control;
pub mod error;
pub mod generator;
pub mod junit;
pub mod nemesis;
pub mod plan;
pub mod report;
pub mod runner;
pub mod serve;
pub mod store;
pub mod target;
pub mod verdict;
pub mod workload;

pub use netsplit_check::{checker, history};
