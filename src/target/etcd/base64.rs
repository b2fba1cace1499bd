//! Standard base64 (RFC 4648 §4, with `=` padding), the encoding etcd's JSON gateway uses for
//! every key and value.
//!
//! Forty lines of our own rather than a dependency: the gateway only ever needs the standard
//! alphabet with padding, and the decoder must reject malformed input with a message instead of
//! guessing (a value we cannot decode is a client error, never silently an empty value).

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes bytes as padded standard base64.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sextet(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes padded standard base64; any other input (bad length, bad character, padding in the
/// middle, non-zero trailing bits) is an error naming the problem.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let s = text.as_bytes();
    if !s.len().is_multiple_of(4) {
        return Err(format!("base64 length {} is not a multiple of 4", s.len()));
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let groups = s.len() / 4;
    for (g, quad) in s.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && g + 1 != groups) {
            return Err(format!("misplaced base64 padding in {text:?}"));
        }
        let mut n: u32 = 0;
        for &c in &quad[..4 - pad] {
            let v = sextet(c).ok_or_else(|| format!("bad base64 character {:?}", c as char))?;
            n = (n << 6) | v;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        if bytes[3 - pad..].iter().any(|&b| b != 0) {
            return Err(format!(
                "non-canonical base64 (trailing bits set) in {text:?}"
            ));
        }
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc4648_test_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            assert_eq!(encode(plain.as_bytes()), enc, "encode {plain:?}");
            assert_eq!(decode(enc).unwrap(), plain.as_bytes(), "decode {enc:?}");
        }
    }

    #[test]
    fn round_trips_every_byte_value_at_every_length_mod_3() {
        let all: Vec<u8> = (0..=255u8).collect();
        for len in [0, 1, 2, 3, 254, 255, 256] {
            let data = &all[..len.min(all.len())];
            assert_eq!(decode(&encode(data)).unwrap(), data);
        }
        assert_eq!(encode(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(decode("Zm9").unwrap_err().contains("multiple of 4"));
        assert!(decode("Zm9!").unwrap_err().contains("bad base64 character"));
        assert!(decode("Zg==Zm9v").unwrap_err().contains("padding"));
        assert!(decode("Z===").unwrap_err().contains("padding"));
        assert!(decode("Zh==").unwrap_err().contains("non-canonical"));
    }
}
