//! The one integration-test binary (ARCHITECTURE.md §7): areas as modules.

mod check;
mod etcd;
mod faults_e2e;
mod nemesis;
mod nodes;
mod redis;
mod runner;
mod support;
mod txn;
