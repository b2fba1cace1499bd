use super::*;

#[test]
fn plain_words_are_untouched() {
    assert_eq!(quote("etcd"), "etcd");
    assert_eq!(quote("--data-dir=/var/lib/x"), "--data-dir=/var/lib/x");
}

#[test]
fn hostile_strings_are_single_quoted() {
    assert_eq!(quote(""), "''");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    assert_eq!(quote("it's"), "'it'\\''s'");
    assert_eq!(quote("`x`;y|z&\n"), "'`x`;y|z&\n'");
}
