//! Reports rendered from real fixture folders (JPEG images, P-mode PNG masks, JSON and TOML
//! written after the contracts), checked against numbers computed here from the same files.

mod fixture;

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine;
use fixture::*;
use segkit_reports::{compare_report, dataset_report, run_report, sweep_runs, Lang, Options};

struct Setup {
    _tmp: tempfile::TempDir,
    ds: PathBuf,
    a: PathBuf,
    b: PathBuf,
}

fn setup(classes: &[&str], n: usize, n_val: usize) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let ds = tmp.path().join("ds");
    let manifest = make_dataset(&ds, classes, n, n_val);
    let a = tmp.path().join("runs/a");
    let b = tmp.path().join("runs/b");
    make_run(&a, "../../ds", &RunSpec::a(), &manifest, n, n_val);
    make_run(&b, "../../ds", &RunSpec::b(), &manifest, n, n_val);
    Setup {
        _tmp: tmp,
        ds,
        a,
        b,
    }
}

const CLASSES: [&str; 3] = ["_background_", "scratch", "dent"];

/// Every `data:` URI in `src` attributes, decoded.
fn data_uris(html: &str) -> Vec<(String, Vec<u8>)> {
    html.split("src=\"data:")
        .skip(1)
        .map(|part| {
            let uri = &part[..part.find('"').unwrap()];
            let (mime, b64) = uri.split_once(";base64,").unwrap();
            (
                mime.to_string(),
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
        })
        .collect()
}

/// The text of the element that follows `marker` up to the next `<`.
fn text_after<'a>(html: &'a str, marker: &str) -> &'a str {
    let i = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in page"));
    let rest = &html[i + marker.len()..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    &rest[..rest.find('<').unwrap()]
}

/// What minijinja's HTML escaping makes of `s` (it escapes `/` too).
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

fn fg_dice(d1: f64) -> f64 {
    (d1 + d1 * 0.5) / 2.0
}

fn assert_self_contained(html: &str) {
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "page references a URL"
    );
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "page has a script element"
    );
    assert!(!html.contains("<link"), "page links an external resource");
}

