//! Go's level-1 match finder (the Snappy-style `deflateFast`): one hash
//! table of the last position seen for each 4-byte hash, no chains, and
//! lookups that skip ahead faster the longer nothing matches.
//!
//! Which positions get hashed, and when, decides which matches are found,
//! so every rule below is Go's, including its arithmetic on positions:
//! positions are kept as `i32` offsets from a running origin (`origin`),
//! which grows by each block's length so that entries from earlier blocks
//! stay comparable, and is pulled back before it could overflow.

use crate::BLOCK;

const TABLE_BITS: u32 = 14;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
/// DEFLATE's largest distance.
const MAX_DISTANCE: i32 = 1 << 15;
/// DEFLATE's longest match.
const MAX_MATCH: usize = 258;
/// Go stops looking for matches this close to a block's end, so that
/// every 8-byte read stays inside the block.
const TAIL: usize = 15;
/// Blocks shorter than this are all literals.
const MIN_MATCHED_BLOCK: usize = 17;
/// When the origin reaches this, Go rebases every table entry.
const REBASE_AT: i32 = i32::MAX - 2 * BLOCK as i32;

#[derive(Clone, Copy)]
#[repr(C)]
struct Slot {
    /// The 4 bytes hashed there, to reject hash collisions.
    value: u32,
    /// Their position plus the origin at the time.
    position: i32,
}

#[repr(C)]
pub struct MatchFinder {
    table: [Slot; TABLE_SIZE],
    origin: i32,
}

fn hash(four: u32) -> usize {
    (four.wrapping_mul(0x1e35_a7bd) >> (32 - TABLE_BITS)) as usize
}

fn load32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.first_chunk::<4>())
        .map_or(0, |b| u32::from_le_bytes(*b))
}

fn load64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.first_chunk::<8>())
        .map_or(0, |b| u64::from_le_bytes(*b))
}

/// Token encoding, as the block writer reads it: a literal is its byte; a
/// match has bit 30 set, `length - 3` in bits 22 to 29 and
/// `distance - 1` below.
pub const MATCH: u32 = 1 << 30;

fn match_token(length: usize, distance: usize) -> u32 {
    MATCH | ((length as u32 - 3) << 22) | (distance as u32 - 1)
}

/// Appends tokens to a fixed array.
struct Tokens<'t> {
    tokens: &'t mut [u32],
    len: usize,
}

impl Tokens<'_> {
    fn push(&mut self, token: u32) {
        if let Some(slot) = self.tokens.get_mut(self.len) {
            *slot = token;
            self.len += 1;
        }
    }

    fn literals(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push(u32::from(byte));
        }
    }
}

impl MatchFinder {
    /// The state of a new Go compressor.
    pub fn reset(&mut self) {
        self.table.fill(Slot {
            value: 0,
            position: 0,
        });
        self.origin = BLOCK as i32;
    }

