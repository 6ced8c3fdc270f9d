//! DEFLATE blocks as Go's level-1 compressor chooses and writes them.

// Every index here is a symbol (below 286), a distance or length code
// (below 30), a code-length symbol (below 19) or a position inside the
// fixed tables, all bounded by construction.
#![allow(clippy::indexing_slicing)]

use crate::bits::Bits;
use crate::fast::MATCH;
use crate::huffman;

/// Literal/length symbols: 256 bytes, end of block, 29 lengths.
const LITERALS: usize = 286;
const END_OF_BLOCK: usize = 256;
const DISTANCES: usize = 30;
const CODE_LENGTHS: usize = 19;
/// The order in which a dynamic header lists the code-length code.
const CODE_LENGTH_ORDER: [usize; CODE_LENGTHS] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// First length (minus 3) and extra bits of each length code 257..285.
const LENGTH_BASE: [u16; 29] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 255,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// First distance (minus 1) and extra bits of each distance code.
const DISTANCE_BASE: [u16; DISTANCES] = [
    0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536,
    2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576,
];
const DISTANCE_EXTRA: [u8; DISTANCES] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The code of a length minus 3 (0..=255): the last code whose base is at
/// most it. 258 (255) has a code of its own.
fn length_code(length: usize) -> usize {
    LENGTH_BASE.partition_point(|&base| usize::from(base) <= length) - 1
}

fn distance_code(distance: usize) -> usize {
    DISTANCE_BASE.partition_point(|&base| usize::from(base) <= distance) - 1
}

/// A Huffman code over `N` symbols.
#[repr(C)]
struct Code<const N: usize> {
    frequencies: [u32; N],
    lengths: [u8; N],
    codes: [u16; N],
}

impl<const N: usize> Code<N> {
    fn build(&mut self, max_bits: usize, sorted: &mut [u64]) {
        huffman::build(
            &self.frequencies,
            max_bits,
            &mut self.lengths,
            &mut self.codes,
            sorted,
        );
    }

    /// Bits the symbols counted in `frequencies` take with this code.
    fn cost(&self) -> usize {
        self.frequencies
            .iter()
            .zip(&self.lengths)
            .map(|(&f, &l)| f as usize * usize::from(l))
            .sum()
    }

    #[inline(always)]
    fn put(&self, bits: &mut Bits<'_>, symbol: usize) {
        bits.put(
            u32::from(self.codes[symbol]),
            u32::from(self.lengths[symbol]),
        );
    }
}

/// The block writer's working memory (part of [`crate::Encoder`]).
#[repr(C)]
pub struct Tables {
    literals: Code<LITERALS>,
    distances: Code<DISTANCES>,
    code_lengths: Code<CODE_LENGTHS>,
    /// The run-length coded code lengths: code-length symbols, each of 16,
    /// 17 and 18 followed by its repeat count field.
    header: [u8; 2 * (LITERALS + DISTANCES)],
    header_len: usize,
    sorted: [u64; LITERALS + 1],
}

pub struct BlockWriter<'t, 'o> {
    tables: &'t mut Tables,
    pub bits: Bits<'o>,
}

impl<'t, 'o> BlockWriter<'t, 'o> {
    pub fn new(tables: &'t mut Tables, out: &'o mut [u8]) -> Self {
        Self {
            tables,
            bits: Bits::new(out),
        }
    }

    /// A stored block: header bits, then LEN and NLEN at a byte boundary,
    /// then the bytes.
    pub fn stored(&mut self, bytes: &[u8], last: bool) {
        self.bits.put(u32::from(last), 3);
        let len = bytes.len() as u16;
        self.bits.align();
        self.bits.put(u32::from(len), 16);
        self.bits.put(u32::from(!len), 16);
        self.bits.put_bytes(bytes);
    }

    /// A dynamic block of `tokens` (the match finder's output for `block`),
    /// or `block` stored if that is not bigger than the dynamic block plus
    /// 1/16 (Go's size estimate leaves out the length and distance extra
    /// bits).
    pub fn dynamic(&mut self, tokens: &[u32], block: &[u8]) {
        let t = &mut *self.tables;
        t.literals.frequencies.fill(0);
        t.distances.frequencies.fill(0);
        for &token in tokens {
            if token < MATCH {
                t.literals.frequencies[token as usize] += 1;
            } else {
                let length = ((token - MATCH) >> 22) as usize;
                let distance = (token & ((1 << 22) - 1)) as usize;
                t.literals.frequencies[257 + length_code(length)] += 1;
                t.distances.frequencies[distance_code(distance)] += 1;
            }
        }
        t.literals.frequencies[END_OF_BLOCK] = 1;
        let literal_count = used(&t.literals.frequencies);
        let mut distance_count = used(&t.distances.frequencies);
        if distance_count == 0 {
            // A header needs at least one distance code.
            t.distances.frequencies[0] = 1;
            distance_count = 1;
        }
        t.literals.build(15, &mut t.sorted);
        t.distances.build(15, &mut t.sorted);
        if self.store_instead(block, literal_count, distance_count) {
            return;
        }
        let t = &*self.tables;
        for &token in tokens {
            if token < MATCH {
                t.literals.put(&mut self.bits, token as usize);
                continue;
            }
            let length = ((token - MATCH) >> 22) as usize;
            let code = length_code(length);
            t.literals.put(&mut self.bits, 257 + code);
            let extra = LENGTH_EXTRA[code];
            if extra > 0 {
                let value = length - usize::from(LENGTH_BASE[code]);
                self.bits.put(value as u32, u32::from(extra));
            }
            let distance = (token & ((1 << 22) - 1)) as usize;
            let code = distance_code(distance);
            t.distances.put(&mut self.bits, code);
            let extra = DISTANCE_EXTRA[code];
            if extra > 0 {
                let value = distance - usize::from(DISTANCE_BASE[code]);
                self.bits.put(value as u32, u32::from(extra));
            }
        }
        t.literals.put(&mut self.bits, END_OF_BLOCK);
    }

