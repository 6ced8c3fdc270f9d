//! Links the launcher as a static executable without libc or start files.
fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        // A non-PIE: nothing would apply a PIE's relocations without a loader.
        "-no-pie",
        // One read-execute segment instead of several page-aligned ones:
        // smaller file, fewer mappings at every start.
        "-Wl,-z,noseparate-code",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        "-Wl,-z,norelro",
        "-Wl,-z,noexecstack",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
