//! The `netsplit` binary: parses the command line and maps results to exit codes. All logic
//! lives in the library.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(netsplit::cli::main())
}