    /// A dynamic block of literals only, or `block` stored as above.
    pub fn huffman_only(&mut self, block: &[u8]) {
        let t = &mut *self.tables;
        t.literals.frequencies.fill(0);
        for &byte in block {
            t.literals.frequencies[usize::from(byte)] += 1;
        }
        t.literals.frequencies[END_OF_BLOCK] = 1;
        t.literals.build(15, &mut t.sorted);
        // Go declares one distance code of one bit, used once, and all 257
        // literal lengths whether the high bytes occur or not.
        t.distances.frequencies.fill(0);
        t.distances.frequencies[0] = 1;
        t.distances.build(15, &mut t.sorted);
        if self.store_instead(block, END_OF_BLOCK + 1, 1) {
            return;
        }
        let t = &*self.tables;
        for &byte in block {
            t.literals.put(&mut self.bits, usize::from(byte));
        }
        t.literals.put(&mut self.bits, END_OF_BLOCK);
    }

    /// Writes `block` stored if Go would, else the dynamic block's header.
    fn store_instead(&mut self, block: &[u8], literal_count: usize, distance_count: usize) -> bool {
        let t = &mut *self.tables;
        run_length_code(t, literal_count, distance_count);
        t.code_lengths.build(7, &mut t.sorted);
        let mut listed = CODE_LENGTHS;
        while listed > 4 && t.code_lengths.frequencies[CODE_LENGTH_ORDER[listed - 1]] == 0 {
            listed -= 1;
        }
        let f = &t.code_lengths.frequencies;
        let header = 3
            + 5
            + 5
            + 4
            + 3 * listed
            + t.code_lengths.cost()
            + 2 * f[16] as usize
            + 3 * f[17] as usize
            + 7 * f[18] as usize;
        let size = header + t.literals.cost() + t.distances.cost();
        if (block.len() + 5) * 8 < size + (size >> 4) {
            self.stored(block, false);
            return true;
        }
        // BFINAL 0, BTYPE 2 (dynamic).
        self.bits.put(4, 3);
        self.bits.put((literal_count - 257) as u32, 5);
        self.bits.put((distance_count - 1) as u32, 5);
        self.bits.put((listed - 4) as u32, 4);
        for &symbol in &CODE_LENGTH_ORDER[..listed] {
            self.bits.put(u32::from(t.code_lengths.lengths[symbol]), 3);
        }
        let mut i = 0;
        while i < t.header_len {
            let symbol = usize::from(t.header[i]);
            t.code_lengths.put(&mut self.bits, symbol);
            i += 1;
            let extra = match symbol {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => continue,
            };
            self.bits.put(u32::from(t.header[i]), extra);
            i += 1;
        }
        false
    }
}

/// Number of symbols up to the last one used.
fn used(frequencies: &[u32]) -> usize {
    frequencies
        .iter()
        .rposition(|&f| f != 0)
        .map_or(0, |i| i + 1)
}

/// Run-length codes the literal and distance code lengths as one
/// sequence, into `header`, counting each code-length symbol, with Go's
/// choices: a used length is written once, then repeated with 16 (3 to 6
/// times) as often as possible, and the rest written singly; zeros go in
/// runs of 11 to 138 (18), then one run of 3 to 10 (17), then singly.
fn run_length_code(t: &mut Tables, literal_count: usize, distance_count: usize) {
    let lengths = t.literals.lengths[..literal_count]
        .iter()
        .chain(&t.distances.lengths[..distance_count]);
    let frequencies = &mut t.code_lengths.frequencies;
    frequencies.fill(0);
    let mut out = 0;
    let mut emit = |symbol: u8, repeat: Option<u8>, header: &mut [u8]| {
        header[out] = symbol;
        out += 1;
        if let Some(repeat) = repeat {
            header[out] = repeat;
            out += 1;
        }
        frequencies[usize::from(symbol)] += 1;
    };
    let mut run_of: Option<u8> = None;
    let mut run = 0usize;
    let mut flush = |length: u8, mut count: usize, header: &mut [u8]| {
        if length != 0 {
            emit(length, None, header);
            count -= 1;
            while count >= 3 {
                let n = count.min(6);
                emit(16, Some((n - 3) as u8), header);
                count -= n;
            }
        } else {
            while count >= 11 {
                let n = count.min(138);
                emit(18, Some((n - 11) as u8), header);
                count -= n;
            }
            if count >= 3 {
                emit(17, Some((count - 3) as u8), header);
                count = 0;
            }
        }
        for _ in 0..count {
            emit(length, None, header);
        }
    };
    for &length in lengths {
        match run_of {
            Some(current) if current == length => run += 1,
            Some(current) => {
                flush(current, run, &mut t.header);
                run_of = Some(length);
                run = 1;
            }
            None => {
                run_of = Some(length);
                run = 1;
            }
        }
    }
    if let Some(current) = run_of {
        flush(current, run, &mut t.header);
    }
    t.header_len = out;
}
