//! What the environment asks of the launcher: `GOAMD64` and `MGODEBUG`, and
//! how the variant is started.

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

/// What `GOAMD64` may do in this start. A privileged start (AT_SECURE)
/// detects the CPU whatever it says, as glibc's loader drops its own
/// CPU-selection knobs (`GLIBC_TUNABLES`) for such programs: the caller
/// must not choose which build of a privileged program runs. The value is
/// ignored silently; a shell that exports `GOAMD64` for builds would
/// otherwise get a line at every start of such a program.
pub fn effective_goamd64(value: &[u8], secure: bool) -> Goamd64 {
    if secure {
        Goamd64::Unset
    } else {
        goamd64(value)
    }
}

/// The switches of `MGODEBUG`, a comma-separated list like Go's `GODEBUG`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Debug {
    /// `log`: say which variant starts, and how.
    pub log: bool,
    /// `extract`: write the chosen variant to stdout instead of running it.
    pub extract: bool,
    /// `memfd`: start the variant through a memfd even where it could be
    /// mapped in place.
    pub memfd: bool,
    /// `file`: start the variant from a file in the user's cache.
    pub file: bool,
    /// Some item was none of these; the launcher warns.
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
            b"memfd" => debug.memfd = true,
            b"file" => debug.file = true,
            _ => debug.unknown = true,
        }
    }
    debug
}

/// What `MGODEBUG` may do in this start. A privileged start (setuid,
/// setgid or file capabilities: the kernel's AT_SECURE) ignores it all, as
/// the dynamic loader ignores `LD_*` variables: `MGODEBUG=extract` would
/// hand a user a program they may not read. Returns the switches to obey
/// and whether to say that they were ignored (only when asked to log).
pub fn effective_debug(value: &[u8], secure: bool) -> (Debug, bool) {
    let asked = mgodebug(value);
    if secure {
        (Debug::default(), asked.log)
    } else {
        (asked, false)
    }
}

/// If `entry` (one `NAME=value` string of the environment) is `name`'s, its value.
pub fn value_of<'a>(entry: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    entry.strip_prefix(name)?.strip_prefix(b"=")
}

/// The launcher's variables in an environment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variables<'a> {
    /// `GOAMD64`'s value, if set.
    pub goamd64: Option<&'a [u8]>,
    /// `MGODEBUG`'s value, if set.
    pub mgodebug: Option<&'a [u8]>,
}

impl<'a> Variables<'a> {
    /// Takes note of one `NAME=value` entry. When a name appears twice, the
    /// first one counts, as with Go's `os.Getenv` and libc's `getenv`: the
    /// started program must see the level that was chosen for it.
    pub fn note(&mut self, entry: &'a [u8]) {
        if self.goamd64.is_none()
            && let Some(value) = value_of(entry, b"GOAMD64")
        {
            self.goamd64 = Some(value);
        } else if self.mgodebug.is_none()
            && let Some(value) = value_of(entry, b"MGODEBUG")
        {
            self.mgodebug = Some(value);
        }
    }
}

/// How the chosen variant is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launch {
    /// Mapped in place from the bundle's own pages (the default).
    Mapped,
    /// Through a memfd, because the bundle was built with `MGO_LAUNCH=memfd`.
    MemfdByBundle,
    /// Through a memfd, because `MGODEBUG=memfd` asked for it.
    MemfdAsked,
    /// From a file in the user's cache (`MGO_LAUNCH=file` or
    /// `MGODEBUG=file`), mapped as the bundle would be.
    File,
}

