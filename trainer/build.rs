//! Emits the libtorch rpath for this crate's tests and examples (see build_rpath.rs).
include!("build_rpath.rs");

fn main() {
    emit_libtorch_rpath();
}
