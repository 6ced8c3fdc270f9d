//! `mgo inspect`, `mgo verify` and `mgo extract`: reading a bundle without
//! running it. What the three share is here: opening a bundle, the level
//! this machine would start, and how sizes are written.

mod extract;
mod report;
mod running;
mod verify;

pub use extract::{extract, extract_core, extract_process};
pub use report::inspect;
pub use verify::verify;

use crate::bundle::read::{Bundle, OpenError};
use crate::cpu;
use crate::error::{Result, fail, shown};
use std::path::Path;

pub(crate) fn open(file: &Path) -> Result<Bundle> {
    Bundle::open(file).map_err(|err| open_error(file, err))
}

pub(crate) fn open_error(file: &Path, err: OpenError) -> crate::error::Error {
    match err {
        OpenError::Io(e) => fail(format!("cannot read {}: {e}", shown(file))),
        OpenError::NotRegular(what) => fail(format!("cannot read {}: {what}", shown(file))),
        OpenError::NotBundle(why) => fail(format!(
            "{} is not an mgo bundle: {why}: name a file that mgo wrote",
            shown(file)
        )),
        OpenError::Table(e) => fail(format!(
            "{} is damaged: {e}: mgo verify tells more",
            shown(file)
        )),
    }
}

/// "1 byte differs", "3 bytes differ".
pub(crate) fn differing(n: usize) -> String {
    if n == 1 {
        "1 byte differs".to_owned()
    } else {
        format!("{} bytes differ", size(n as u64))
    }
}

/// Groups digits in threes, for sizes people read.
pub(crate) fn size(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The level the launcher would start here, and why.
pub(crate) struct Choice {
    pub machine: cpu::Machine,
    /// GOAMD64 from the environment, if valid: the launcher obeys it.
    pub forced: Option<u8>,
    pub started: u8,
}

pub(crate) fn choice(bundle: &Bundle) -> Choice {
    let machine = cpu::this_machine();
    let forced = std::env::var("GOAMD64")
        .ok()
        .and_then(|v| mgo_format::parse_level(v.as_bytes()));
    let started = bundle.table().choose(forced.unwrap_or(machine.level)).level;
    Choice {
        machine,
        forced,
        started,
    }
}

pub(crate) fn choice_text(c: &Choice) -> String {
    let cpu = if c.machine.level == 4 {
        "this CPU runs every level (v4)".to_owned()
    } else {
        format!(
            "this CPU runs up to v{}{}",
            c.machine.level,
            cpu::why_not(&c.machine)
        )
    };
    match c.forced {
        Some(level) => format!(
            "{cpu}; GOAMD64=v{level} is set: the launcher starts v{}",
            c.started
        ),
        None if c.started > c.machine.level => format!(
            "{cpu}: the bundle's lowest level is v{}, which will refuse to start here",
            c.started
        ),
        None => format!("{cpu}: the launcher starts v{}", c.started),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_grouped() {
        assert_eq!(size(0), "0");
        assert_eq!(size(999), "999");
        assert_eq!(size(1000), "1,000");
        assert_eq!(size(20_512_345), "20,512,345");
    }
}
