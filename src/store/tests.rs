use super::*;
use std::time::UNIX_EPOCH;

#[test]
fn a_store_path_that_is_a_file_is_bad_input_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("store");
    std::fs::write(&file, "x").unwrap();
    for store in [file.clone(), file.join("deeper")] {
        let err = create_run_dir(&store, "t").unwrap_err();
        let msg = crate::error::one_line(&err);
        assert!(msg.contains("is a file, not a directory"), "{msg}");
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        assert_eq!(crate::error::exit_code_for(&err), 254);
    }
    assert!(create_run_dir(&tmp.path().join("fresh"), "t")
        .unwrap()
        .is_dir());
}

#[test]
fn timestamps_are_utc_civil_dates() {
    let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    assert_eq!(timestamp(t), "20231114T221320.123");
    assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000.000");
    // a leap day
    let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
    assert_eq!(&timestamp(t)[..8], "20000229");
}

#[test]
fn run_dirs_are_unique_and_latest_points_at_the_newest() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().to_path_buf();
    let a = create_run_dir(&store, "t").unwrap();
    let b = create_run_dir(&store, "t").unwrap();
    assert_ne!(a, b);
    update_latest(&store, &b).unwrap();
    assert_eq!(
        std::fs::canonicalize(store.join("latest")).unwrap(),
        std::fs::canonicalize(&b).unwrap()
    );
    assert_eq!(
        std::fs::canonicalize(store.join("t").join("latest")).unwrap(),
        std::fs::canonicalize(&b).unwrap()
    );
}
