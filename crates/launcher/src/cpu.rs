//! The GOAMD64 level of the running CPU, decided exactly as the Go runtime's
//! start-up check (`runtime·rt0_go` in `src/runtime/asm_amd64.s`) decides
//! whether a variant may run: choosing higher makes the variant refuse to
//! start, choosing lower wastes speed.

/// The CPUID and XCR0 values Go's check reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Leaf 0, EAX: highest basic leaf.
    pub max_basic_leaf: u32,
    /// Leaf 1, ECX.
    pub leaf1_ecx: u32,
    /// Leaf 7 subleaf 0, EBX.
    pub leaf7_ebx: u32,
    /// Leaf 0x8000_0000, EAX: highest extended leaf.
    pub max_extended_leaf: u32,
    /// Leaf 0x8000_0001, ECX.
    pub ext1_ecx: u32,
    /// XCR0's low half, when OSXSAVE says XGETBV may be executed.
    pub xcr0: Option<u32>,
}

// The bit sets below are Go's V2_*, V3_* and V4_* macros, bit for bit.
/// Leaf 1 ECX for v2: SSE3, SSSE3, CMPXCHG16B, SSE4.1, SSE4.2, POPCNT.
const V2_LEAF1_ECX: u32 = 1 << 0 | 1 << 9 | 1 << 13 | 1 << 19 | 1 << 20 | 1 << 23;
/// Leaf 0x8000_0001 ECX for v2: LAHF/SAHF.
const V2_EXT1_ECX: u32 = 1 << 0;
/// Leaf 1 ECX for v3 adds FMA, MOVBE, OSXSAVE, AVX, F16C.
const V3_LEAF1_ECX: u32 = V2_LEAF1_ECX | 1 << 12 | 1 << 22 | 1 << 27 | 1 << 28 | 1 << 29;
/// Leaf 0x8000_0001 ECX for v3 adds ABM (LZCNT).
const V3_EXT1_ECX: u32 = V2_EXT1_ECX | 1 << 5;
/// Leaf 7 EBX for v3: BMI1, AVX2, BMI2.
const V3_LEAF7_EBX: u32 = 1 << 3 | 1 << 5 | 1 << 8;
/// XCR0 for v3: XMM and YMM state enabled by the OS.
const V3_XCR0: u32 = 1 << 1 | 1 << 2;
/// Leaf 7 EBX for v4 adds AVX512F, AVX512DQ, AVX512CD, AVX512BW, AVX512VL.
const V4_LEAF7_EBX: u32 = V3_LEAF7_EBX | 1 << 16 | 1 << 17 | 1 << 28 | 1 << 30 | 1 << 31;
/// XCR0 for v4 adds opmask and ZMM state.
const V4_XCR0: u32 = V3_XCR0 | 1 << 5 | 1 << 6 | 1 << 7;
/// Go requires this highest extended leaf from v2 on.
const NEED_MAX_EXTENDED_LEAF: u32 = 0x8000_0001;

/// Requirements of one level, in the order Go checks them.
struct Needs {
    leaf1_ecx: u32,
    ext1_ecx: u32,
    leaf7_ebx: u32,
    xcr0: u32,
}

fn has(value: u32, bits: u32) -> bool {
    value & bits == bits
}

fn accepts(s: &Snapshot, needs: &Needs) -> bool {
    // Go compares the highest extended leaf with a signed JL, so a CPU that
    // reports a "negative-looking" value below 0x8000_0001 fails while one that
    // reports, say, 0 passes; mirror it rather than "fix" it.
    let extended_ok = (s.max_extended_leaf as i32) >= (NEED_MAX_EXTENDED_LEAF as i32);
    s.max_basic_leaf != 0
        && has(s.leaf1_ecx, needs.leaf1_ecx)
        && extended_ok
        && has(s.leaf7_ebx, needs.leaf7_ebx)
        && has(s.ext1_ecx, needs.ext1_ecx)
        && (needs.xcr0 == 0 || s.xcr0.is_some_and(|xcr0| has(xcr0, needs.xcr0)))
}