#[test]
fn run_report_shows_the_fixture_numbers_and_images() {
    let s = setup(&CLASSES, 8, 4);
    let r = run_report(&s.a, &Options::default()).unwrap();
    let html = &r.html;
    assert_self_contained(html);
    for id in ["summary", "charts", "classes", "predictions", "dataset"] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id} missing"
        );
    }
    // the log is on screen, not on paper
    assert!(html.contains("<section id=\"log\" class=\"noprint\">"));
    // loss, metrics, per-class Dice and lr charts; no lr_find.json in this run
    assert_eq!(html.matches("<svg").count(), 4);
    for chart in ["loss", "metrics", "dice_per_class", "lr"] {
        assert!(
            html.contains(&format!("data-chart=\"{chart}\"")),
            "chart {chart} missing"
        );
    }

    // best epoch by foreground Dice, from the fixture's own values
    let spec = RunSpec::a();
    let (best_i, best) = spec
        .dice1
        .iter()
        .map(|d| fg_dice(*d))
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(
        text_after(html, "data-metric=\"dice_fg\"><div class=\"k\"").trim(),
        "foreground Dice"
    );
    assert!(
        html.contains(&format!("{:.3}", best)),
        "best fg Dice {best:.3} not shown"
    );
    assert!(
        html.contains(&format!("{} <small>/ 5", best_i + 1)),
        "best epoch not shown"
    );
    assert!(
        html.contains("12.5 s"),
        "total time (cumulative seconds, last 12.5) not shown"
    );
    // defaults.toml says lr 3e-4: run a's 1e-4 is the one changed setting, with the default beside it
    assert_eq!(
        html.matches("<tr class=\"changed\">").count(),
        2,
        "key settings and full config"
    );
    assert!(html.contains("<tr class=\"changed\"><td class=\"mono\">optim.lr</td><td class=\"mono\">0.0001</td><td class=\"mono\">0.0003</td>"));
    let b = run_report(&s.b, &Options::default()).unwrap().html;
    assert!(
        !b.contains("class=\"changed\""),
        "run b uses the default lr"
    );
    assert!(html.contains(">cpu<"), "device from log.txt not shown");

    // confusion counts on hover, computed here from the same masks
    let mut matrix = [[0u64; 3]; 3];
    for i in 4..8 {
        for (g, p) in paint(&defects(i)).iter().zip(prediction(i, spec.shift)) {
            matrix[*g as usize][p as usize] += 1;
        }
    }
    let title = format!(
        "title=\"truth scratch → predicted scratch: {} pixels",
        matrix[1][1]
    );
    assert!(html.contains(&title), "{title} missing");
    let title = format!(
        "title=\"truth dent → predicted _background_: {} pixels",
        matrix[2][0]
    );
    assert!(html.contains(&title), "{title} missing");

    // one grid row per val image, with its Dice as computed independently
    assert_eq!(html.matches("class=\"rowcap\"").count(), 4);
    for i in 4..8 {
        let d = dice_fg(&paint(&defects(i)), &prediction(i, spec.shift)).unwrap();
        let cap = text_after(
            html,
            &format!("data-stem=\"{}\"><b>{}</b> <span", stem(i), stem(i)),
        );
        assert_eq!(cap, format!("Dice {d:.3}"), "Dice of {}", stem(i));
    }
    // 5 thumbnails per row, all real images of the image's size (64×48 is under the thumb size)
    let uris = data_uris(html);
    assert_eq!(uris.len(), 4 * 5);
    for (mime, bytes) in &uris {
        let img = image::load_from_memory(bytes).unwrap_or_else(|e| panic!("{mime}: {e}"));
        assert_eq!((img.width(), img.height()), (W, H));
    }
    // the dataset section comes from the run's dataset.json: 8 images, views, history
    assert!(html.contains(&esc("segkit convert raw/ ds/")));
    assert!(html.contains(">front<") && html.contains(">side<"));
    assert!(r.notes.is_empty(), "{:?}", r.notes);
}

#[test]
fn lr_find_curve_is_drawn_when_present() {
    let s = setup(&CLASSES, 8, 4);
    let points: Vec<serde_json::Value> = (0..20)
        .map(|i| {
            let lr = 1e-6 * 10f64.powf(i as f64 / 4.0);
            serde_json::json!({"lr": lr, "loss": 1.0 + (i as f64 - 12.0).powi(2) / 50.0})
        })
        .collect();
    fs::write(
        s.a.join("lr_find.json"),
        serde_json::json!({"points": points, "suggested_lr": 3e-4}).to_string(),
    )
    .unwrap();
    let html = run_report(&s.a, &Options::default()).unwrap().html;
    assert!(html.contains("data-chart=\"lr_find\""));
    assert_eq!(html.matches("<svg").count(), 5);
    assert!(html.contains("suggested lr: 3.0e-4"));
    // an lr_find.json with no points is said, not fatal
    fs::write(s.a.join("lr_find.json"), "{\"lr\": []}").unwrap();
    let r = run_report(&s.a, &Options::default()).unwrap();
    assert!(
        r.notes.iter().any(|n| n.contains("lr_find.json")),
        "{:?}",
        r.notes
    );
    assert_eq!(r.html.matches("<svg").count(), 4);
}

#[test]
fn thumbnails_are_downscaled_and_keep_small_defects() {
    let s = setup(&CLASSES, 8, 4);
    let opts = Options {
        thumb_px: 32,
        ..Options::default()
    };
    let r = run_report(&s.a, &opts).unwrap();
    let uris = data_uris(&r.html);
    assert_eq!(uris.len(), 20);
    for (_, bytes) in &uris {
        let img = image::load_from_memory(bytes).unwrap();
        assert_eq!((img.width(), img.height()), (32, 24));
    }
    // the ground truth of img04 (second column of the first row) still shows class 1's colour
    let gt = image::load_from_memory(&uris[1].1).unwrap().to_rgb8();
    assert!(
        gt.pixels().any(|p| p.0 == [128, 0, 0]),
        "scratch vanished from the thumbnail"
    );
}

