use super::*;

#[test]
fn devices_fifos_and_directories_are_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for (p, kind) in [
        (fifo.as_path(), "FIFO"),
        (Path::new("/dev/zero"), "device"),
        (tmp.path(), "directory"),
    ] {
        let e = read_text(p, "plan", MAX_TEXT_BYTES)
            .unwrap_err()
            .to_string();
        assert!(e.contains(kind), "{e}");
    }
}

#[test]
fn a_file_over_the_limit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("big");
    std::fs::write(&p, vec![b'a'; 2 << 20]).unwrap();
    let e = read_text(&p, "plan", 1 << 20).unwrap_err().to_string();
    assert!(e.contains("larger than 1 MiB"), "{e}");
    assert_eq!(read_text(&p, "plan", 4 << 20).unwrap().len(), 2 << 20);
}
