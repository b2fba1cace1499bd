//! The one integration-test binary (ARCHITECTURE.md §7): areas as modules.
mod nemesis;
mod nodes;
