//! Links the launcher as a static executable without libc or start files.
fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        // A non-PIE: nothing would apply a PIE's relocations without a loader.
        "-no-pie",
        // Where no program it starts in place and no brk lands: above Go's
        // default text address (0x400000) and the heap a cgo program's brk
        // grows, below the shadow memory of -asan builds (0x7fff8000 on).
        // docs/DESIGN.md, "Where the launcher lives".
        "-Wl,--image-base=0x40000000",
        // One read-execute segment instead of several page-aligned ones:
        // smaller file, fewer mappings at every start.
        "-Wl,-z,noseparate-code",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        "-Wl,-z,norelro",
        "-Wl,-z,noexecstack",
        // No unwind tables: the launcher aborts on panic and never unwinds,
        // and the precompiled core brings 4 KB of them (a tenth of the
        // plain launcher's budget).
        "-Wl,--no-eh-frame-hdr",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,-T,{}/discard.ld",
        env!("CARGO_MANIFEST_DIR")
    );
    println!("cargo:rerun-if-changed=discard.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
