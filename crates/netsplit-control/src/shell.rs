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
mod tests;

#[cfg(test)]
mod hostile;
