//! POSIX shell quoting: the one place argument vectors become shell text.

/// Quotes one argument for POSIX `sh`. Plain words pass through; anything else is wrapped in
/// single quotes, with embedded single quotes written as `'\''`.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for ch in s.chars() {
        if ch == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(ch);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
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
}
