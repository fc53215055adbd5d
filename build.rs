//! The segkit binary links libtorch through the trainer when the `train` feature is on:
//! emit the rpath so it runs from any shell without LD_LIBRARY_PATH (see trainer/build_rpath.rs).
include!("trainer/build_rpath.rs");

fn main() {
    println!("cargo:rerun-if-changed=trainer/build_rpath.rs");
    if std::env::var_os("CARGO_FEATURE_TRAIN").is_some() {
        emit_libtorch_rpath();
    }
}
