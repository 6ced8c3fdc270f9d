//! What the environment asks of the launcher: `GOAMD64` and `MGODEBUG`.

/// The meaning of a `GOAMD64` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Goamd64 {
    /// Not set, or set to the empty string: detect the CPU.
    Unset,
    /// `v1` to `v4`: use this level.
    Level(u8),
    /// Anything else: warn, then detect the CPU.
    Invalid,
}

/// Parses the value of `GOAMD64`.
pub fn goamd64(value: &[u8]) -> Goamd64 {
    if value.is_empty() {
        return Goamd64::Unset;
    }
    mgo_format::parse_level(value).map_or(Goamd64::Invalid, Goamd64::Level)
}

/// The switches of `MGODEBUG`, a comma-separated list like Go's `GODEBUG`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Debug {
    /// `log`: say which variant starts.
    pub log: bool,
    /// `extract`: write the chosen variant to stdout instead of running it.
    pub extract: bool,
    /// Some item was neither; the launcher warns.
    pub unknown: bool,
}

/// Parses the value of `MGODEBUG`. Empty items (`log,,extract`) are ignored.
pub fn mgodebug(value: &[u8]) -> Debug {
    let mut debug = Debug::default();
    for item in value.split(|&b| b == b',') {
        match item {
            b"" => {}
            b"log" => debug.log = true,
            b"extract" => debug.extract = true,
            _ => debug.unknown = true,
        }
    }
    debug
}

/// If `entry` (one `NAME=value` string of the environment) is `name`'s, its value.
pub fn value_of<'a>(entry: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    entry.strip_prefix(name)?.strip_prefix(b"=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goamd64_values() {
        let cases: [(&[u8], Goamd64); 9] = [
            (b"", Goamd64::Unset),
            (b"v1", Goamd64::Level(1)),
            (b"v4", Goamd64::Level(4)),
            (b"v0", Goamd64::Invalid),
            (b"v5", Goamd64::Invalid),
            (b"V3", Goamd64::Invalid),
            (b"3", Goamd64::Invalid),
            (b"v3 ", Goamd64::Invalid),
            (b"v33", Goamd64::Invalid),
        ];
        for (value, expected) in cases {
            assert_eq!(goamd64(value), expected, "{value:?}");
        }
    }

    #[test]
    fn mgodebug_items() {
        let d = |log, extract, unknown| Debug {
            log,
            extract,
            unknown,
        };
        let cases: [(&[u8], Debug); 7] = [
            (b"", d(false, false, false)),
            (b"log", d(true, false, false)),
            (b"extract", d(false, true, false)),
            (b"log,extract", d(true, true, false)),
            (b",log,", d(true, false, false)),
            (b"logs", d(false, false, true)),
            (b"extract=1", d(false, false, true)),
        ];
        for (value, expected) in cases {
            assert_eq!(mgodebug(value), expected, "{value:?}");
        }
    }

    #[test]
    fn value_of_matches_whole_names_only() {
        assert_eq!(value_of(b"GOAMD64=v3", b"GOAMD64"), Some(&b"v3"[..]));
        assert_eq!(value_of(b"GOAMD64=", b"GOAMD64"), Some(&b""[..]));
        assert_eq!(value_of(b"GOAMD64X=v3", b"GOAMD64"), None);
        assert_eq!(value_of(b"GOAMD6", b"GOAMD64"), None);
    }
}
