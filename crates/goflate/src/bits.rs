//! DEFLATE's bit order: codes and fields are packed from the least
//! significant bit of each byte up.

/// Writes bits into a fixed buffer; remembers an overflow instead of
/// failing at once, so that the block code needs no error paths.
pub struct Bits<'o> {
    out: &'o mut [u8],
    len: usize,
    pending: u64,
    count: u32,
    overflow: bool,
}

impl<'o> Bits<'o> {
    pub fn new(out: &'o mut [u8]) -> Self {
        Self {
            out,
            len: 0,
            pending: 0,
            count: 0,
            overflow: false,
        }
    }

    /// Appends the low `count` bits of `value` (at most 16; `value` has no
    /// bits above them).
    #[inline(always)]
    pub fn put(&mut self, value: u32, count: u32) {
        self.pending |= u64::from(value) << self.count;
        self.count += count;
        if self.count >= 32 {
            self.emit(&(self.pending as u32).to_le_bytes());
            self.pending >>= 32;
            self.count -= 32;
        }
    }

    /// Pads with zero bits to the next byte boundary and writes out what is
    /// pending, as a stored block's header needs.
    pub fn align(&mut self) {
        let bytes = self.count.div_ceil(8) as usize;
        let pending = self.pending.to_le_bytes();
        self.emit(pending.get(..bytes).unwrap_or(&[]));
        self.pending = 0;
        self.count = 0;
    }

    /// Appends whole bytes; only at a byte boundary.
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        self.align();
        self.emit(bytes);
    }

    fn emit(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        match self.out.get_mut(self.len..end) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                self.len = end;
            }
            None => self.overflow = true,
        }
    }

    /// The stream's length, if it fitted.
    pub fn finish(mut self) -> Option<usize> {
        self.align();
        (!self.overflow).then_some(self.len)
    }
}
