//! End to end: `segkit report` and `segkit compare` on fixture folders written after the
//! contracts, and each page rendered by headless Chromium, whose DOM must hold the charts,
//! tables and decoded thumbnails, with no console error.

mod common;
#[path = "../reports/tests/fixture/mod.rs"]
mod fixture;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_err, run_ok};

fn setup(n: usize, n_val: usize) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let m = fixture::make_dataset(&ds, &["_background_", "scratch", "凹坑"], n, n_val);
    fixture::make_run(
        &tmp.path().join("runs/a"),
        "../../ds",
        &fixture::RunSpec::a(),
        &m,
        n,
        n_val,
    );
    fixture::make_run(
        &tmp.path().join("runs/b"),
        "../../ds",
        &fixture::RunSpec::b(),
        &m,
        n,
        n_val,
    );
    tmp
}

#[test]
fn report_and_compare_write_pages_where_asked() {
    let tmp = setup(8, 4);
    let d = tmp.path();
    let out = run_ok(d, &["report", "runs/a"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("wrote run report") && stdout.contains("report.html"),
        "{stdout}"
    );
    let html = fs::read_to_string(d.join("runs/a/report.html")).unwrap();
    assert!(html.contains("<section id=\"predictions\">"));

    run_ok(
        d,
        &["report", "ds", "--out", "pages/ds.html", "--lang", "zh"],
    );
    let html = fs::read_to_string(d.join("pages/ds.html")).unwrap();
    assert!(html.contains("数据集报告") && html.contains("凹坑"));

    run_ok(d, &["compare", "runs/a", "runs/b", "--out", "c.html"]);
    assert!(fs::read_to_string(d.join("c.html"))
        .unwrap()
        .contains("loss=ce+dice"));

    // a sweep folder: every run folder inside it
    let out = run_ok(d, &["compare", "--sweep", "runs", "--out", "sweep.html"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("comparison of 2 runs"));
}

#[test]
fn bad_targets_are_named() {
    let tmp = setup(4, 2);
    let d = tmp.path();
    let err = run_err(d, &["report", "nowhere"]);
    assert!(err.contains("nowhere"), "{err}");
    fs::create_dir_all(d.join("empty")).unwrap();
    let err = run_err(d, &["report", "empty"]);
    assert!(
        err.contains("empty") && err.contains("neither a run folder"),
        "{err}"
    );
    let err = run_err(d, &["compare", "--out", "x.html"]);
    assert!(err.contains("no runs to compare"), "{err}");
    let err = run_err(d, &["compare", "runs/a", "ds"]);
    assert!(err.contains("not a run folder"), "{err}");
    let err = run_err(d, &["report", "runs/a", "--lang", "fr"]);
    assert!(err.contains("fr"), "{err}");
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A page that loads `report` in a frame, then writes what the browser made of it (counts
/// of charts, tables, grid rows, decoded images and broken images) into its own DOM.
fn probe_page(report: &Path) -> String {
    format!(
        r#"<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="f" src="{}" style="width:1200px;height:800px"></iframe>
<script>
document.getElementById('f').addEventListener('load', () => {{
  const doc = document.getElementById('f').contentDocument;
  const imgs = [...doc.querySelectorAll('img')];
  const r = {{
    charts: doc.querySelectorAll('svg.chart').length,
    chart_lines: doc.querySelectorAll('svg.chart polyline, svg.chart path').length,
    tables: doc.querySelectorAll('table').length,
    rows: doc.querySelectorAll('.rowcap').length,
    samples: doc.querySelectorAll('.samples figure').length,
    imgs: imgs.length,
    decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    best: doc.querySelectorAll('td.best').length,
    scripts: doc.querySelectorAll('script').length,
    title: doc.title,
  }};
  document.getElementById('result').textContent = 'RESULT' + JSON.stringify(r) + 'END';
}});
</script></body></html>"#,
        report.file_name().unwrap().to_string_lossy()
    )
}

fn browse(browser: &Path, report: &Path) -> serde_json::Value {
    let probe = report.with_extension("probe.html");
    fs::write(&probe, probe_page(report)).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", probe.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        let bad = line.contains("CONSOLE")
            || line.contains("Uncaught")
            || line.contains("Failed to load");
        assert!(
            !bad,
            "browser console error on {}: {line}",
            report.display()
        );
    }
    let start = dom
        .find("RESULT")
        .unwrap_or_else(|| panic!("probe did not run:\n{dom}\n{stderr}"));
    let end = start + dom[start..].find("END").unwrap();
    serde_json::from_str(&dom[start + 6..end]).unwrap()
}

#[test]
fn pages_render_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("SEGKIT_REQUIRE_BROWSER").is_none(),
            "SEGKIT_REQUIRE_BROWSER is set but no chromium is on PATH"
        );
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let tmp = setup(8, 4);
    let d = tmp.path();
    run_ok(d, &["report", "runs/a", "--out", "run.html"]);
    run_ok(d, &["report", "ds", "--out", "dataset.html"]);
    run_ok(d, &["compare", "runs/a", "runs/b", "--out", "compare.html"]);

    let run = browse(&browser, &d.join("run.html"));
    assert_eq!(run["charts"], 4, "{run}");
    assert!(run["chart_lines"].as_u64().unwrap() >= 4, "{run}");
    assert_eq!(run["rows"], 4, "{run}");
    assert_eq!(run["imgs"], 20, "{run}");
    assert_eq!(run["decoded"], 20, "thumbnails that do not decode: {run}");
    assert!(run["tables"].as_u64().unwrap() >= 4, "{run}");
    assert_eq!(run["scripts"], 0);

    let ds = browse(&browser, &d.join("dataset.html"));
    assert_eq!(ds["charts"], 1, "{ds}");
    assert_eq!(ds["samples"], 4 + 3, "{ds}");
    assert_eq!(ds["decoded"], ds["imgs"], "{ds}");

    let cmp = browse(&browser, &d.join("compare.html"));
    assert_eq!(cmp["charts"], 5, "{cmp}");
    assert_eq!(cmp["rows"], 4, "{cmp}");
    assert_eq!(cmp["decoded"], 16, "{cmp}");
    assert!(cmp["best"].as_u64().unwrap() >= 2, "{cmp}");
}