#[test]
fn many_images_show_best_and_worst() {
    let s = setup(&CLASSES, 30, 20);
    let opts = Options {
        grid_all_up_to: 12,
        best_worst_k: 6,
        ..Options::default()
    };
    let r = run_report(&s.a, &opts).unwrap();
    let html = &r.html;
    assert!(html.contains("data-grid=\"worst\"") && html.contains("data-grid=\"best\""));
    assert_eq!(html.matches("class=\"rowcap\"").count(), 12);
    assert_eq!(data_uris(html).len(), 60);
    let dice_of = |section: &str| -> Vec<f64> {
        let start = html.find(&format!("data-grid=\"{section}\"")).unwrap();
        let part = &html[start..];
        let end = part[1..].find("data-grid=").map_or(part.len(), |e| e + 1);
        part[..end]
            .split("\">Dice ")
            .skip(1)
            .map(|x| x[..x.find('<').unwrap()].parse().unwrap())
            .collect()
    };
    let (worst, best) = (dice_of("worst"), dice_of("best"));
    assert_eq!((worst.len(), best.len()), (6, 6));
    assert!(
        worst.iter().cloned().fold(f64::MIN, f64::max)
            <= best.iter().cloned().fold(f64::MAX, f64::min)
    );
}

#[test]
fn missing_optional_files_are_said_not_fatal() {
    let s = setup(&CLASSES, 8, 4);
    fs::remove_file(s.a.join("confusion.json")).unwrap();
    fs::remove_file(s.a.join("log.txt")).unwrap();
    fs::remove_dir_all(s.a.join("predictions")).unwrap();
    // a truncated line and a line with only a train loss
    let mut m = fs::read_to_string(s.a.join("metrics.jsonl")).unwrap();
    m.push_str("{\"epoch\": 6, \"train_lo\n{\"epoch\": 7, \"train_loss\": 0.1}\n");
    fs::write(s.a.join("metrics.jsonl"), m).unwrap();
    let r = run_report(&s.a, &Options::default()).unwrap();
    let notes = r.notes.join("\n");
    for what in ["confusion.json", "log.txt", "predictions/", "line 6"] {
        assert!(notes.contains(what), "no note about {what}: {notes}");
        assert!(
            r.html.contains(&esc(what)),
            "page does not say {what} is missing"
        );
    }
    assert!(!r.html.contains("data-grid="));
    assert!(r.html.contains("data-chart=\"loss\""));
}

#[test]
fn a_run_whose_dataset_moved_still_renders() {
    let s = setup(&CLASSES, 8, 4);
    fs::rename(&s.ds, s.ds.with_file_name("moved")).unwrap();
    let r = run_report(&s.a, &Options::default()).unwrap();
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("dataset folder not available")),
        "{:?}",
        r.notes
    );
    // the run's own dataset.json copy still gives classes and the dataset section
    assert!(r.html.contains(&esc("segkit convert raw/ ds/")));
    assert!(r.html.contains("title=\"truth scratch → predicted scratch"));
}

#[test]
fn bad_prediction_is_skipped_with_its_path() {
    let s = setup(&CLASSES, 8, 4);
    segkit_labelme::dataset::write_index_png(
        &s.a.join("predictions/img05.png"),
        10,
        10,
        &[0; 100],
        segkit_labelme::dataset::MaskEncoding::Palette,
    )
    .unwrap();
    let r = run_report(&s.a, &Options::default()).unwrap();
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("img05.png") && n.contains("10×10")),
        "{:?}",
        r.notes
    );
    assert_eq!(r.html.matches("class=\"rowcap\"").count(), 3);
}

