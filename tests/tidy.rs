//! Checks on the codebase itself (rust-analyzer's "tidy" idea): every Rust source file says
//! what it is for in a `//!` header, no test is switched off with an ignore attribute, every library
//! crate denies missing docs, and every subcommand's help carries an example.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            if !p.ends_with("target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in ["src", "labelme", "augment", "trainer", "reports", "tests"] {
        rust_files(&root.join(d), &mut files);
    }
    files
}

#[test]
fn every_source_file_has_a_purpose_header() {
    let missing: Vec<_> = sources()
        .into_iter()
        .filter(|p| !p.ends_with("build_rpath.rs")) // included into build scripts, `//` only
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! header: {missing:#?}"
    );
}

#[test]
fn no_test_is_ignored() {
    let marker = ["#[", "ignore", "]"].concat();
    let offenders: Vec<_> = sources()
        .into_iter()
        .filter(|p| fs::read_to_string(p).unwrap().contains(&marker))
        .collect();
    assert!(offenders.is_empty(), "tests switched off: {offenders:#?}");
}

#[test]
fn library_crates_deny_missing_docs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for c in ["labelme", "augment", "trainer", "trainer/plugin", "reports"] {
        let lib = fs::read_to_string(root.join(c).join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("#![deny(missing_docs)]"),
            "{c}/src/lib.rs must deny missing docs"
        );
        assert!(
            lib.contains("# Example"),
            "{c}/src/lib.rs needs an `# Example` in its crate docs"
        );
    }
}

#[test]
fn every_subcommand_help_has_an_example() {
    let out = common::segkit().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .expect("help lists commands")
        .lines()
        .skip(1) // the rest of the "Commands:" line
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ")) // not wrapped description lines
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 5, "{commands:?}");
    for c in commands {
        let out = common::segkit()
            .args([c.as_str(), "--help"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("Example"),
            "`segkit {c} --help` has no example:\n{text}"
        );
    }
}
