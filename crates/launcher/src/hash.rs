//! XXH3-64 (the format's checksum, `mgo_format::checksum`) at AVX2 speed on
//! CPUs that have it.
//!
//! Verifying what runs is most of the mapped start's cost, and the launcher
//! is compiled for the baseline x86-64 CPU, so xxhash-rust hashes with SSE2
//! only (it picks its code at compile time): about 23 GB/s here against
//! 57 GB/s with AVX2 (docs/DESIGN.md). No crate offers XXH3 that picks at run
//! time without std, so the loop that handles long inputs is written here
//! for AVX2 from the XXH3 specification (xxhash.com/doc/xxh3 and
//! XXH3_hashLong_64b in the reference implementation), and every other input
//! goes to xxhash-rust. The host tests compare the two on many lengths.

/// Bytes consumed by one accumulation step.
const STRIPE: usize = 64;
/// Length of XXH3's default secret.
const SECRET_SIZE: usize = 192;
/// Stripes per block: the secret advances 8 bytes per stripe.
const STRIPES_PER_BLOCK: usize = (SECRET_SIZE - STRIPE) / 8;
const BLOCK: usize = STRIPE * STRIPES_PER_BLOCK;
/// Inputs up to this length take XXH3's short paths.
const MID_SIZE_MAX: usize = 240;

const PRIME32_1: u64 = 0x9E37_79B1;
const PRIME32_2: u64 = 0x85EB_CA77;
const PRIME32_3: u64 = 0xC2B2_AE3D;
const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
const PRIME64_4: u64 = 0x85EB_CA77_C2B2_AE63;
const PRIME64_5: u64 = 0x27D4_EB2F_1656_67C5;

/// XXH3's default secret (the "kSecret" of the specification).
const SECRET: [u8; SECRET_SIZE] = [
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
];

/// XXH3-64 of `bytes`, with AVX2 when `avx2` says the CPU and the OS support
/// it (GOAMD64 v3 and above).
pub fn checksum(bytes: &[u8], avx2: bool) -> u64 {
    if avx2 && bytes.len() > MID_SIZE_MAX {
        // SAFETY: the caller checked AVX2 and its OS support (CPUID, XCR0).
        unsafe { long_avx2(bytes) }
    } else {
        xxhash_rust::xxh3::xxh3_64(bytes)
    }
}

fn read64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..)
        .and_then(|rest| rest.first_chunk::<8>())
        .map_or(0, |b| u64::from_le_bytes(*b))
}

fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9E37_79F9);
    h ^ (h >> 32)
}

fn mix2(low: u64, high: u64, secret: &[u8], at: usize) -> u64 {
    let product = u128::from(low ^ read64(secret, at)) * u128::from(high ^ read64(secret, at + 8));
    (product as u64) ^ ((product >> 64) as u64)
}

/// One stripe into the accumulators (XXH3_accumulate_512, AVX2).
///
/// # Safety
/// AVX2 as for [`long_avx2`]; `stripe` and `secret` must each have 64
/// readable bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn accumulate(
    lanes: &mut [core::arch::x86_64::__m256i; 2],
    stripe: *const u8,
    secret: *const u8,
) {
    use core::arch::x86_64::*;
    for (i, lane) in lanes.iter_mut().enumerate() {
        // SAFETY: 32 bytes of each, as the caller guarantees 64.
        let (data, key) = unsafe {
            (
                _mm256_loadu_si256(stripe.add(32 * i).cast()),
                _mm256_loadu_si256(secret.add(32 * i).cast()),
            )
        };
        let data_key = _mm256_xor_si256(data, key);
        let data_key_high = _mm256_srli_epi64(data_key, 32);
        let product = _mm256_mul_epu32(data_key, data_key_high);
        let swapped = _mm256_shuffle_epi32(data, 0b01_00_11_10);
        *lane = _mm256_add_epi64(*lane, _mm256_add_epi64(product, swapped));
    }
}