#[test]
fn user_strings_render_as_text() {
    let evil = "<script>alert(1)</script>";
    let s = setup(&["_background_", evil, "划痕 dent"], 8, 4);
    let cfg = fs::read_to_string(s.a.join("config.toml")).unwrap();
    fs::write(
        s.a.join("config.toml"),
        cfg.replace("\"unet\"", "\"unet</td><b onmouseover=x>\""),
    )
    .unwrap();
    for html in [
        run_report(&s.a, &Options::default()).unwrap().html,
        dataset_report(&s.ds, &Options::default()).unwrap().html,
        compare_report(&[s.a.clone(), s.b.clone()], &Options::default())
            .unwrap()
            .html,
    ] {
        assert_self_contained(&html);
        assert!(!html.contains(evil));
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;"),
            "escaped class name missing"
        );
        assert!(html.contains("划痕 dent"));
        assert!(!html.contains("<b onmouseover"));
    }
}

#[test]
fn chinese_page() {
    let s = setup(&CLASSES, 8, 4);
    let opts = Options {
        lang: Lang::Zh,
        ..Options::default()
    };
    let html = run_report(&s.a, &opts).unwrap().html;
    assert!(html.contains("<html lang=\"zh-CN\">"));
    assert!(html.contains("训练报告") && html.contains("混淆矩阵"));
    let html = dataset_report(&s.ds, &opts).unwrap().html;
    assert!(html.contains("数据集报告"));
}

#[test]
fn same_input_same_bytes() {
    let s = setup(&CLASSES, 8, 4);
    let a = run_report(&s.a, &Options::default()).unwrap().html;
    let b = run_report(&s.a, &Options::default()).unwrap().html;
    assert!(a == b, "run report is not deterministic");
}

#[test]
fn compare_shows_differences_and_highlights_the_best() {
    let s = setup(&CLASSES, 8, 4);
    let r = compare_report(&[s.a.clone(), s.b.clone()], &Options::default()).unwrap();
    let html = &r.html;
    assert_self_contained(html);
    // only the differing settings are columns
    let runs_table = &html[html.find("<table class=\"runs\">").unwrap()..];
    let runs_table = &runs_table[..runs_table.find("</table>").unwrap()];
    assert!(runs_table.contains(">loss<") && runs_table.contains(">optim.lr<"));
    for same in [">seed<", ">model.name<", ">dataset<", ">epochs<"] {
        assert!(
            !runs_table.contains(same),
            "{same} does not differ but is shown"
        );
    }
    // runs named by their settings
    assert!(
        html.contains("loss=ce+dice lr=0.0003"),
        "run name from settings missing"
    );
    // fg Dice: b is better, only b highlighted, with b's value
    let best_cells: Vec<&str> = html
        .split("<td class=\"n best\" data-metric=\"dice_fg\">")
        .skip(1)
        .collect();
    assert_eq!(best_cells.len(), 1);
    let b_best = RunSpec::b()
        .dice1
        .iter()
        .map(|d| fg_dice(*d))
        .fold(f64::MIN, f64::max);
    assert!(best_cells[0].starts_with(&format!("{b_best:.3}<")));
    // false defects per image: lower is better, b again
    let fd: Vec<&str> = html
        .split("<td class=\"n best\" data-metric=\"false_defects_per_image\">")
        .skip(1)
        .collect();
    assert_eq!(fd.len(), 1);
    assert!(fd[0].starts_with(&format!("{:.2}<", 1.0 - 0.83)));
    // min val loss ties (both runs reach the same): nothing highlighted in that column
    assert!(!html.contains("<td class=\"n best\" data-metric=\"val_loss\">"));
    // overlaid curves and per-class bars
    assert_eq!(html.matches("<svg").count(), 5);
    // the same val images per run: image, truth, then one column per run
    assert!(html.contains("data-grid=\"side\""));
    assert_eq!(html.matches("class=\"rowcap\"").count(), 4);
    assert_eq!(data_uris(html).len(), 4 * 4);
}

