//! (to be written)

pub mod etcd;
