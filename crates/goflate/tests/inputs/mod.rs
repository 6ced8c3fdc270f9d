//! Test inputs shared by the unit tests (src/tests.rs) and the comparison
//! with Go (tests/go.rs).

extern crate std;
use std::vec::Vec;

/// Bytes that no encoder can shorten: an LCG's high bytes, from `seed`.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}