#[test]
fn compare_from_a_sweep_index() {
    let s = setup(&CLASSES, 8, 4);
    let index = s.a.parent().unwrap().join("sweep.json");
    fs::write(&index, r#"{"runs": [{"dir": "a"}, {"dir": "b"}]}"#).unwrap();
    let runs = sweep_runs(&index).unwrap();
    assert_eq!(runs, vec![s.a.clone(), s.b.clone()]);
    let html = compare_report(&runs, &Options::default()).unwrap().html;
    assert!(html.contains("loss=ce lr=0.0001"));
}

#[test]
fn compare_refuses_a_folder_that_is_not_a_run() {
    let s = setup(&CLASSES, 8, 4);
    let err = compare_report(&[s.a.clone(), s.ds.clone()], &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a run folder") && err.contains("ds"),
        "{err}"
    );
}

#[test]
fn dataset_report_counts_classes_sizes_and_samples() {
    let s = setup(&CLASSES, 4, 2);
    let r = dataset_report(&s.ds, &Options::default()).unwrap();
    let html = &r.html;
    assert_self_contained(html);
    for id in ["summary", "classes", "sizes", "views", "samples", "history"] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id} missing"
        );
    }
    // dent (class 2) is on images 0 and 3 only: the few-instances warning
    assert!(html.contains("id=\"warnings\""));
    let warnings = &html[html.find("id=\"warnings\"").unwrap()..];
    let warnings = &warnings[..warnings.find("</div>").unwrap()];
    assert!(
        warnings.contains("&quot;dent&quot; has 2 instance(s)"),
        "{warnings}"
    );
    assert!(
        warnings.contains("Fix: <code class=\"mono\">segkit remap"),
        "{warnings}"
    );
    // suggested class weights from segkit stats, one row per class
    assert_eq!(
        html[html.find("<table class=\"weights\">").unwrap()..]
            .split("</table>")
            .next()
            .unwrap()
            .matches("<tr>")
            .count(),
        4
    );
    // image sizes: all four are 64 × 48
    assert!(html.contains("<td>64 × 48</td><td class=\"n\">4</td>"));
    // instance counts: scratch has one per image plus one on image 1
    let scratch: usize = (0..4)
        .map(|i| defects(i).iter().filter(|d| d.0 == 1).count())
        .sum();
    let row = &html[html
        .find("<td><span class=\"sw\" style=\"background:#800000\"></span>scratch</td>")
        .unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains(&format!("<td class=\"n\">{scratch}</td>")),
        "{row}"
    );
    // sizes per view (the fixture tags even images front, odd ones side): one scratch row
    // per view under the class row, whose counts add up to the class's
    let per_view = |view: &str| -> usize {
        let row = &html[html
            .find(&format!("<tr class=\"view\"><td>scratch · {view}</td>"))
            .unwrap_or_else(|| panic!("no scratch row for view {view}"))..];
        let row = &row[..row.find("</tr>").unwrap()];
        row.split("<td class=\"n\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let front: usize = (0..4)
        .step_by(2)
        .map(|i| defects(i).iter().filter(|d| d.0 == 1).count())
        .sum();
    assert_eq!(per_view("front"), front);
    assert_eq!(per_view("front") + per_view("side"), scratch);
    // samples: scratch on all 4 images, dent on 2; every one a real JPEG
    assert_eq!(html.matches("<figure><img").count(), 4 + 2);
    for (mime, bytes) in data_uris(html) {
        assert_eq!(mime, "image/jpeg");
        image::load_from_memory(&bytes).unwrap();
    }
    assert_eq!(html.matches("<svg").count(), 1);
}

#[test]
fn report_is_written_atomically_where_asked() {
    let s = setup(&CLASSES, 8, 4);
    let r = run_report(&s.a, &Options::default()).unwrap();
    let out = s.a.join("sub/report.html");
    r.write(&out).unwrap();
    assert_eq!(fs::read_to_string(&out).unwrap(), r.html);
    let names: Vec<_> = fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temp files left: {names:?}");
}

#[test]
fn inputs_are_not_modified() {
    let s = setup(&CLASSES, 8, 4);
    let before = snapshot(s.a.parent().unwrap().parent().unwrap());
    run_report(&s.a, &Options::default()).unwrap();
    dataset_report(&s.ds, &Options::default()).unwrap();
    compare_report(&[s.a.clone(), s.b.clone()], &Options::default()).unwrap();
    assert_eq!(before, snapshot(s.a.parent().unwrap().parent().unwrap()));
}

fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}