    /// What the next block may match into after `block`.
    pub fn previous<'b>(&self, block: &'b [u8]) -> &'b [u8] {
        if block.len() < MIN_MATCHED_BLOCK {
            &[]
        } else {
            block
        }
    }

    /// The tokens of `block` (at most [`BLOCK`] bytes), which may match into
    /// `previous`, the block before it; `tokens` must hold one per byte.
    pub fn tokens<'t>(
        &mut self,
        block: &[u8],
        previous: &[u8],
        tokens: &'t mut [u32],
    ) -> &'t [u32] {
        let mut out = Tokens { tokens, len: 0 };
        self.find(block, previous, &mut out);
        let len = out.len;
        out.tokens.get(..len).unwrap_or(&[])
    }

    fn find(&mut self, src: &[u8], previous: &[u8], out: &mut Tokens<'_>) {
        if self.origin >= REBASE_AT {
            self.rebase(previous.is_empty());
        }
        if src.len() < MIN_MATCHED_BLOCK {
            self.origin += BLOCK as i32;
            out.literals(src);
            return;
        }
        let limit = src.len() - TAIL;
        let origin = self.origin;
        let mut emitted = 0usize;
        let mut s = 0usize;
        let mut current = load32(src, s);
        let mut next_hash = hash(current);
        'search: loop {
            // Look for a first match, stepping 1 byte at a time for 32
            // tries, then 2 for 32, and so on.
            let mut skip = 32usize;
            let mut next = s;
            let mut candidate;
            loop {
                s = next;
                let step = skip >> 5;
                next = s + step;
                skip += step;
                if next > limit {
                    break 'search;
                }
                let slot = self.slot(next_hash);
                candidate = *slot;
                *slot = Slot {
                    value: current,
                    position: s as i32 + origin,
                };
                let upcoming = load32(src, next);
                next_hash = hash(upcoming);
                let distance = s as i32 - (candidate.position - origin);
                if distance <= MAX_DISTANCE && current == candidate.value {
                    break;
                }
                current = upcoming;
            }
            out.literals(src.get(emitted..s).unwrap_or(&[]));
            // Emit matches for as long as the position right after each
            // one starts another.
            loop {
                let start = candidate.position - origin;
                let length = 4 + self.extend(src, previous, s + 4, start + 4);
                out.push(match_token(length, (s as i32 - start) as usize));
                s += length;
                emitted = s;
                if s >= limit {
                    break 'search;
                }
                let eight = load64(src, s - 1);
                let before = eight as u32;
                *self.slot(hash(before)) = Slot {
                    value: before,
                    position: origin + s as i32 - 1,
                };
                let here = (eight >> 8) as u32;
                let slot = self.slot(hash(here));
                candidate = *slot;
                *slot = Slot {
                    value: here,
                    position: origin + s as i32,
                };
                let distance = s as i32 - (candidate.position - origin);
                if distance > MAX_DISTANCE || here != candidate.value {
                    current = (eight >> 16) as u32;
                    next_hash = hash(current);
                    s += 1;
                    break;
                }
            }
        }
        if emitted < src.len() {
            out.literals(src.get(emitted..).unwrap_or(&[]));
        }
        self.origin += src.len() as i32;
    }

    fn slot(&mut self, hash: usize) -> &mut Slot {
        // hash() yields TABLE_BITS bits, so the index is always in range.
        let index = hash & (TABLE_SIZE - 1);
        #[allow(clippy::indexing_slicing)]
        &mut self.table[index]
    }

    /// How many more bytes match, from `s` in `src` against `t` (negative:
    /// counted back from the end of `previous`), up to DEFLATE's longest
    /// match in total. Go's rule: a match into the previous block that
    /// starts before it (after a reset) extends by nothing.
    fn extend(&self, src: &[u8], previous: &[u8], s: usize, t: i32) -> usize {
        let end = (s + MAX_MATCH - 4).min(src.len());
        let wanted = src.get(s..end).unwrap_or(&[]);
        if t >= 0 {
            let from = src.get(t as usize..).unwrap_or(&[]);
            return common_prefix(wanted, from);
        }
        let Ok(at) = usize::try_from(previous.len() as i64 + i64::from(t)) else {
            return 0;
        };
        let from = previous.get(at..).unwrap_or(&[]);
        let n = common_prefix(wanted, from);
        if n < from.len().min(wanted.len()) || n == wanted.len() {
            return n;
        }
        // The match ran to the end of the previous block: it continues at
        // the start of this one.
        n + common_prefix(wanted.get(n..).unwrap_or(&[]), src)
    }

    fn rebase(&mut self, forget: bool) {
        if forget {
            self.table.fill(Slot {
                value: 0,
                position: 0,
            });
        } else {
            let shift = self.origin - (MAX_DISTANCE + 1);
            for slot in &mut self.table {
                slot.position = (slot.position - shift).max(0);
            }
        }
        self.origin = MAX_DISTANCE + 1;
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let len = a.len().min(b.len());
    let (a, b) = (a.get(..len).unwrap_or(&[]), b.get(..len).unwrap_or(&[]));
    let mut n = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let (x, y) = (load64(x, 0), load64(y, 0));
        if x != y {
            return n + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a
        .get(n..)
        .unwrap_or(&[])
        .iter()
        .zip(b.get(n..).unwrap_or(&[]))
        .take_while(|(x, y)| x == y)
        .count()
}
