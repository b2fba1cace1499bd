//! The `netsplit` binary: parses the command line and maps results to exit codes. All logic
//! lives in the library.

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, which turns `netsplit check … | head` into a panic on the next
    // print. Restore the default so a closed pipe ends the process quietly, as for any CLI.
    // SAFETY: called first thing in main, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::ExitCode::from(netsplit::cli::main())
}
