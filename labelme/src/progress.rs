//! Progress bars on stderr, the same look for every subcommand of the `segkit` binary and of
//! the trainer plugin (which cannot share the binary's modules); hidden when stderr is not a
//! terminal or `NO_COLOR`/`CI` asks for quiet output, so logs stay readable.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps labelled `what` (e.g. "converting").
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    if std::env::var_os("CI").is_some() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb
}
