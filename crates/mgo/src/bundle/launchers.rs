//! The launcher executables mgo writes into bundles: one per flavour of
//! crates/launcher/flavours.txt, which build.rs builds and embeds, so that
//! each bundle carries only the decoder, and Go's zlib encoder only if it
//! needs them (docs/LAUNCHER.md, "Launcher flavours").

use crate::encode::{Encoded, Mode};
use crate::error::{Result, fail};
use mgo_format::Encoding;

/// One embedded launcher.
struct Flavour {
    /// As its identity string gives it: `zstd`, `zstd+dwarf`.
    name: &'static str,
    /// The encoding it decodes, besides raw.
    encoding: Encoding,
    /// Whether it has Go's zlib encoder, to re-create inflated sections.
    dwarf: bool,
    bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/flavours.rs"));

/// The launcher for a bundle whose variants are stored with `encoding`;
/// `inflated` if any of them has sections stored inflated, which it must
/// deflate again. None if no flavour fits: mgo never writes such a bundle.
pub fn for_bundle(encoding: Encoding, inflated: bool) -> Option<&'static [u8]> {
    FLAVOURS
        .iter()
        .find(|f| f.encoding == encoding && f.dwarf == (inflated && encoding != Encoding::Raw))
        .map(|f| f.bytes)
}

/// The launcher a bundle of `encoded`, written in `mode`, carries: the
/// flavour with the mode's decoder, and with Go's zlib encoder only if
/// some variant has inflated sections to re-create.
pub fn for_encoded(mode: Mode, encoded: &[Encoded]) -> Result<&'static [u8]> {
    let inflated = encoded.iter().any(|e| !e.sections().is_empty());
    for_bundle(mode.encoding(), inflated)
        .ok_or_else(|| fail(format!("internal error: no launcher for {mode:?}")))
}

/// Every launcher this mgo writes.
pub fn all() -> Vec<&'static [u8]> {
    FLAVOURS.iter().map(|f| f.bytes).collect()
}

/// The launcher whose identity string is `identity`, if this mgo has it.
pub fn by_identity(identity: &str) -> Option<&'static [u8]> {
    let name = identity.strip_prefix(&own_prefix())?;
    FLAVOURS.iter().find(|f| f.name == name).map(|f| f.bytes)
}

/// What the identity string of this mgo's launchers starts with.
pub fn own_prefix() -> String {
    format!("mgo-launcher {} ", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each embedded launcher says it is the flavour flavours.txt names,
    /// and fits the budget the tests hold bundles to (docs/LAUNCHER.md).
    #[test]
    fn every_flavour_is_what_the_list_says() {
        assert!(FLAVOURS.len() >= 4);
        for flavour in FLAVOURS {
            let identity = crate::bundle::read::identity_in(flavour.bytes);
            assert_eq!(
                identity,
                Some(format!("{}{}", own_prefix(), flavour.name)),
                "{}",
                flavour.name
            );
            let budget = if flavour.encoding == Encoding::Raw {
                40
            } else {
                128
            } * 1024;
            assert!(
                flavour.bytes.len() < budget,
                "{}: {} bytes",
                flavour.name,
                flavour.bytes.len()
            );
            assert_eq!(
                for_bundle(flavour.encoding, flavour.dwarf),
                Some(flavour.bytes)
            );
        }
    }
}
