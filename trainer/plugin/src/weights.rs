//! `segkit import-weights`: a PyTorch state dict into a segkit checkpoint.

use std::path::PathBuf;

use anyhow::{bail, Context};
use segkit_trainer::weights;

/// Architectures a state dict can be imported for.
#[derive(clap::ValueEnum, Clone, Copy)]
pub enum ArchArg {
    /// UNet with a VGG16 encoder (unet-pytorch's `Unet(backbone="vgg")`, torchvision VGG16).
    #[value(name = "unet-vgg16")]
    UnetVgg16,
    /// segkit's UNet with default layout (base 32, depth 4, GroupNorm, bilinear).
    Unet,
}

/// Import a PyTorch state dict (.pth from torch.save(model.state_dict()), or .safetensors)
/// as a segkit checkpoint, reporting matched / missing / unexpected / shape-mismatched keys.
///
/// Tensors are matched by name (a `module.` prefix from DataParallel is dropped;
/// torchvision's VGG16 `features.*` are read as the encoder `vgg.features.*`). Tensors that do
/// not fit keep a fresh initialization (seed 0): a head for another class count is expected
/// and said so. The checkpoint works with `segkit predict`/`eval` (when the classes fit) and
/// as `model.pretrained` for `segkit train`. Nothing is downloaded; no Python is needed.
/// unet-vgg16 checkpoints take pixels in [0, 1] (model.normalize = "none"), as unet-pytorch
/// feeds its VGG.
///
/// Example:
///   segkit import-weights --arch unet-vgg16 --classes 21 unet_vgg_voc.pth voc.safetensors
///   segkit import-weights --arch unet-vgg16 --classes 2 vgg16-397923af.pth vgg-encoder.safetensors
///   segkit train data/parts-voc --out runs/vgg --set model.arch=unet-vgg16 \
///       --set model.pretrained=voc.safetensors --freeze-encoder-epochs 5
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// Architecture the weights are for.
    #[arg(long, value_enum)]
    pub arch: ArchArg,
    /// Classes of the checkpoint's head, background included.
    #[arg(long)]
    pub classes: usize,
    /// Class names, comma-separated (default: _background_, class1, class2, …).
    #[arg(long, value_delimiter = ',')]
    pub class_names: Option<Vec<String>>,
    /// The state dict: .pth/.pt (torch.save, zip or pre-1.6 legacy format) or .safetensors.
    pub input: PathBuf,
    /// The segkit checkpoint to write (.safetensors).
    pub output: PathBuf,
}

/// Run `segkit import-weights`.
pub fn run(a: ImportArgs) -> anyhow::Result<()> {
    if a.output.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        bail!(
            "{}: the output is a safetensors checkpoint; name it *.safetensors",
            a.output.display()
        );
    }
    let arch = match a.arch {
        ArchArg::UnetVgg16 => "unet-vgg16",
        ArchArg::Unet => "unet",
    };
    let cfg = weights::import_config(arch, a.classes, a.class_names.clone())?;
    let report = weights::import(&a.input, &a.output, &cfg)
        .with_context(|| format!("importing {}", a.input.display()))?;
    for line in report.lines() {
        println!("{line}");
    }
    println!(
        "wrote {} ({arch}, {} classes; {} of {} tensors from {})",
        a.output.display(),
        a.classes,
        report.matched.len(),
        report.matched.len() + report.missing.len() + report.mismatched.len(),
        a.input.display()
    );
    Ok(())
}
