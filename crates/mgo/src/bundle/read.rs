//! Reading a bundle back: its segment and table, its launcher's identity,
//! and any variant decoded and checked block by block, as the launcher
//! would decode it. `inspect`, `verify`, `extract` and the up-to-date check
//! of rebuilds all read bundles through here.

use crate::elf::Elf;
use crate::encode::decode_block;
use mgo_format::{Blocks, Entry, SEGMENT_TYPE, SectionRecord, Sections, Table};
use std::fmt;
use std::ops::Range;
use std::path::Path;

/// Why a file could not be read as a bundle.
#[derive(Debug)]
pub enum OpenError {
    /// It could not be opened or read.
    Io(std::io::Error),
    /// It is not a regular file: what it is instead.
    NotRegular(&'static str),
    /// It is not an ELF executable, or has no bundle segment: not a bundle.
    NotBundle(&'static str),
    /// It has a bundle segment, but the table is damaged or unknown.
    Table(mgo_format::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(err) => write!(f, "{err}"),
            Self::NotRegular(what) => write!(f, "{what}"),
            Self::NotBundle(why) => write!(f, "not an mgo bundle: {why}"),
            Self::Table(err) => write!(f, "{err}"),
        }
    }
}

/// A damaged block of a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The level whose bytes are damaged.
    pub level: u8,
    /// What is wrong, for a line of output.
    pub what: String,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}: {}", self.level, self.what)
    }
}

/// An open bundle, mapped into memory.
pub struct Bundle {
    map: memmap2::Mmap,
    segment: Range<usize>,
    table: Table,
}