/// The highest GOAMD64 level (1 to 4) whose Go runtime check passes on a CPU
/// that answers as `s` does.
pub fn level(s: &Snapshot) -> u8 {
    let levels = [
        Needs {
            leaf1_ecx: V2_LEAF1_ECX,
            ext1_ecx: V2_EXT1_ECX,
            leaf7_ebx: 0,
            xcr0: 0,
        },
        Needs {
            leaf1_ecx: V3_LEAF1_ECX,
            ext1_ecx: V3_EXT1_ECX,
            leaf7_ebx: V3_LEAF7_EBX,
            xcr0: V3_XCR0,
        },
        Needs {
            leaf1_ecx: V3_LEAF1_ECX,
            ext1_ecx: V3_EXT1_ECX,
            leaf7_ebx: V4_LEAF7_EBX,
            xcr0: V4_XCR0,
        },
    ];
    let mut best = 1;
    for (needs, candidate) in levels.iter().zip(2u8..) {
        if accepts(s, needs) {
            best = candidate;
        }
    }
    best
}

/// Where a feature's bit is.
#[derive(Clone, Copy)]
enum Register {
    Leaf1Ecx,
    Ext1Ecx,
    Leaf7Ebx,
    Xcr0,
}

/// One CPU feature a level needs, named as CPU manuals and /proc/cpuinfo
/// name it, for telling users why a level does not run.
struct Feature {
    name: &'static str,
    level: u8,
    register: Register,
    bits: u32,
}

const fn feature(name: &'static str, level: u8, register: Register, bits: u32) -> Feature {
    Feature {
        name,
        level,
        register,
        bits,
    }
}

/// Every bit of the V2_*, V3_* and V4_* sets above, in the order Go lists
/// the levels' features.
const FEATURES: [Feature; 24] = [
    feature("SSE3", 2, Register::Leaf1Ecx, 1 << 0),
    feature("SSSE3", 2, Register::Leaf1Ecx, 1 << 9),
    feature("CMPXCHG16B", 2, Register::Leaf1Ecx, 1 << 13),
    feature("SSE4.1", 2, Register::Leaf1Ecx, 1 << 19),
    feature("SSE4.2", 2, Register::Leaf1Ecx, 1 << 20),
    feature("POPCNT", 2, Register::Leaf1Ecx, 1 << 23),
    feature("LAHF/SAHF", 2, Register::Ext1Ecx, 1 << 0),
    feature("FMA", 3, Register::Leaf1Ecx, 1 << 12),
    feature("MOVBE", 3, Register::Leaf1Ecx, 1 << 22),
    feature("OSXSAVE", 3, Register::Leaf1Ecx, 1 << 27),
    feature("AVX", 3, Register::Leaf1Ecx, 1 << 28),
    feature("F16C", 3, Register::Leaf1Ecx, 1 << 29),
    feature("LZCNT", 3, Register::Ext1Ecx, 1 << 5),
    feature("BMI1", 3, Register::Leaf7Ebx, 1 << 3),
    feature("AVX2", 3, Register::Leaf7Ebx, 1 << 5),
    feature("BMI2", 3, Register::Leaf7Ebx, 1 << 8),
    feature("OS support for AVX (XCR0)", 3, Register::Xcr0, V3_XCR0),
    feature("AVX512F", 4, Register::Leaf7Ebx, 1 << 16),
    feature("AVX512DQ", 4, Register::Leaf7Ebx, 1 << 17),
    feature("AVX512CD", 4, Register::Leaf7Ebx, 1 << 28),
    feature("AVX512BW", 4, Register::Leaf7Ebx, 1 << 30),
    feature("AVX512VL", 4, Register::Leaf7Ebx, 1 << 31),
    feature(
        "OS support for AVX-512 (XCR0)",
        4,
        Register::Xcr0,
        V4_XCR0 & !V3_XCR0,
    ),
    // Not a feature but a limit Go checks from v2 on.
    feature("CPUID leaf 0x80000001", 2, Register::Ext1Ecx, 0),
];

