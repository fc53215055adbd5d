//! Writes the test fixture (a small dataset and two hand-written run folders) into a folder
//! and renders the three report types from it, for looking at them in a browser.
//!
//! Usage: `cargo run --release -p segkit-reports --example fixture_reports -- OUT_DIR [N VAL] [zh]`

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use std::path::PathBuf;

use segkit_reports::{compare_report, dataset_report, run_report, Lang, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(
        args.first()
            .ok_or("usage: fixture_reports OUT_DIR [N VAL] [zh]")?,
    );
    let n: usize = args.get(1).map_or(Ok(8), |s| s.parse())?;
    let n_val: usize = args.get(2).map_or(Ok(4), |s| s.parse())?;
    let lang = if args.iter().any(|a| a == "zh") {
        Lang::Zh
    } else {
        Lang::En
    };
    let ds = out.join("ds");
    let manifest = fixture::make_dataset(&ds, &["_background_", "scratch", "凹坑 dent"], n, n_val);
    let (a, b) = (out.join("runs/a"), out.join("runs/b"));
    fixture::make_run(&a, "../../ds", &fixture::RunSpec::a(), &manifest, n, n_val);
    fixture::make_run(&b, "../../ds", &fixture::RunSpec::b(), &manifest, n, n_val);
    let opts = Options {
        lang,
        ..Options::default()
    };
    run_report(&a, &opts)?.write(&out.join("run.html"))?;
    dataset_report(&ds, &opts)?.write(&out.join("dataset.html"))?;
    compare_report(&[a, b], &opts)?.write(&out.join("compare.html"))?;
    println!("wrote {}/{{run,dataset,compare}}.html", out.display());
    Ok(())
}
