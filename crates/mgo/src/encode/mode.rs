//! `MGO_COMPRESS`: the one place its value is parsed and the one place that
//! knows what each mode implies: its codec and level, whether it stores
//! other variants against a reference, whether it stores Go's DWARF
//! inflated, and which launcher its bundles carry.

use crate::error::{Result, fail};
use mgo_format::Encoding;

/// What `MGO_COMPRESS` asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Unset or empty: variants stored as they are.
    Raw,
    /// `gN`: DEFLATE at level N (1 to 9, as gzip's levels).
    Deflate(u8),
    /// `zN`: zstd at level N, each variant on its own.
    Zstd(i32),
    /// `ZN`: zstd at level N, other variants against a reference variant.
    ZstdAgainstReference(i32),
    /// `lz4`: LZ4 high-compression blocks, the fastest to decode.
    Lz4,
}

/// How a mode compresses each block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Codec {
    /// Not at all.
    Raw,
    /// libdeflate at this level.
    Deflate(u8),
    /// C zstd at this level.
    Zstd(i32),
    /// C lz4's high-compression mode at this level.
    Lz4(i32),
}

/// The accepted forms, for error messages and help.
pub const FORMS: &str = "g1..g9 (gzip/deflate), z1..z22 (zstd), Z1..Z22 (zstd, variants against each other), lz4 (fastest start), or empty for none";

/// The highest zstd level (zstd's `--ultra` -22).
const ZSTD_MAX_LEVEL: i32 = 22;

/// LZ4's highest high-compression level: slower to build, not to decode.
const LZ4_HC_LEVEL: i32 = 12;

impl Mode {
    /// Parses an `MGO_COMPRESS` value.
    pub fn parse(value: &str) -> Result<Self> {
        let level = |digits: &str, max: i32| {
            digits
                .parse::<i32>()
                .ok()
                .filter(|n| (1..=max).contains(n) && !digits.starts_with(['0', '+']))
        };
        let mode = match value.split_at_checked(1) {
            _ if value.is_empty() => Some(Self::Raw),
            _ if value == "lz4" => Some(Self::Lz4),
            Some(("g", digits)) => level(digits, 9).map(|n| Self::Deflate(n as u8)),
            Some(("z", digits)) => level(digits, ZSTD_MAX_LEVEL).map(Self::Zstd),
            Some(("Z", digits)) => level(digits, ZSTD_MAX_LEVEL).map(Self::ZstdAgainstReference),
            Some(_) | None => None,
        };
        mode.ok_or_else(|| {
            fail(format!(
                "MGO_COMPRESS={value} is not a compression mode: use {FORMS}"
            ))
        })
    }

    /// How each block is compressed.
    pub(super) fn codec(self) -> Codec {
        match self {
            Self::Raw => Codec::Raw,
            Self::Deflate(level) => Codec::Deflate(level),
            Self::Zstd(level) | Self::ZstdAgainstReference(level) => Codec::Zstd(level),
            Self::Lz4 => Codec::Lz4(LZ4_HC_LEVEL),
        }
    }

    /// The encoding of the stored variants.
    pub fn encoding(self) -> Encoding {
        match self.codec() {
            Codec::Raw => Encoding::Raw,
            Codec::Deflate(_) => Encoding::Deflate,
            Codec::Zstd(_) => Encoding::Zstd,
            Codec::Lz4(_) => Encoding::Lz4,
        }
    }

    /// Whether the variants below the reference are compressed against it
    /// (docs/FORMAT.md, "References").
    pub fn uses_reference(self) -> bool {
        matches!(self, Self::ZstdAgainstReference(_))
    }

    /// Whether Go's zlib-compressed DWARF is stored inflated (docs/FORMAT.md,
    /// "Inflated sections"): where that makes bundles smaller, measured per
    /// codec in docs/DESIGN.md, "Inflated DWARF" (deflate 2 to 5% smaller,
    /// zstd 3 to 48%; LZ4, without entropy coding, 3% larger). An
    /// uncompressed bundle stores every build as it is.
    pub fn inflates_dwarf(self) -> bool {
        match self.codec() {
            Codec::Deflate(_) | Codec::Zstd(_) => true,
            Codec::Raw | Codec::Lz4(_) => false,
        }
    }
}
