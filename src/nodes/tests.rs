use super::*;

#[test]
fn host_port_forms_parse() {
    assert_eq!(parse_host_port("n1", 22), Ok(("n1".into(), 22)));
    assert_eq!(parse_host_port("n1:2222", 22), Ok(("n1".into(), 2222)));
    assert_eq!(
        parse_host_port("192.168.56.11", 2200),
        Ok(("192.168.56.11".into(), 2200))
    );
    assert_eq!(parse_host_port("[::1]:23", 22), Ok(("::1".into(), 23)));
    assert_eq!(parse_host_port("[::1]", 22), Ok(("::1".into(), 22)));
    assert_eq!(parse_host_port("fe80::1", 22), Ok(("fe80::1".into(), 22)));
}

#[test]
fn hostile_or_broken_hosts_are_rejected() {
    assert!(parse_host_port("n1:abc", 22).is_err());
    assert!(parse_host_port("n1:0", 22).is_err());
    assert!(parse_host_port("-oProxyCommand=x", 22).is_err());
    assert!(parse_host_port("a b", 22).is_err());
    assert!(parse_host_port("$(x)", 22).is_err());
    assert!(parse_host_port("[::1", 22).is_err());
}

#[test]
fn nodes_file_skips_comments_and_names_the_bad_line() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("nodes");
    std::fs::write(&f, "# my nodes\nn1\n\n n2:2222  # second\n").unwrap();
    assert_eq!(
        read_nodes_file(&f, 22).unwrap(),
        vec![("n1".into(), 22), ("n2".into(), 2222)]
    );
    std::fs::write(&f, "n1\nn2:xx\n").unwrap();
    let e = read_nodes_file(&f, 22).unwrap_err();
    assert!(format!("{e}").contains("nodes:2: bad port"), "{e}");
    assert_eq!(crate::error::exit_code_for(&e), 254);
}

#[test]
fn duplicate_hosts_get_port_qualified_names() {
    let nodes = name_nodes(&[("h".into(), 22), ("h".into(), 2222), ("g".into(), 22)]).unwrap();
    let names: Vec<_> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["h:22", "h:2222", "g"]);
    assert_eq!(nodes[1].workdir, "/var/lib/netsplit/h_2222");
    assert!(name_nodes(&[("h".into(), 22), ("h".into(), 22)]).is_err());
}

#[test]
fn explicit_nodes_resolve_with_user_and_port() {
    let args = NodeArgs {
        nodes: vec!["a".into(), "b:2200".into()],
        username: Some("admin".into()),
        ssh_port: Some(2022),
        ..NodeArgs::default()
    };
    let r = resolve(&args).unwrap();
    assert_eq!(r.nodes.len(), 2);
    assert_eq!(r.nodes[0].ssh_port, 2022);
    assert_eq!(r.nodes[1].ssh_port, 2200);
    assert_eq!(r.ssh.username, "admin");
    assert_eq!(
        r.ssh.host_key_policy,
        crate::control::ssh::HostKeyPolicy::AcceptNew
    );
    assert!(r.cluster.is_none());
}

#[test]
fn cluster_with_real_node_flags_is_bad_input() {
    let args = NodeArgs {
        cluster: Some("x".into()),
        username: Some("admin".into()),
        ..NodeArgs::default()
    };
    let e = resolve(&args).unwrap_err();
    assert_eq!(crate::error::exit_code_for(&e), 254);
}
