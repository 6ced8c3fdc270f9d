//! Huffman codes as Go's `compress/flate` builds them.
//!
//! Any optimal length-limited code would be valid DEFLATE, but several
//! usually exist, and the bytes depend on which one: Go's construction
//! (a boundary package-merge over the symbols sorted by frequency, ties by
//! symbol) with its exact tie-breaking is reproduced here.

// Indices are symbols of one alphabet (below 287) and tree levels (below
// 17), bounded by construction.
#![allow(clippy::indexing_slicing)]

/// The longest code Go's construction supports, plus one.
const LEVELS: usize = 17;

/// A symbol's frequency and value packed so that sorting the keys sorts by
/// frequency, then by symbol, as Go does. Frequencies fit in 32 bits and
/// symbols in 16.
fn key(frequency: u32, symbol: usize) -> u64 {
    (u64::from(frequency) << 16) | symbol as u64
}

fn frequency(key: u64) -> u32 {
    (key >> 16) as u32
}

fn symbol(key: u64) -> usize {
    (key & 0xffff) as usize
}

/// Sets `lengths[i]` to the code length of symbol `i` (0 for an unused
/// one) and `codes[i]` to its code, bit-reversed for LSB-first writing.
/// `sorted` is scratch space for one more than the number of symbols.
pub fn build(
    frequencies: &[u32],
    max_bits: usize,
    lengths: &mut [u8],
    codes: &mut [u16],
    sorted: &mut [u64],
) {
    let mut used = 0;
    for (symbol, (&f, length)) in frequencies.iter().zip(lengths.iter_mut()).enumerate() {
        *length = 0;
        if f != 0 {
            if let Some(slot) = sorted.get_mut(used) {
                *slot = key(f, symbol);
            }
            used += 1;
        }
    }
    let list = sorted.get_mut(..used).unwrap_or(&mut []);
    if used <= 2 {
        // One or two symbols: one bit each, in symbol order.
        for &k in list.iter() {
            if let Some(length) = lengths.get_mut(symbol(k)) {
                *length = 1;
            }
        }
    } else {
        heap_sort(list);
        let counts = length_counts(list, max_bits);
        // The most frequent symbols (the end of the list) get the shortest
        // codes.
        let mut rest = used;
        for (bits, &count) in counts.iter().enumerate().skip(1) {
            let start = rest.saturating_sub(count as usize);
            for &k in list.get(start..rest).unwrap_or(&[]) {
                if let Some(length) = lengths.get_mut(symbol(k)) {
                    *length = bits as u8;
                }
            }
            rest = start;
        }
    }
    canonical(lengths, codes);
}

/// Sorts at most 287 keys. Not core's sort: this runs in the launcher,
/// where its few hundred bytes replace core's 2.4 KB of quicksort.
fn heap_sort(keys: &mut [u64]) {
    fn sift_down(keys: &mut [u64], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && keys[child] < keys[child + 1] {
                child += 1;
            }
            if keys[root] >= keys[child] {
                return;
            }
            keys.swap(root, child);
            root = child;
        }
    }
    let n = keys.len();
    for root in (0..n / 2).rev() {
        sift_down(keys, root, n);
    }
    for end in (1..n).rev() {
        keys.swap(0, end);
        sift_down(keys, 0, end);
    }
}

/// DEFLATE's canonical codes (RFC 1951, 3.2.2) for the given lengths;
/// Go assigns the same.
fn canonical(lengths: &[u8], codes: &mut [u16]) {
    let mut count = [0u16; LEVELS];
    for &length in lengths {
        if let Some(c) = count.get_mut(usize::from(length)) {
            *c += 1;
        }
    }
    count[0] = 0;
    let mut next = [0u16; LEVELS];
    let mut code = 0u16;
    for bits in 1..LEVELS {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    for (&length, slot) in lengths.iter().zip(codes.iter_mut()) {
        let Some(value) = next.get_mut(usize::from(length)).filter(|_| length != 0) else {
            continue;
        };
        *slot = value.reverse_bits() >> (16 - u32::from(length));
        *value += 1;
    }
}

/// One level of the boundary package-merge.
#[derive(Clone, Copy, Default)]
struct Level {
    /// Weight of the last node chosen at this level.
    last: u32,
    /// Weight of the next leaf this level would take.
    next_leaf: u32,
    /// Weight of the next pair of nodes from the level below (valid only
    /// once that level has made both).
    next_pair: u32,
    /// Nodes this level still has to choose before the one above goes on.
    needed: u32,
}

const NONE: u32 = u32::MAX;

/// How many symbols get each code length 1..=max_bits, for `list` sorted
/// by ascending (frequency, symbol); at least 3 symbols.
///
/// This is the lazy "boundary" form of package-merge: each level keeps
/// only its last node, and a level asks the one below for two more nodes
/// whenever it takes a pair. Ties go to the pair, as in Go. For each level's
/// last node it tracks how many leaves each of its ancestors' levels has
/// taken, which at the end gives the number of leaves at each depth.
fn length_counts(list: &[u64], max_bits: usize) -> [u32; LEVELS] {
    let n = list.len();
    let weight = |i: usize| list.get(i).map_or(NONE, |&k| frequency(k));
    // A tree of n leaves is never deeper than n - 1.
    let top = max_bits.min(n - 1).min(LEVELS - 2);
    let mut levels = [Level::default(); LEVELS + 1];
    // leaves[l][j]: leaves taken at level j by the chain that ends at the
    // last node of level l.
    let mut leaves = [[0u32; LEVELS]; LEVELS];
    for (l, level) in levels.iter_mut().enumerate().take(top + 1).skip(1) {
        // Every level starts having taken the two lightest leaves.
        *level = Level {
            last: weight(1),
            next_leaf: weight(2),
            next_pair: if l == 1 {
                NONE
            } else {
                weight(0).saturating_add(weight(1))
            },
            needed: 0,
        };
        leaves[l][l] = 2;
    }
    // The top level makes 2n - 2 nodes in all and has made two.
    levels[top].needed = 2 * n as u32 - 4;
    let mut l = top;
    loop {
        let level = &mut levels[l];
        if level.next_pair == NONE && level.next_leaf == NONE {
            // Nothing left at this level: never come back to it.
            level.needed = 0;
            levels[l + 1].next_pair = NONE;
            l += 1;
            continue;
        }
        let previous = level.last;
        if level.next_leaf < level.next_pair {
            let taken = leaves[l][l] + 1;
            level.last = level.next_leaf;
            leaves[l][l] = taken;
            level.next_leaf = weight(taken as usize);
        } else {
            level.last = level.next_pair;
            let (below, here) = leaves.split_at_mut(l);
            if let (Some(below), Some(here)) = (below.last(), here.first_mut()) {
                here[..l].copy_from_slice(&below[..l]);
            }
            levels[l - 1].needed = 2;
        }
        let level = &mut levels[l];
        level.needed -= 1;
        if level.needed == 0 {
            if l == top {
                break;
            }
            let pair = previous.saturating_add(level.last);
            levels[l + 1].next_pair = pair;
            l += 1;
        } else {
            while levels[l - 1].needed > 0 {
                l -= 1;
            }
        }
    }
    let mut counts = [0u32; LEVELS];
    // The chain ending at the top level's last node took, at level l,
    // the leaves that need at least top + 1 - l bits.
    for (bits, count) in counts.iter_mut().enumerate().take(top + 1).skip(1) {
        let l = top + 1 - bits;
        *count = leaves[top][l] - leaves[top][l - 1];
    }
    counts
}