impl Bundle {
    /// Opens `path` and checks its table.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let map = map(path)?;
        let segment = find_segment(&map)?;
        let bytes = map.get(segment.clone()).unwrap_or_default();
        let table = Table::parse(bytes, bytes.len() as u64).map_err(OpenError::Table)?;
        Ok(Self {
            map,
            segment,
            table,
        })
    }

    /// Opens `path` as [`Bundle::open`] does or, when its ELF headers do
    /// not lead to a valid table, finds the table by its magic number at a
    /// page boundary, for `mgo verify` to report what else is damaged. The
    /// flag says whether the headers were bypassed so.
    pub fn open_despite_headers(path: &Path) -> Result<(Self, bool), OpenError> {
        let strict = match Self::open(path) {
            Ok(bundle) => return Ok((bundle, false)),
            Err(err @ (OpenError::Io(_) | OpenError::NotRegular(_))) => return Err(err),
            Err(err) => err,
        };
        let map = map(path)?;
        let page = mgo_format::VARIANT_ALIGN as usize;
        let found = (page..map.len()).step_by(page).find_map(|at| {
            let rest = map.get(at..)?;
            if !rest.starts_with(&mgo_format::MAGIC) {
                return None;
            }
            let table = Table::parse(rest, rest.len() as u64).ok()?;
            Some((at, table))
        });
        match found {
            Some((at, table)) => {
                let end = map.len();
                Ok((
                    Self {
                        map,
                        segment: at..end,
                        table,
                    },
                    true,
                ))
            }
            None => Err(strict),
        }
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The validated table.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Where the segment starts in the file: the launcher's part ends there.
    pub fn segment_offset(&self) -> usize {
        self.segment.start
    }

    fn segment(&self) -> &[u8] {
        self.map.get(self.segment.clone()).unwrap_or_default()
    }

    /// The entry of `level`, if the bundle has it.
    pub fn entry(&self, level: u8) -> Option<&Entry> {
        self.table.entries().iter().find(|e| e.level == level)
    }

    /// The levels, lowest first.
    pub fn levels(&self) -> Vec<u8> {
        self.table.entries().iter().map(|e| e.level).collect()
    }

    /// `entry`'s block directory, checked.
    pub fn blocks(&self, entry: &Entry) -> Result<Blocks<'_>, Damage> {
        let reference_size = self.table.reference_of(entry).map(|r| r.size);
        Blocks::parse(self.segment(), entry, reference_size).map_err(|e| Damage {
            level: entry.level,
            what: e.0.to_owned(),
        })
    }

    /// The launcher's "mgo-launcher VERSION FLAVOUR", if its part of the
    /// file holds one.
    pub fn launcher_identity(&self) -> Option<String> {
        identity_in(self.map.get(..self.segment.start)?)
    }

    /// The `.go.buildinfo` section the bundle carries (a copy of its lowest
    /// level's), which `go version -m` reads.
    pub fn buildinfo(&self) -> Option<&[u8]> {
        Elf::parse(self.bytes())?.section(".go.buildinfo")
    }

    /// `entry`'s inflated sections, checked.
    pub fn sections(&self, entry: &Entry) -> Result<Sections<'_>, Damage> {
        Sections::parse(self.segment(), entry).map_err(|e| Damage {
            level: entry.level,
            what: e.0.to_owned(),
        })
    }

    /// `entry`'s inflated sections as records.
    pub fn section_records(&self, entry: &Entry) -> Result<Vec<SectionRecord>, Damage> {
        let sections = self.sections(entry)?;
        Ok((0..sections.len()).map(|i| sections.get(i)).collect())
    }

    /// Decodes `entry`, re-creates its executable (deflating its inflated
    /// sections again) and checks every block and the whole.
    pub fn decode(&self, entry: &Entry) -> Result<Vec<u8>, Damage> {
        let mut file = Vec::new();
        let decoded = self.decode_into(entry, &mut |block| {
            file.extend_from_slice(block);
            Ok(())
        });
        match decoded {
            Ok(_) => Ok(file),
            Err(Stopped::Damaged(damage)) => Err(damage),
            // A Vec takes every byte it is given.
            Err(Stopped::Sink(err)) => Err(Damage {
                level: entry.level,
                what: err.to_string(),
            }),
        }
    }

    /// Decodes `entry` as [`Bundle::decode`] does, handing its executable
    /// to `sink` piece by piece: each block once it is checked, so that
    /// memory holds one block at a time (and the reference's dictionary),
    /// whatever size the table declares. A variant with inflated sections
    /// is re-created whole first, since its deflated streams span blocks.
    /// Returns the executable's size; `sink` has then seen every byte. On
    /// damage, `sink` may have seen a checked prefix.
    pub fn decode_into(
        &self,
        entry: &Entry,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, Stopped> {
        let damage = |what: String| Damage {
            level: entry.level,
            what,
        };
        let sections = self.sections(entry)?;
        let mut whole = xxhash_rust::xxh3::Xxh3::new();
        let mut written = 0u64;
        let mut sink_failed = None;
        let mut take = |bytes: &[u8]| {
            whole.update(bytes);
            written += bytes.len() as u64;
            sink(bytes).map_err(|err| {
                sink_failed = Some(err);
                damage(String::new())
            })
        };
        if sections.is_empty() {
            let decoded = self.each_block(entry, u64::MAX, &mut take);
            if let Some(err) = sink_failed {
                return Err(Stopped::Sink(err));
            }
            decoded?;
        } else {
            let mut image = Vec::new();
            self.each_block(entry, u64::MAX, &mut |block| {
                image.extend_from_slice(block);
                Ok(())
            })?;
            let records: Vec<SectionRecord> =
                (0..sections.len()).map(|i| sections.get(i)).collect();
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let file = crate::encode::dwarf::rebuild(&image, &records, threads)
                .map_err(|e| damage(e.to_string()))?;
            drop(image);
            if take(&file).is_err() {
                return Err(Stopped::Sink(sink_failed.unwrap_or_else(|| {
                    std::io::Error::other("the output stopped taking bytes")
                })));
            }
        }
        if written != sections.file_size() || whole.digest() != entry.checksum {
            return Err(damage("the whole does not match its checksum".into()).into());
        }
        Ok(written)
    }

    /// The first `len` bytes of `entry`'s executable, or more (whole
    /// blocks), each block checked.
    pub fn decode_prefix(&self, entry: &Entry, len: u64) -> Result<Vec<u8>, Damage> {
        let sections = self.sections(entry)?;
        if len <= sections.first_image_offset(entry.size) {
            // Before its first inflated section, the image is the file.
            self.image_prefix(entry, len)
        } else {
            self.decode(entry)
        }
    }

    /// Decodes and checks the blocks of `entry` that hold the first `len`
    /// bytes of the image they tile (whole blocks).
    fn image_prefix(&self, entry: &Entry, len: u64) -> Result<Vec<u8>, Damage> {
        // Grown as blocks decode, never reserved from the declared size: a
        // damaged table may declare more than the file could ever hold.
        let mut out = Vec::new();
        self.each_block(entry, len, &mut |block| {
            out.extend_from_slice(block);
            Ok(())
        })?;
        Ok(out)
    }

    /// Decodes and checks, in order, the blocks of `entry` that hold the
    /// first `len` bytes of its image, handing each to `f`. One block's
    /// bytes are held at a time: the directory limits a block to
    /// [`mgo_format::MAX_BLOCK_SIZE`].
    fn each_block(
        &self,
        entry: &Entry,
        len: u64,
        f: &mut dyn FnMut(&[u8]) -> Result<(), Damage>,
    ) -> Result<(), Damage> {
        let blocks = self.blocks(entry)?;
        let damage = |what: String| Damage {
            level: entry.level,
            what,
        };
        let wanted = (0..blocks.len()).take_while(|&i| blocks.get(i).offset < len.max(1));
        let dictionary_size = wanted
            .clone()
            .map(|i| blocks.get(i).dictionary_size as u64)
            .max()
            .unwrap_or(0);
        let reference = match self.table.reference_of(entry) {
            Some(reference) if dictionary_size > 0 => Some(
                self.image_prefix(reference, dictionary_size)
                    .map_err(|d| damage(format!("its reference is damaged: {d}")))?,
            ),
            _ => None,
        };
        for i in wanted {
            let block = blocks.get(i);
            let dictionary = reference
                .as_deref()
                .and_then(|r| r.get(..block.dictionary_size))
                .unwrap_or_default();
            let bytes = decode_block(entry.encoding, block.stored, block.size, dictionary)
                .map_err(|why| damage(format!("block {i} ({}): {why}", span(&block))))?;
            if bytes.len() != block.size || mgo_format::checksum(&bytes) != block.checksum {
                return Err(damage(format!(
                    "block {i} ({}) does not match its checksum",
                    span(&block)
                )));
            }
            f(&bytes)?;
        }
        Ok(())
    }
}

