use super::*;

#[test]
fn option_keys_become_environment_names() {
    assert_eq!(opt_var("endpoint"), "NETSPLIT_OPT_ENDPOINT");
    assert_eq!(opt_var("read-mode"), "NETSPLIT_OPT_READ_MODE");
    assert_eq!(opt_var("a.b"), "NETSPLIT_OPT_A_B");
}

#[test]
fn a_missing_program_is_found_before_the_run() {
    assert!(check_command("sh -c true").is_ok());
    assert!(check_command("FOO=1 sh x.py").is_ok());
    let e = check_command("pythonnnn3 client.py").unwrap_err();
    assert!(e.contains("pythonnnn3: command not found"), "{e}");
    let e = check_command("./no/such/client --x").unwrap_err();
    assert!(e.starts_with("./no/such/client"), "{e}");
    // what the shell would expand is left to the shell
    assert!(check_command("$HOME/bin/client").is_ok());
    assert!(check_command("exec ./client").is_ok());
}
