//! The `netsplit` binary: parses the command line and maps results to exit codes. All logic
//! lives in the library.

fn main() -> std::process::ExitCode {
    // SIGPIPE stays ignored (Rust's default): a custom client program that exits before
    // reading its request must make that write fail with EPIPE — an `info` op and a fresh
    // client (crates/netsplit-db/src/custom/mod.rs) — not kill netsplit mid-run with faults in force. Output
    // to a closed stdout (`netsplit check … | head`) is dropped by the `say!` macro
    // (src/cli/mod.rs) instead of panicking.
    std::process::ExitCode::from(netsplit::cli::main())
}