impl Feature {
    fn present(&self, s: &Snapshot) -> bool {
        if self.bits == 0 {
            return (s.max_extended_leaf as i32) >= (NEED_MAX_EXTENDED_LEAF as i32);
        }
        let value = match self.register {
            Register::Leaf1Ecx => s.leaf1_ecx,
            Register::Ext1Ecx => s.ext1_ecx,
            Register::Leaf7Ebx => s.leaf7_ebx,
            Register::Xcr0 => s.xcr0.unwrap_or(0),
        };
        s.max_basic_leaf != 0 && has(value, self.bits)
    }
}

/// The features `level` needs that a CPU answering as `s` lacks: empty
/// exactly when [`level`] reaches `level`.
pub fn missing(s: &Snapshot, level: u8) -> impl Iterator<Item = &'static str> + '_ {
    FEATURES
        .iter()
        .filter(move |f| f.level <= level && !f.present(s))
        .map(|f| f.name)
}

/// Reads the running CPU. XGETBV is only executed when CPUID says the OS
/// enabled it (OSXSAVE); Go reaches it only after checking the same bit.
#[cfg(target_arch = "x86_64")]
pub fn snapshot() -> Snapshot {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    const OSXSAVE: u32 = 1 << 27;
    let leaf0 = __cpuid(0);
    let leaf1 = __cpuid(1);
    let leaf7 = __cpuid_count(7, 0);
    let ext0 = __cpuid(0x8000_0000);
    let ext1 = __cpuid(0x8000_0001);
    let xcr0 = if leaf1.ecx & OSXSAVE != 0 {
        let low: u32;
        // SAFETY: XGETBV with ECX=0 is defined whenever OSXSAVE is set; it only
        // reads a register.
        unsafe {
            core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") low, out("edx") _,
                options(nomem, nostack, preserves_flags));
        }
        Some(low)
    } else {
        None
    };
    Snapshot {
        max_basic_leaf: leaf0.eax,
        leaf1_ecx: leaf1.ecx,
        leaf7_ebx: leaf7.ebx,
        max_extended_leaf: ext0.eax,
        ext1_ecx: ext1.ecx,
        xcr0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CPU with everything v4 needs.
    fn full() -> Snapshot {
        Snapshot {
            max_basic_leaf: 0xd,
            leaf1_ecx: V3_LEAF1_ECX,
            leaf7_ebx: V4_LEAF7_EBX,
            max_extended_leaf: 0x8000_0008,
            ext1_ecx: V3_EXT1_ECX,
            xcr0: Some(V4_XCR0),
        }
    }

    #[test]
    fn full_cpu_is_v4_and_empty_is_v1() {
        assert_eq!(level(&full()), 4);
        assert_eq!(level(&Snapshot::default()), 1);
    }

    /// Removing any single bit a level needs drops the CPU below that level.
    #[test]
    fn each_required_bit_matters() {
        type Field = fn(&mut Snapshot) -> &mut u32;
        let fields: [(Field, u32, u8); 6] = [
            (|s| &mut s.leaf1_ecx, V2_LEAF1_ECX, 1),
            (|s| &mut s.ext1_ecx, V2_EXT1_ECX, 1),
            (|s| &mut s.leaf1_ecx, V3_LEAF1_ECX & !V2_LEAF1_ECX, 2),
            (|s| &mut s.ext1_ecx, V3_EXT1_ECX & !V2_EXT1_ECX, 2),
            (|s| &mut s.leaf7_ebx, V3_LEAF7_EBX, 2),
            (|s| &mut s.leaf7_ebx, V4_LEAF7_EBX & !V3_LEAF7_EBX, 3),
        ];
        for (field, bits, expected) in fields {
            for bit in 0..32 {
                if bits & (1 << bit) == 0 {
                    continue;
                }
                let mut s = full();
                *field(&mut s) &= !(1 << bit);
                assert_eq!(level(&s), expected, "without bit {bit} of {bits:#x}");
            }
        }
    }

    #[test]
    fn os_support_in_xcr0_is_required() {
        let cases = [
            (None, 2),
            (Some(0), 2),
            (Some(V3_XCR0), 3),
            (Some(V4_XCR0 & !(1 << 5)), 3),
            (Some(V4_XCR0 & !(1 << 7)), 3),
            (Some(V4_XCR0), 4),
        ];
        for (xcr0, expected) in cases {
            let s = Snapshot { xcr0, ..full() };
            assert_eq!(level(&s), expected, "xcr0 {xcr0:?}");
        }
    }

    #[test]
    fn leaf_limits_follow_go() {
        let no_basic = Snapshot {
            max_basic_leaf: 0,
            ..full()
        };
        assert_eq!(level(&no_basic), 1);
        let low_extended = Snapshot {
            max_extended_leaf: 0x8000_0000,
            ..full()
        };
        assert_eq!(level(&low_extended), 1);
        // Go's signed comparison lets a CPU reporting 0 through.
        let zero_extended = Snapshot {
            max_extended_leaf: 0,
            ..full()
        };
        assert_eq!(level(&zero_extended), 4);
    }

    /// `missing` agrees with `level` on every snapshot the other tests use,
    /// and names what each one lacks.
    #[test]
    fn missing_features_explain_the_level() {
        let mut snapshots = vec![full(), Snapshot::default()];
        for bit in 0..32 {
            for field in 0..4 {
                let mut s = full();
                match field {
                    0 => s.leaf1_ecx &= !(1 << bit),
                    1 => s.ext1_ecx &= !(1 << bit),
                    2 => s.leaf7_ebx &= !(1 << bit),
                    _ => s.xcr0 = s.xcr0.map(|x| x & !(1 << bit)),
                }
                snapshots.push(s);
            }
        }
        snapshots.push(Snapshot {
            max_extended_leaf: 0x8000_0000,
            ..full()
        });
        snapshots.push(Snapshot {
            xcr0: None,
            ..full()
        });
        for s in &snapshots {
            for wanted in 1..=4 {
                assert_eq!(
                    missing(s, wanted).next().is_none(),
                    level(s) >= wanted,
                    "{s:?} at v{wanted}"
                );
            }
        }
        let no_bw = Snapshot {
            leaf7_ebx: V4_LEAF7_EBX & !(1 << 30),
            ..full()
        };
        assert_eq!(missing(&no_bw, 4).collect::<Vec<_>>(), ["AVX512BW"]);
        assert_eq!(missing(&full(), 4).count(), 0);
    }

    /// The host answers like a real CPU: at least v1, and if it has AVX2 as
    /// /proc/cpuinfo tells, at least v3 unless the OS hides the YMM state.
    #[test]
    fn host_snapshot_agrees_with_cpuinfo() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags: Vec<&str> = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        let has_flag = |f: &str| flags.contains(&f);
        let level = level(&snapshot());
        assert_eq!(
            level >= 2,
            has_flag("popcnt")
                && has_flag("sse4_2")
                && has_flag("ssse3")
                && has_flag("cx16")
                && has_flag("lahf_lm")
        );
        assert_eq!(
            level >= 3,
            level >= 2
                && has_flag("avx2")
                && has_flag("bmi2")
                && has_flag("fma")
                && has_flag("movbe")
                && has_flag("abm")
                && has_flag("f16c")
        );
        assert_eq!(
            level >= 4,
            level >= 3
                && has_flag("avx512f")
                && has_flag("avx512bw")
                && has_flag("avx512vl")
                && has_flag("avx512dq")
                && has_flag("avx512cd")
        );
    }
}