/// How to start: what `MGODEBUG` asks for, else what the bundle's flags
/// say. A privileged start never uses a file in a cache its caller may
/// control: it maps the bundle.
pub fn launch(bundle_memfd: bool, bundle_file: bool, debug: &Debug, secure: bool) -> Launch {
    if debug.memfd {
        Launch::MemfdAsked
    } else if (debug.file || bundle_file) && !secure {
        Launch::File
    } else if bundle_memfd {
        Launch::MemfdByBundle
    } else {
        Launch::Mapped
    }
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
        let d = |log, extract, memfd, unknown| Debug {
            file: false,
            log,
            extract,
            memfd,
            unknown,
        };
        let cases: [(&[u8], Debug); 9] = [
            (b"", d(false, false, false, false)),
            (b"log", d(true, false, false, false)),
            (b"extract", d(false, true, false, false)),
            (b"memfd", d(false, false, true, false)),
            (b"log,extract", d(true, true, false, false)),
            (b",log,memfd,", d(true, false, true, false)),
            (b"logs", d(false, false, false, true)),
            (b"extract=1", d(false, false, false, true)),
            (b"MEMFD", d(false, false, false, true)),
        ];
        for (value, expected) in cases {
            assert_eq!(mgodebug(value), expected, "{value:?}");
        }
    }

    #[test]
    fn a_privileged_start_ignores_mgodebug_and_says_so_only_when_asked_to_log() {
        let none = Debug::default();
        assert_eq!(effective_debug(b"extract", true), (none, false));
        assert_eq!(effective_debug(b"extract,log", true), (none, true));
        assert_eq!(effective_debug(b"memfd", true), (none, false));
        assert_eq!(effective_debug(b"extract", false).0, mgodebug(b"extract"));
        assert!(!effective_debug(b"log", false).1);
    }

    #[test]
    fn a_privileged_start_ignores_goamd64() {
        for value in [&b"v1"[..], b"v4", b"v9", b""] {
            assert_eq!(effective_goamd64(value, true), Goamd64::Unset, "{value:?}");
        }
        assert_eq!(effective_goamd64(b"v1", false), Goamd64::Level(1));
        assert_eq!(effective_goamd64(b"v9", false), Goamd64::Invalid);
    }

    #[test]
    fn the_first_of_duplicate_variables_counts() {
        let mut vars = Variables::default();
        for entry in [
            &b"PATH=/bin"[..],
            b"GOAMD64=v2",
            b"MGODEBUG=log",
            b"GOAMD64=v4",
            b"MGODEBUG=extract",
            b"GOAMD64X=v3",
        ] {
            vars.note(entry);
        }
        assert_eq!(vars.goamd64, Some(&b"v2"[..]));
        assert_eq!(vars.mgodebug, Some(&b"log"[..]));
    }

    #[test]
    fn launch_modes() {
        let asked = mgodebug(b"memfd");
        let plain = Debug::default();
        assert_eq!(launch(false, false, &plain, false), Launch::Mapped);
        assert_eq!(launch(true, false, &plain, false), Launch::MemfdByBundle);
        assert_eq!(launch(false, false, &asked, false), Launch::MemfdAsked);
        assert_eq!(launch(true, false, &asked, false), Launch::MemfdAsked);
        let file = mgodebug(b"file");
        assert_eq!(launch(false, false, &file, false), Launch::File);
        assert_eq!(launch(false, true, &plain, false), Launch::File);
        assert_eq!(launch(true, true, &asked, false), Launch::MemfdAsked);
        // A privileged start never uses a cache: the bundle's own pages.
        assert_eq!(launch(false, true, &plain, true), Launch::Mapped);
        assert_eq!(launch(true, true, &plain, true), Launch::MemfdByBundle);
    }

    #[test]
    fn value_of_matches_whole_names_only() {
        assert_eq!(value_of(b"GOAMD64=v3", b"GOAMD64"), Some(&b"v3"[..]));
        assert_eq!(value_of(b"GOAMD64=", b"GOAMD64"), Some(&b""[..]));
        assert_eq!(value_of(b"GOAMD64X=v3", b"GOAMD64"), None);
        assert_eq!(value_of(b"GOAMD6", b"GOAMD64"), None);
    }
}
