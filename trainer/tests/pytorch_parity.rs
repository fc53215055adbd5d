//! unet-vgg16 against PyTorch: a random state dict and an input made in Python
//! (`bench/vgg_torch.py make-weights`, the module tree of unet-pytorch's VGG UNet), read back
//! from `.pth` (torch.save, zip and legacy format) and `.safetensors`; segkit's logits must
//! equal PyTorch's.
//! Needs SEGKIT_PYTHON (a python with torch 2.13.0; `make test` sets it).

use std::path::{Path, PathBuf};

use segkit_trainer::checkpoint;
use segkit_trainer::model::Net;
use segkit_trainer::weights;
use tch::{nn, Device};

fn python() -> Option<PathBuf> {
    match std::env::var_os("SEGKIT_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("skipped: SEGKIT_PYTHON is not set (make test sets it to the provisioned torch venv)");
            None
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/vgg_torch.py")
}

#[test]
fn unet_vgg16_logits_equal_pytorch_from_pth_and_safetensors() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(py)
        .arg(script())
        .args(["make-weights"])
        .arg(dir.path())
        .args(["--classes", "3", "--size", "64", "--seed", "3"])
        .status()
        .unwrap();
    assert!(status.success());
    let (io, _) = checkpoint::load_tensors(&dir.path().join("io.safetensors")).unwrap();
    let (x, want) = (&io["x"], &io["logits"]);
    assert_eq!(want.size(), vec![1, 3, 64, 64]);
    assert!(
        want.abs().max().double_value(&[]) > 1e-2,
        "reference logits too small to tell layers apart"
    );
    let cfg = weights::import_config("unet-vgg16", 3, None).unwrap();
    for file in ["weights.pth", "weights_legacy.pth", "weights.safetensors"] {
        let tensors = weights::read(&dir.path().join(file)).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), &cfg, None).unwrap();
        let report = weights::load_matching(&vs, &net, &tensors);
        assert_eq!(report.matched.len(), 44, "{file}: {:?}", report.lines());
        assert!(
            report.missing.is_empty()
                && report.unexpected.is_empty()
                && report.mismatched.is_empty(),
            "{file}: {:?}",
            report.lines()
        );
        let got = tch::no_grad(|| net.forward_t(x, false));
        let diff = (&got - want).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "{file}: max abs diff {diff}");
    }

    // A torchvision VGG16 state dict fills the encoder only.
    let tensors = weights::read(&dir.path().join("torchvision_vgg16.pth")).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Net::new(&vs.root(), &cfg, None).unwrap();
    let report = weights::load_matching(&vs, &net, &tensors);
    assert_eq!(report.matched.len(), 26, "{:?}", report.lines());
    assert!(report
        .matched
        .iter()
        .all(|n| n.starts_with("vgg.features.")));
    assert_eq!(
        report.unexpected,
        vec![
            "classifier.0.bias".to_string(),
            "classifier.0.weight".to_string()
        ]
    );
    assert_eq!(
        report.missing.len(),
        18,
        "8 decoder convolutions and the head"
    );
    let a = &vs.variables()["vgg.features.28.weight"];
    let b = &tensors["features.28.weight"];
    assert_eq!(a, b);
}
