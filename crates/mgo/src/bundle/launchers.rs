//! The launcher executables mgo writes into bundles, built by build.rs from
//! crates/launcher: one per decoder, with and without Go's zlib encoder, so
//! that each bundle carries only what it needs (docs/LAUNCHER.md, "Launcher
//! flavours").

use mgo_format::Encoding;

static PLAIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher"));
static ZSTD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-zstd"));
static DEFLATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-deflate"));
static LZ4: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-lz4"));
static ZSTD_DWARF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-zstd-dwarf"));
static DEFLATE_DWARF: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-deflate-dwarf"));
static LZ4_DWARF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-lz4-dwarf"));

/// The launcher for variants stored with `encoding`; `inflated_dwarf` if
/// any of them has sections stored inflated, which it must deflate again.
pub fn for_encoding(encoding: Encoding, inflated_dwarf: bool) -> &'static [u8] {
    match (encoding, inflated_dwarf) {
        (Encoding::Raw, _) => PLAIN,
        (Encoding::Zstd, false) => ZSTD,
        (Encoding::Deflate, false) => DEFLATE,
        (Encoding::Lz4, false) => LZ4,
        (Encoding::Zstd, true) => ZSTD_DWARF,
        (Encoding::Deflate, true) => DEFLATE_DWARF,
        (Encoding::Lz4, true) => LZ4_DWARF,
    }
}

/// Every launcher this mgo writes.
pub fn all() -> [&'static [u8]; 7] {
    [
        PLAIN,
        ZSTD,
        DEFLATE,
        LZ4,
        ZSTD_DWARF,
        DEFLATE_DWARF,
        LZ4_DWARF,
    ]
}

/// The launcher whose identity string is `identity`, if this mgo has it.
pub fn by_identity(identity: &str) -> Option<&'static [u8]> {
    all()
        .into_iter()
        .find(|l| crate::bundle::read::identity_in(l).as_deref() == Some(identity))
}

/// What the identity string of this mgo's launchers starts with.
pub fn own_prefix() -> String {
    format!("mgo-launcher {} ", env!("CARGO_PKG_VERSION"))
}
