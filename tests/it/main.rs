//! The one integration-test binary: areas as modules.

mod browser;
mod check;
mod ci;
mod custom;
mod deploy;
mod deploy_pg;
mod disk;
mod etcd;
mod extension;
mod faults_e2e;
mod hostile;
mod layering;
mod memcached;
mod nemesis;
mod nodes;
mod postgres;
mod redis;
mod runner;
mod serve;
mod support;
mod txn;
mod vagrantfile;
mod workloads;
