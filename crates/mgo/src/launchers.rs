//! The launcher executables mgo writes into bundles, built by build.rs from
//! crates/launcher: one per decoder, so that each bundle carries only the
//! one it needs (docs/LAUNCHER.md, "Launcher flavours").

use mgo_format::Encoding;

static PLAIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher"));
static ZSTD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-zstd"));
static DEFLATE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-deflate"));
static LZ4: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mgo-launcher-lz4"));

/// The launcher for variants stored with `encoding`.
pub fn for_encoding(encoding: Encoding) -> &'static [u8] {
    match encoding {
        Encoding::Raw => PLAIN,
        Encoding::Zstd => ZSTD,
        Encoding::Deflate => DEFLATE,
        Encoding::Lz4 => LZ4,
    }
}

/// Every launcher this mgo writes.
pub fn all() -> [&'static [u8]; 4] {
    [PLAIN, ZSTD, DEFLATE, LZ4]
}

/// The launcher whose identity string is `identity`, if this mgo has it.
pub fn by_identity(identity: &str) -> Option<&'static [u8]> {
    all()
        .into_iter()
        .find(|l| crate::read::identity_in(l).as_deref() == Some(identity))
}

/// What the identity string of this mgo's launchers starts with.
pub fn own_prefix() -> String {
    format!("mgo-launcher {} ", env!("CARGO_PKG_VERSION"))
}
