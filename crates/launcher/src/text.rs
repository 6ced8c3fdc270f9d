//! Text the launcher echoes from its environment. Values come from whoever
//! started the program, so only printable ASCII is echoed as it is: a
//! newline in `GOAMD64` must not forge a second `[mgo] launcher:` line, nor
//! an escape sequence repaint the terminal.

/// Writes `value` into `out` with every byte outside printable ASCII, and the
/// backslash, as `\xNN`; returns the bytes written. Stops when `out` is full.
pub fn escape<'o>(value: &[u8], out: &'o mut [u8]) -> &'o [u8] {
    let hex = |nibble: u8| match nibble {
        0..=9 => b'0' + nibble,
        _ => b'a' + (nibble - 10),
    };
    let mut len = 0;
    for &b in value {
        let escaped;
        let piece: &[u8] = if (0x20..0x7f).contains(&b) && b != b'\\' {
            escaped = [b, 0, 0, 0];
            escaped.get(..1).unwrap_or(&[])
        } else {
            escaped = [b'\\', b'x', hex(b >> 4), hex(b & 15)];
            &escaped
        };
        let Some(slot) = out.get_mut(len..len + piece.len()) else {
            break;
        };
        slot.copy_from_slice(piece);
        len += piece.len();
    }
    out.get(..len).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &[u8], room: usize) -> Vec<u8> {
        let mut out = vec![0u8; room];
        escape(value, &mut out).to_vec()
    }

    #[test]
    fn printable_ascii_passes_and_the_rest_is_spelled_out() {
        assert_eq!(escaped(b"v3", 64), b"v3");
        assert_eq!(
            escaped(b"v3\n[mgo] launcher: starting variant GOAMD64=v1", 128),
            b"v3\\x0a[mgo] launcher: starting variant GOAMD64=v1"
        );
        assert_eq!(escaped(b"\x1b[2J\\", 64), b"\\x1b[2J\\x5c");
        assert_eq!(escaped("é".as_bytes(), 64), b"\\xc3\\xa9");
    }

    #[test]
    fn a_full_buffer_keeps_whole_escapes() {
        assert_eq!(escaped(b"ab\ncd", 5), b"ab");
        assert_eq!(escaped(b"ab\ncd", 6), b"ab\\x0a");
        assert_eq!(escaped(b"", 0), b"");
    }
}
