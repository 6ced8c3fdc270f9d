//! The auxiliary vector the kernel wrote for the launcher, rewritten in place
//! for the program it starts: the entries that describe the executable
//! change, everything else (AT_RANDOM, AT_SECURE, AT_EXECFN, AT_HWCAP, the
//! vDSO, ...) stays exactly as the kernel wrote it.

/// Keys of the auxiliary vector (include/uapi/linux/auxvec.h).
pub const AT_NULL: usize = 0;
/// Address of the program headers.
pub const AT_PHDR: usize = 3;
/// Size of one program header.
pub const AT_PHENT: usize = 4;
/// Number of program headers.
pub const AT_PHNUM: usize = 5;
/// Page size.
pub const AT_PAGESZ: usize = 6;
/// Load address of the interpreter, 0 without one.
pub const AT_BASE: usize = 7;
/// The program's entry point.
pub const AT_ENTRY: usize = 9;
/// Nonzero when the start is privileged (setuid, setgid, capabilities).
pub const AT_SECURE: usize = 23;
/// The path given to execve.
pub const AT_EXECFN: usize = 31;

/// What the started program's auxiliary vector says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    /// AT_PHDR.
    pub phdr: usize,
    /// AT_PHENT.
    pub phent: usize,
    /// AT_PHNUM.
    pub phnum: usize,
    /// AT_ENTRY: the program's entry, also when an interpreter starts first.
    pub entry: usize,
    /// AT_BASE: the interpreter's load address, or 0.
    pub base: usize,
}

/// Rewrites the program's entries of `auxv`, the key-value pairs up to and
/// including AT_NULL. Returns `false`, changing nothing, unless all five
/// keys are there (the kernel always writes them).
pub fn rewrite(auxv: &mut [usize], program: &Program) -> bool {
    let mut found = 0u8;
    for pair in auxv.chunks_exact(2) {
        match pair {
            [AT_NULL, _] => break,
            [AT_PHDR, _] => found |= 1,
            [AT_PHENT, _] => found |= 2,
            [AT_PHNUM, _] => found |= 4,
            [AT_ENTRY, _] => found |= 8,
            [AT_BASE, _] => found |= 16,
            _ => {}
        }
    }
    if found != 31 {
        return false;
    }
    for pair in auxv.chunks_exact_mut(2) {
        let value = match pair.first().copied() {
            Some(AT_NULL) | None => break,
            Some(AT_PHDR) => program.phdr,
            Some(AT_PHENT) => program.phent,
            Some(AT_PHNUM) => program.phnum,
            Some(AT_ENTRY) => program.entry,
            Some(AT_BASE) => program.base,
            Some(_) => continue,
        };
        if let Some(slot) = pair.get_mut(1) {
            *slot = value;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's order on x86-64 (create_elf_tables).
    fn kernel_auxv() -> Vec<usize> {
        vec![
            33,
            0x7fff_f000, // AT_SYSINFO_EHDR
            51,
            0xd30, // AT_MINSIGSTKSZ
            16,
            0x178b_fbff, // AT_HWCAP
            AT_PAGESZ,
            4096,
            17,
            100, // AT_CLKTCK
            AT_PHDR,
            0x4000_0040,
            AT_PHENT,
            56,
            AT_PHNUM,
            7,
            AT_BASE,
            0,
            8,
            0, // AT_FLAGS
            AT_ENTRY,
            0x4000_32c0,
            11,
            1000,
            12,
            1000,
            13,
            1000,
            14,
            1000, // AT_UID .. AT_EGID
            AT_SECURE,
            0,
            25,
            0x7fff_e000, // AT_RANDOM
            26,
            0x2, // AT_HWCAP2
            AT_EXECFN,
            0x7fff_efe0,
            15,
            0x7fff_e010, // AT_PLATFORM
            AT_NULL,
            0,
        ]
    }

    #[test]
    fn only_the_programs_entries_change() {
        let mut auxv = kernel_auxv();
        let program = Program {
            phdr: 0x400040,
            phent: 56,
            phnum: 6,
            entry: 0x480720,
            base: 0x7f00_0000_0000,
        };
        assert!(rewrite(&mut auxv, &program));
        let mut expected = kernel_auxv();
        for (key, value) in [
            (AT_PHDR, 0x400040),
            (AT_PHNUM, 6),
            (AT_BASE, 0x7f00_0000_0000),
            (AT_ENTRY, 0x480720),
        ] {
            let at = expected.chunks(2).position(|p| p[0] == key).unwrap();
            expected[2 * at + 1] = value;
        }
        assert_eq!(auxv, expected);
    }

    #[test]
    fn a_vector_without_every_key_is_left_alone() {
        let program = Program {
            phdr: 1,
            phent: 2,
            phnum: 3,
            entry: 4,
            base: 5,
        };
        for missing in [AT_PHDR, AT_PHENT, AT_PHNUM, AT_ENTRY, AT_BASE] {
            let mut auxv: Vec<usize> = kernel_auxv()
                .chunks(2)
                .filter(|p| p[0] != missing)
                .flatten()
                .copied()
                .collect();
            let before = auxv.clone();
            assert!(!rewrite(&mut auxv, &program), "without {missing}");
            assert_eq!(auxv, before);
        }
        // Keys after AT_NULL do not count.
        let mut cut = vec![AT_PHDR, 0, AT_NULL, 0, AT_PHENT, 0];
        assert!(!rewrite(&mut cut, &program));
    }
}
