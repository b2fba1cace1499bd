//! The etcd target: installs, configures, starts, stops, kills and pauses an N-member etcd
//! cluster by pid file on the run's nodes, probes its leader, and hands out clients that speak
//! etcd's v3 JSON gateway for every built-in workload.
//!
//! - [`config`]: the run's settings (preset `targets/etcd/etcd.yaml` + `--target-opt`) and the
//!   pure argv builder [`config::etcd_args`].
//! - [`client`]: the HTTP client, the workload operations and the error classification that
//!   decides `fail` versus `info`.
//! - [`base64`]: the gateway's key/value encoding.
//!
//! docs/targets/etcd.md is the user-facing description.

pub mod base64;
pub mod client;
pub mod config;

pub use client::{EtcdClient, EtcdError, Outcome, Workload};
pub use config::{etcd_args, EtcdOpts, ReadMode};
