//! The plugin links libtorch: emit its rpath so the binary can open the plugin from any shell
//! without LD_LIBRARY_PATH (see ../build_rpath.rs).
include!("../build_rpath.rs");

fn main() {
    println!("cargo:rerun-if-changed=../build_rpath.rs");
    emit_libtorch_rpath();
}