fn span(block: &mgo_format::Block<'_>) -> String {
    format!(
        "bytes {}..{}",
        block.offset,
        block.offset + block.size as u64
    )
}

/// Opens the file at `path` for reading, refusing anything but a regular
/// file: opening a FIFO would wait for a writer (and reading it would never
/// end), and a directory or a device cannot be mapped (ENODEV, "No such
/// device").
pub fn open_regular(path: &Path) -> Result<std::fs::File, OpenError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    // O_NONBLOCK makes opening a FIFO return at once, so that it can be
    // refused; for a regular file it changes nothing.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(OpenError::Io)?;
    let kind = file.metadata().map_err(OpenError::Io)?.file_type();
    if !kind.is_file() {
        return Err(OpenError::NotRegular(if kind.is_dir() {
            "it is a directory"
        } else if kind.is_fifo() {
            "it is a FIFO, not a regular file"
        } else if kind.is_char_device() || kind.is_block_device() {
            "it is a device, not a regular file"
        } else {
            "not a regular file"
        }));
    }
    Ok(file)
}

/// Maps the regular file at `path`.
fn map(path: &Path) -> Result<memmap2::Mmap, OpenError> {
    let file = open_regular(path)?;
    // SAFETY: the mapping is private and read-only. A bundle that another
    // process truncates while it is read could fault; mgo itself never
    // changes a bundle in place (it replaces files by renaming).
    unsafe { memmap2::Mmap::map(&file) }.map_err(OpenError::Io)
}

/// The bundle segment's range in `bytes`: the program header of type
/// [`SEGMENT_TYPE`] (docs/FORMAT.md).
fn find_segment(bytes: &[u8]) -> Result<Range<usize>, OpenError> {
    let elf = Elf::parse(bytes).ok_or(OpenError::NotBundle("not a 64-bit ELF file"))?;
    if !elf.has_program_headers() {
        return Err(OpenError::NotBundle(
            "its ELF program headers are unreadable",
        ));
    }
    let Range { start, end } = elf
        .segment(SEGMENT_TYPE)
        .ok_or(OpenError::NotBundle("an ELF file without a bundle segment"))?;
    if end > bytes.len() || start > end {
        return Err(OpenError::Table(mgo_format::Error(
            "bundle segment extends past the end of the file (truncated?)",
        )));
    }
    Ok(start..end)
}

/// Why [`Bundle::decode_into`] stopped: the bundle, or where its bytes go.
#[derive(Debug)]
pub enum Stopped {
    /// A block, a directory or the whole does not check out.
    Damaged(Damage),
    /// The sink refused bytes (a full disk, a closed pipe).
    Sink(std::io::Error),
}

impl From<Damage> for Stopped {
    fn from(damage: Damage) -> Self {
        Self::Damaged(damage)
    }
}

/// The launcher identity string in `bytes`, if any.
pub fn identity_in(bytes: &[u8]) -> Option<String> {
    const PREFIX: &[u8] = b"mgo-launcher ";
    let at = bytes.windows(PREFIX.len()).position(|w| w == PREFIX)?;
    let rest = bytes.get(at..)?;
    let end = rest.iter().take(64).position(|&b| b == 0)?;
    let text = std::str::from_utf8(rest.get(..end)?).ok()?;
    text.chars()
        .all(|c| c.is_ascii_graphic() || c == ' ')
        .then(|| text.to_owned())
}
