//! The one integration-test binary: areas as modules.

mod check;
mod etcd;
mod extension;
mod faults_e2e;
mod layering;
mod nemesis;
mod nodes;
mod redis;
mod runner;
mod support;
mod txn;
