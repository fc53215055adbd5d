//! Times `convert` in-process (no process start-up): `convert_bench IN LABELS OUT [REPEAT]`.
use std::time::Instant;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let repeat: usize = a.get(4).map(|r| r.parse().unwrap()).unwrap_or(3);
    let opts = segkit_labelme::convert::ConvertOptions {
        labels: segkit_labelme::convert::LabelSpec::File(a[2].clone().into()),
        visualization: std::env::var("VIZ").is_ok(),
        force: true,
        ..Default::default()
    };
    for _ in 0..repeat {
        let t = Instant::now();
        let s =
            segkit_labelme::convert::convert(a[1].as_ref(), a[3].as_ref(), &opts, &|| {}).unwrap();
        println!(
            "{} images in {:.3} s",
            s.converted,
            t.elapsed().as_secs_f64()
        );
    }
}
