//! The memfd's name, which users see in `/proc/PID/exe`, `ls -l /proc/PID/fd`
//! and tools built on them: `<bundle path> [GOAMD64=vN]`.

/// The kernel refuses memfd names longer than this many bytes (NAME_MAX minus
/// the "memfd:" prefix it adds).
pub const MAX_NAME: usize = 249;

/// Writes the NUL-terminated name for `path` and `level` into `out` and
/// returns its length without the NUL. A path too long to fit keeps its end,
/// where the program's own name is, behind a leading "...".
pub fn memfd_name(path: &[u8], level: u8, out: &mut [u8; MAX_NAME + 1]) -> usize {
    let suffix = [
        b' ',
        b'[',
        b'G',
        b'O',
        b'A',
        b'M',
        b'D',
        b'6',
        b'4',
        b'=',
        b'v',
        b'0' + level,
        b']',
    ];
    const ELLIPSIS: &[u8] = b"...";
    let room = MAX_NAME - suffix.len();
    let mut len = 0;
    let mut put = |bytes: &[u8], len: &mut usize| {
        for &b in bytes {
            if let Some(slot) = out.get_mut(*len) {
                *slot = b;
                *len += 1;
            }
        }
    };
    // A NUL inside the path cannot happen (it came from a C string), but the
    // name must stay one C string whatever happens.
    let path = path.split(|&b| b == 0).next().unwrap_or(&[]);
    if path.len() <= room {
        put(path, &mut len);
    } else {
        put(ELLIPSIS, &mut len);
        let keep = room - ELLIPSIS.len();
        put(path.get(path.len() - keep..).unwrap_or(&[]), &mut len);
    }
    put(&suffix, &mut len);
    if let Some(slot) = out.get_mut(len) {
        *slot = 0;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(path: &[u8], level: u8) -> Vec<u8> {
        let mut out = [0xffu8; MAX_NAME + 1];
        let len = memfd_name(path, level, &mut out);
        assert_eq!(out[len], 0, "NUL-terminated");
        out[..len].to_vec()
    }

    #[test]
    fn short_path_is_kept_whole() {
        assert_eq!(name(b"/usr/bin/foobar", 3), b"/usr/bin/foobar [GOAMD64=v3]");
        assert_eq!(name(b"./hello", 1), b"./hello [GOAMD64=v1]");
    }

    #[test]
    fn long_path_keeps_its_end_and_fits() {
        for len in [236, 237, 238, 300, 4096] {
            let mut path = vec![b'a'; len];
            path.extend_from_slice(b"/prog");
            let got = name(&path, 4);
            assert!(
                got.len() <= MAX_NAME,
                "{} bytes for a {len}-byte path",
                got.len()
            );
            assert!(got.ends_with(b"/prog [GOAMD64=v4]"));
            if len + 5 > MAX_NAME - 13 {
                assert!(got.starts_with(b"..."));
                assert_eq!(got.len(), MAX_NAME);
            }
        }
    }
}
