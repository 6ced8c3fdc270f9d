//! Properties that hold whatever Go does: every stream inflates back to its
//! input, and the codes are complete. tests/go.rs compares with Go itself.

extern crate std;

use super::*;
use std::vec;
use std::vec::Vec;
#[path = "../tests/inputs/mod.rs"]
mod inputs;
use inputs::pseudo_random;

fn compress(input: &[u8]) -> Vec<u8> {
    let mut encoder = Encoder::boxed();
    let mut out = vec![0u8; input.len() + input.len() / 1000 * 5 + 64];
    let len = encoder.zlib(input, &mut out).expect("fits");
    out.truncate(len);
    out
}

#[test]
fn streams_inflate_to_their_input() {
    let text: Vec<u8> = (0..300_000u32)
        .flat_map(|i| std::format!("line {} of {}\n", i % 977, i / 13).into_bytes())
        .collect();
    for input in [
        Vec::new(),
        vec![7],
        vec![0; 200_000],
        pseudo_random(150_000, 1),
        text,
    ] {
        let stream = compress(&input);
        let back = miniz_oxide::inflate::decompress_to_vec_zlib(&stream).expect("valid zlib");
        assert_eq!(back, input, "round trip of {} bytes", input.len());
    }
}

#[test]
fn too_small_an_output_is_refused_not_overrun() {
    let input = pseudo_random(10_000, 2);
    let full = compress(&input);
    let mut encoder = Encoder::boxed();
    let mut short = vec![0u8; full.len() - 1];
    assert_eq!(encoder.zlib(&input, &mut short), None);
}

#[test]
fn memory_that_is_too_small_or_misaligned_is_refused() {
    let mut memory = vec![0u64; Encoder::SIZE / 8 + 1];
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(memory.as_mut_ptr().cast::<u8>(), memory.len() * 8)
    };
    assert!(Encoder::in_memory(&mut bytes[..Encoder::SIZE - 1]).is_none());
    assert!(Encoder::in_memory(&mut bytes[1..]).is_none());
    assert!(Encoder::in_memory(bytes).is_some());
}

#[test]
fn huffman_codes_are_complete_and_length_limited() {
    // Fibonacci frequencies force the deepest possible tree.
    let mut frequencies = [0u32; 40];
    let (mut a, mut b) = (1u32, 1u32);
    for f in frequencies.iter_mut() {
        *f = a;
        (a, b) = (b, a.saturating_add(b).min(1 << 20));
    }
    let mut lengths = [0u8; 40];
    let mut codes = [0u16; 40];
    let mut sorted = [0u64; 41];
    for max_bits in [7, 15] {
        huffman::build(
            &frequencies,
            max_bits,
            &mut lengths,
            &mut codes,
            &mut sorted,
        );
        assert!(lengths.iter().all(|&l| (1..=max_bits as u8).contains(&l)));
        let kraft: f64 = lengths.iter().map(|&l| 0.5f64.powi(i32::from(l))).sum();
        assert!((kraft - 1.0).abs() < 1e-9, "Kraft sum {kraft}");
    }
}
