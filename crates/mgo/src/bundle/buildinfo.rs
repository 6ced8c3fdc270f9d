//! Go's build information (`.go.buildinfo`, read by `go version -m`): the
//! Go version and the main module, for `mgo inspect`. Written here because
//! no maintained Rust crate reads it; the format is Go's
//! `debug/buildinfo` for Go 1.18 and later (strings stored inline).

/// What a Go executable says about how it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `go1.26.8`.
    pub go_version: String,
    /// The main package's import path (`path` line).
    pub path: String,
    /// The main module and its version (`mod` line), if any.
    pub module: Option<(String, String)>,
    /// The `build` settings, as `key=value`.
    pub settings: Vec<String>,
    /// The dependencies' `dep` lines and their replacements (`=>`), as
    /// they are: what differs between builds of two module versions.
    pub deps: Vec<String>,
}

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// The strings follow a 32-byte header.
const HEADER_SIZE: usize = 32;
/// Flag bit: version and module information are stored inline.
const FLAG_INLINE: u8 = 2;
/// Module information is wrapped in 16-byte sentinels.
const SENTINEL: usize = 16;

/// Parses a `.go.buildinfo` section; `None` for anything older than Go
/// 1.18's self-contained form, or damaged.
pub fn parse(section: &[u8]) -> Option<BuildInfo> {
    if !section.starts_with(MAGIC) {
        return None;
    }
    let flags = *section.get(MAGIC.len() + 1)?;
    if flags & FLAG_INLINE == 0 {
        return None;
    }
    let mut rest = section.get(HEADER_SIZE..)?;
    let version = string(&mut rest)?;
    let mut modinfo = string(&mut rest)?;
    if modinfo.len() > 2 * SENTINEL && modinfo.get(modinfo.len() - SENTINEL - 1) == Some(&b'\n') {
        modinfo = modinfo.get(SENTINEL..modinfo.len() - SENTINEL)?;
    }
    let mut info = BuildInfo {
        go_version: String::from_utf8_lossy(version).into_owned(),
        ..BuildInfo::default()
    };
    for line in String::from_utf8_lossy(modinfo).lines() {
        let mut fields = line.split('\t');
        match (fields.next(), fields.next(), fields.next()) {
            (Some("path"), Some(path), _) => info.path = path.to_owned(),
            (Some("mod"), Some(path), Some(version)) => {
                info.module = Some((path.to_owned(), version.to_owned()));
            }
            (Some("build"), Some(setting), _) => info.settings.push(setting.to_owned()),
            (Some("dep" | "=>"), Some(_), _) => info.deps.push(line.to_owned()),
            _ => {}
        }
    }
    Some(info)
}

/// Reads a uvarint-length-prefixed string and advances past it.
fn string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len = 0u64;
    let mut shift = 0;
    let mut used = 0usize;
    for &byte in rest.iter() {
        used += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    let value = rest.get(used..used.checked_add(len)?)?;
    *rest = rest.get(used + len..)?;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(version: &str, modinfo: &str) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([8, FLAG_INLINE]);
        out.resize(HEADER_SIZE, 0);
        for text in [version.as_bytes().to_vec(), {
            let mut m = vec![b'x'; SENTINEL];
            m.extend_from_slice(modinfo.as_bytes());
            m.extend(vec![b'y'; SENTINEL]);
            m
        }] {
            let mut len = text.len();
            loop {
                let byte = (len & 0x7f) as u8;
                len >>= 7;
                out.push(byte | if len > 0 { 0x80 } else { 0 });
                if len == 0 {
                    break;
                }
            }
            out.extend(text);
        }
        out
    }

    #[test]
    fn reads_version_path_module_and_settings() {
        let long_setting = "z".repeat(200);
        let modinfo = format!(
            "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\ndep\tgolang.org/x/text\tv0.3.0\th1:x\n=>\t../text\t\nbuild\t-trimpath=true\nbuild\tX={long_setting}\n"
        );
        let info = parse(&section("go1.26.8", &modinfo)).unwrap();
        assert_eq!(info.go_version, "go1.26.8");
        assert_eq!(info.path, "example.com/hello");
        assert_eq!(
            info.module,
            Some(("example.com/hello".into(), "(devel)".into()))
        );
        assert_eq!(
            info.settings,
            ["-trimpath=true", &format!("X={long_setting}")]
        );
        assert_eq!(
            info.deps,
            ["dep\tgolang.org/x/text\tv0.3.0\th1:x", "=>\t../text\t"]
        );
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(parse(b"not build info"), None);
        let mut old = section("go1.17", "");
        old[MAGIC.len() + 1] = 0;
        assert_eq!(parse(&old), None);
        let truncated = section("go1.26.8", "path\tx\n");
        assert_eq!(parse(&truncated[..HEADER_SIZE + 3]), None);
    }
}