/// The end-of-block scramble (XXH3_scrambleAcc, AVX2).
///
/// # Safety
/// AVX2 as for [`long_avx2`].
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn scramble(lanes: &mut [core::arch::x86_64::__m256i; 2]) {
    use core::arch::x86_64::*;
    let prime = _mm256_set1_epi32(PRIME32_1 as i32);
    let secret = SECRET.get(SECRET_SIZE - STRIPE..).unwrap_or(&SECRET);
    for (i, lane) in lanes.iter_mut().enumerate() {
        let shifted = _mm256_srli_epi64(*lane, 47);
        let mixed = _mm256_xor_si256(*lane, shifted);
        // SAFETY: the last 64 bytes of the secret hold both halves.
        let key = unsafe { _mm256_loadu_si256(secret.as_ptr().add(32 * i).cast()) };
        let data_key = _mm256_xor_si256(mixed, key);
        let data_key_high = _mm256_shuffle_epi32(data_key, 0b00_11_00_01);
        let product_low = _mm256_mul_epu32(data_key, prime);
        let product_high = _mm256_mul_epu32(data_key_high, prime);
        *lane = _mm256_add_epi64(product_low, _mm256_slli_epi64(product_high, 32));
    }
}

/// XXH3's hash of a long input (more than 240 bytes), with AVX2.
///
/// # Safety
/// The CPU must support AVX2, and the OS must save its registers.
#[target_feature(enable = "avx2")]
unsafe fn long_avx2(input: &[u8]) -> u64 {
    use core::arch::x86_64::*;
    let len = input.len();
    let mut acc = [
        PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1,
    ];
    let base = input.as_ptr();
    let secret = SECRET.as_ptr();
    let blocks = (len - 1) / BLOCK;
    let stripes = ((len - 1) - BLOCK * blocks) / STRIPE;
    // SAFETY: every stripe read starts at least 64 bytes before the end of
    // the input (the blocks and stripes end before its last byte, the last
    // stripe is its last 64 bytes), and every secret read 64 bytes before
    // the end of SECRET; loads are unaligned.
    unsafe {
        let mut lanes = [
            _mm256_loadu_si256(acc.as_ptr().cast()),
            _mm256_loadu_si256(acc.as_ptr().add(4).cast()),
        ];
        for block in 0..blocks {
            let start = base.add(block * BLOCK);
            for stripe in 0..STRIPES_PER_BLOCK {
                accumulate(
                    &mut lanes,
                    start.add(stripe * STRIPE),
                    secret.add(stripe * 8),
                );
            }
            scramble(&mut lanes);
        }
        let start = base.add(blocks * BLOCK);
        for stripe in 0..stripes {
            accumulate(
                &mut lanes,
                start.add(stripe * STRIPE),
                secret.add(stripe * 8),
            );
        }
        // The last stripe, ending at the input's end (XXH_SECRET_LASTACC_START: 7).
        accumulate(
            &mut lanes,
            base.add(len - STRIPE),
            secret.add(SECRET_SIZE - STRIPE - 7),
        );
        let [low, high] = lanes;
        _mm256_storeu_si256(acc.as_mut_ptr().cast(), low);
        _mm256_storeu_si256(acc.as_mut_ptr().add(4).cast(), high);
    }
    // Merge the accumulators (XXH_SECRET_MERGEACCS_START: 11).
    let mut result = (len as u64).wrapping_mul(PRIME64_1);
    for (i, pair) in acc.chunks_exact(2).enumerate() {
        if let [low, high] = pair {
            result = result.wrapping_add(mix2(*low, *high, &SECRET, 11 + 16 * i));
        }
    }
    avalanche(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avx2() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// Pseudo-random bytes, so that every lane and every carry matters.
    fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn equals_xxhash_rust_on_every_length_class() {
        assert!(
            avx2(),
            "this test needs a CPU with AVX2 (GOAMD64=v3 or above)"
        );
        let mut lengths: Vec<usize> = (0..2200).collect();
        for around in [BLOCK, 2 * BLOCK, 4096, 65536, 1 << 20] {
            lengths.extend(around - 65..=around + 65);
        }
        lengths.extend([3_333_333, (1 << 20) + 12345]);
        for (i, &len) in lengths.iter().enumerate() {
            let data = bytes(len, i as u64 + 7);
            assert_eq!(
                checksum(&data, true),
                xxhash_rust::xxh3::xxh3_64(&data),
                "length {len}"
            );
            assert_eq!(checksum(&data, false), xxhash_rust::xxh3::xxh3_64(&data));
        }
        // Every byte value in every position class.
        let ones = vec![0xffu8; 5000];
        assert_eq!(checksum(&ones, true), xxhash_rust::xxh3::xxh3_64(&ones));
    }

    #[test]
    fn avalanche_and_mix_follow_the_specification() {
        // XXH3 of 241 zero bytes, the shortest long input, pins the merge.
        let zeros = [0u8; 241];
        assert_eq!(checksum(&zeros, avx2()), xxhash_rust::xxh3::xxh3_64(&zeros));
        assert_eq!(avalanche(0), 0);
    }
}
