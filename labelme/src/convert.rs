//! `segkit convert`: a folder of labelme annotations → a dataset folder (see
//! [`crate::dataset`]) with class masks pixel-identical to labelme 7.9.1 + Pillow 13.0.0.
//!
//! Each file is one rayon task. Class ids must be fixed before any mask is drawn and unknown
//! labels reported all at once: with a class list given, each task checks its file's labels
//! before writing anything, and when some are unknown everything written is removed and
//! the error lists them all; without a list, a first pass collects the labels of every file
//! (image data skipped). A bad file is reported with its path (and shape index) and the
//! others are still converted; `strict` stops at the first problem instead.
//!
//! Per image the work is kept to what the output needs: `imageData` is borrowed from the
//! file's bytes and decoded once into a per-thread buffer, the image size comes from its
//! header, masks are painted into a per-thread buffer of which only the painted rows are
//! cleared, counted ([`crate::runs`]) and encoded ([`crate::index_png`]).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::annotation::{read_labels, with_file_bytes, Annotation};
use crate::dataset::{
    self, atomic_write, atomic_write_with, DatasetError, HistoryEntry, ImageEntry, Manifest,
    MaskEncoding, IGNORE_INDEX, IMAGES_DIR, MASKS_DIR, OBJECTS_DIR, SPLITS_DIR, VIS_DIR,
};
use crate::index_png::encode_index_png;
use crate::labels::{Aliases, LabelMap, UnknownPolicy};
use crate::objects::{object_instances, write_object_mask};
use crate::rasterize::shape_spans;
use crate::runs::counts_and_instances_in_rows;
use crate::source::SourceImage;
use crate::viz::write_visualization;

/// Where the class list comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LabelSpec {
    /// Every label of every file, sorted, after `_background_`.
    #[default]
    Collect,
    /// Names in id order (`__ignore__` anywhere → 255).
    List(Vec<String>),
    /// A labelme2voc `labels.txt`.
    File(PathBuf),
}

/// How to convert.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// The class list.
    pub labels: LabelSpec,
    /// What unknown labels become.
    pub unknown: UnknownPolicy,
    /// Label spellings to merge.
    pub aliases: Aliases,
    /// P-mode (VOC palette) or L-mode masks.
    pub encoding: MaskEncoding,
    /// Also write `SegmentationObject/` (labelme's `group_id` instances).
    pub instances: bool,
    /// Write `SegmentationClassVisualization/`.
    pub visualization: bool,
    /// Stop at the first problem, warnings included.
    pub strict: bool,
    /// Allow a non-empty output folder (its dataset files are replaced).
    pub force: bool,
    /// The command line, for the manifest's history.
    pub command: String,
}

/// A problem with one annotation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The annotation file.
    pub file: PathBuf,
    /// Index of the shape in the file, when one shape is at fault.
    pub shape: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shape {
            Some(i) => write!(f, "{}: shape {i}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct ConvertSummary {
    /// The dataset folder.
    pub out: PathBuf,
    /// Annotations converted.
    pub converted: usize,
    /// Class names in id order.
    pub classes: Vec<String>,
    /// Files that could not be converted (the rest were).
    pub errors: Vec<Problem>,
    /// Shapes skipped in converted files.
    pub warnings: Vec<Problem>,
}

/// Why a conversion could not run (per-file problems are in [`ConvertSummary::errors`]).
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The arguments do not fit the folders (output not empty, no annotations, bad labels).
    #[error("{0}")]
    Usage(String),
    /// Labels outside the class list, each with the files that use them.
    #[error("{0}")]
    UnknownLabels(String),
    /// `strict`: the first problem.
    #[error("{0} (--strict stops at the first problem)")]
    Strict(Problem),
    /// Writing the dataset failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// Called once per finished annotation, from worker threads (drives a progress bar).
pub type Tick<'a> = &'a (dyn Fn() + Sync);

/// Convert the labelme annotations under `input` (a folder, searched recursively, or one
/// JSON file) into a dataset folder `out`.
pub fn convert(
    input: &Path,
    out: &Path,
    opts: &ConvertOptions,
    tick: Tick<'_>,
) -> Result<ConvertSummary, ConvertError> {
    let files = find_annotations(input, out)?;
    if files.is_empty() {
        return Err(ConvertError::Usage(format!(
            "no labelme .json files in {}",
            input.display()
        )));
    }
    prepare_output(input, out, opts.force)?;

    let mut errors: Vec<Problem> = Vec::new();
    let fail = |errors: &mut Vec<Problem>, p: Problem| -> Result<(), ConvertError> {
        if opts.strict {
            return Err(ConvertError::Strict(p));
        }
        errors.push(p);
        Ok(())
    };

    // Stems: the path under `input` without extension; nested folders joined with '_'.
    let mut jobs: Vec<Job> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for f in files {
        let rel = f.strip_prefix(input).unwrap_or(&f).to_path_buf();
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(f.file_name().unwrap_or_default())
        } else {
            rel
        };
        let source = rel.to_string_lossy().replace('\\', "/");
        let stem = source
            .strip_suffix(".json")
            .or_else(|| source.strip_suffix(".JSON"))
            .unwrap_or(&source);
        let stem = stem.replace('/', "_");
        if let Some(first) = seen.get(&stem) {
            let msg = format!("stem {stem:?} is already used by {}", first.display());
            fail(
                &mut errors,
                Problem {
                    file: f.clone(),
                    shape: None,
                    message: msg,
                },
            )?;
            continue;
        }
        seen.insert(stem.clone(), f.clone());
        jobs.push((f, stem, source));
    }

    // With a class list given, one pass: each file's labels are checked before anything of
    // it is written, and if any are unknown, everything written is taken back at the end
    // (the error lists them all). Reading every file twice was a fifth of a conversion.
    // Without a list, a first pass collects the labels so that ids are fixed before drawing.
    let labels = match &opts.labels {
        LabelSpec::Collect => None,
        LabelSpec::List(list) => {
            Some(LabelMap::from_list(list, opts.unknown).map_err(ConvertError::Usage)?)
        }
        LabelSpec::File(path) => {
            Some(LabelMap::from_file(path, opts.unknown).map_err(ConvertError::Usage)?)
        }
    };
    let (labels, jobs) = match labels {
        Some(labels) => (labels, jobs),
        None => {
            let found = collect_labels(jobs, opts, &mut errors)?;
            (
                LabelMap::collect(found.uses.iter().map(|(l, _)| l.as_str())),
                found.jobs,
            )
        }
    };

    // One task per file.
    let results: Vec<Result<Done, Problem>> = if opts.strict {
        let all: Result<Vec<_>, Problem> = jobs
            .par_iter()
            .map(|(f, stem, source)| {
                let r = convert_one(f, stem, source, &labels, opts, out);
                tick();
                match r {
                    Ok(Done::Converted(_, warnings)) if !warnings.is_empty() => {
                        Err(warnings[0].clone())
                    }
                    other => other,
                }
            })
            .collect();
        all.map_err(ConvertError::Strict)?
            .into_iter()
            .map(Ok)
            .collect()
    } else {
        jobs.par_iter()
            .map(|(f, stem, source)| {
                let r = convert_one(f, stem, source, &labels, opts, out);
                tick();
                r
            })
            .collect()
    };

    let mut uses: Vec<(String, String)> = Vec::new();
    for ((_, _, source), r) in jobs.iter().zip(&results) {
        if let Ok(Done::UnknownLabels(ls)) = r {
            uses.extend(ls.iter().map(|l| (l.clone(), source.clone())));
        }
    }
    let unknown = labels.unknown_labels(uses.iter().map(|(l, f)| (l.as_str(), f.as_str())));
    if !unknown.is_empty() {
        remove_dataset_parts(out)?;
        let mut msg = format!(
            "{} label(s) are not in the class list ({}); add them, map them with --alias FROM=TO, or pass --unknown background|ignore:",
            unknown.len(),
            labels.names().join(", ")
        );
        for (label, files) in &unknown {
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            msg.push_str(&format!("\n  {label:?} in {}", files.join(", ")));
        }
        return Err(ConvertError::UnknownLabels(msg));
    }

    let mut manifest = Manifest::new(labels.names());
    let mut warnings = Vec::new();
    for r in results {
        match r {
            Ok(Done::Converted(entry, w)) => {
                manifest.images.push(*entry);
                warnings.extend(w);
            }
            Ok(Done::UnknownLabels(_)) => unreachable!("unknown labels were reported above"),
            Err(p) => errors.push(p),
        }
    }
    manifest.images.sort_by(|a, b| a.stem.cmp(&b.stem));
    if !manifest.images.is_empty() {
        manifest
            .history
            .push(HistoryEntry::now(opts.command.clone()));
        let stems: Vec<String> = manifest.images.iter().map(|e| e.stem.clone()).collect();
        dataset::write_split(out, "trainval", &stems)?;
        dataset::write_manifest(out, &manifest)?;
    }
    Ok(ConvertSummary {
        out: out.to_path_buf(),
        converted: manifest.images.len(),
        classes: labels.names().to_vec(),
        errors,
        warnings,
    })
}

/// A job: the annotation file, its stem, its path relative to the input (the manifest's
/// `source`).
type Job = (PathBuf, String, String);

/// What the first pass found: every (label, source) used, and the jobs whose labels could
/// be read.
struct FoundLabels {
    uses: Vec<(String, String)>,
    jobs: Vec<Job>,
}

/// The first pass without a class list; files that cannot be read are reported in `errors`
/// (or stop everything with `strict`).
fn collect_labels(
    jobs: Vec<Job>,
    opts: &ConvertOptions,
    errors: &mut Vec<Problem>,
) -> Result<FoundLabels, ConvertError> {
    let label_lists: Vec<Result<Vec<String>, String>> = jobs
        .par_iter()
        .map(|(f, _, _)| {
            read_labels(f)
                .map(|ls| {
                    ls.iter()
                        .map(|l| opts.aliases.resolve(l).to_string())
                        .collect()
                })
                .map_err(|e| e.to_string())
        })
        .collect();
    let mut found = FoundLabels {
        uses: Vec::new(),
        jobs: Vec::new(),
    };
    for (job, labels) in jobs.into_iter().zip(label_lists) {
        match labels {
            Ok(ls) => {
                found
                    .uses
                    .extend(ls.into_iter().map(|l| (l, job.2.clone())));
                found.jobs.push(job);
            }
            Err(message) => {
                let p = Problem {
                    message: strip_path(&message, &job.0),
                    file: job.0,
                    shape: None,
                };
                if opts.strict {
                    return Err(ConvertError::Strict(p));
                }
                errors.push(p);
            }
        }
    }
    Ok(found)
}

/// What became of one annotation file that could be read.
enum Done {
    /// Written: its manifest entry and its skipped shapes.
    Converted(Box<ImageEntry>, Vec<Problem>),
    /// Not written: these labels (after aliases) are not in the class list.
    UnknownLabels(Vec<String>),
}

/// Remove the dataset parts `convert` writes from `out` (what a failed conversion wrote, or
/// what `--force` replaces).
fn remove_dataset_parts(out: &Path) -> Result<(), ConvertError> {
    for part in [IMAGES_DIR, MASKS_DIR, OBJECTS_DIR, VIS_DIR, SPLITS_DIR] {
        let p = out.join(part);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).map_err(|e| DatasetError::io(&p, e))?;
        }
    }
    for part in ["dataset.json", "class_names.txt"] {
        let p = out.join(part);
        if p.is_file() {
            std::fs::remove_file(&p).map_err(|e| DatasetError::io(&p, e))?;
        }
    }
    Ok(())
}

/// Errors from lower layers start with the path; the problem carries it already.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// The labelme files `convert` would read: `input` itself, or the `.json` files under it
/// (recursively, hidden folders and `out` excluded), in path order.
pub fn find_annotations(input: &Path, out: &Path) -> Result<Vec<PathBuf>, ConvertError> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    if !input.is_dir() {
        return Err(ConvertError::Usage(format!(
            "{}: no such file or folder",
            input.display()
        )));
    }
    let out_abs = out.canonicalize().ok();
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(input)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter();
    for entry in walker.filter_entry(|e| {
        let hidden = e.depth() > 0 && e.file_name().to_string_lossy().starts_with('.');
        let is_out = out_abs
            .as_ref()
            .is_some_and(|o| e.path().canonicalize().ok().as_ref() == Some(o));
        !hidden && !is_out
    }) {
        let entry = entry.map_err(|e| ConvertError::Usage(format!("{}: {e}", input.display())))?;
        let is_json = entry
            .path()
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("json"));
        if entry.file_type().is_file() && is_json {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// The output must be new or empty, unless `force`, which clears the dataset parts of it.
fn prepare_output(input: &Path, out: &Path, force: bool) -> Result<(), ConvertError> {
    let non_empty = out.is_dir()
        && std::fs::read_dir(out)
            .map_err(|e| DatasetError::io(out, e))?
            .next()
            .is_some();
    if out.exists() && !out.is_dir() {
        return Err(ConvertError::Usage(format!(
            "{}: exists and is not a folder",
            out.display()
        )));
    }
    if non_empty {
        if !force {
            return Err(ConvertError::Usage(format!(
                "{}: output folder is not empty (pass --force to replace the dataset in it)",
                out.display()
            )));
        }
        let (o, i) = (out.canonicalize().ok(), input.canonicalize().ok());
        if let (Some(o), Some(i)) = (o, i) {
            if i.starts_with(&o) {
                return Err(ConvertError::Usage(format!(
                    "{}: the output folder contains the input; refusing to replace it",
                    out.display()
                )));
            }
        }
        remove_dataset_parts(out)?;
    }
    std::fs::create_dir_all(out).map_err(|e| DatasetError::io(out, e))?;
    Ok(())
}

/// Class (and instance) masks of one annotation on a `width × height` image, with the
/// shapes that were skipped.
pub struct Rasterized {
    /// Class values, row-major.
    pub class: Vec<u8>,
    /// Instance ids (0 = none), when asked for.
    pub instance: Option<Vec<u8>>,
    /// Skipped shapes: (index, reason).
    pub skipped: Vec<(usize, String)>,
    /// Rows that any shape touched; every row outside is background (0).
    pub rows: std::ops::Range<u32>,
}

/// Paint the shapes of `ann` in order (later shapes overwrite earlier ones), as labelme's
/// `shapes_to_label`. Instances follow labelme: shapes with the same label and `group_id`
/// are one instance, a shape without `group_id` is its own; ignored pixels have no instance.
pub fn rasterize(
    ann: &Annotation,
    width: u32,
    height: u32,
    labels: &LabelMap,
    aliases: &Aliases,
    instances: bool,
) -> Result<Rasterized, (Option<usize>, String)> {
    rasterize_into(Vec::new(), ann, width, height, labels, aliases, instances)
}

/// [`rasterize`] painting into `class`, a buffer reused between images (a fresh 4-megapixel
/// buffer costs a thousand page faults, more than drawing the shapes). When `class` already
/// has the image's size it must be all zeros (see [`clear_rows`]): defects cover a small
/// band of a photo, and clearing only that band afterwards beats clearing megabytes before.
fn rasterize_into(
    mut class: Vec<u8>,
    ann: &Annotation,
    width: u32,
    height: u32,
    labels: &LabelMap,
    aliases: &Aliases,
    instances: bool,
) -> Result<Rasterized, (Option<usize>, String)> {
    let n = width as usize * height as usize;
    if class.len() != n {
        class.clear();
        class.resize(n, 0);
    }
    debug_assert!(class.iter().all(|&v| v == 0), "class buffer not cleared");
    let (mut top, mut bottom) = (height, 0u32);
    let mut instance = instances.then(|| vec![0u8; n]);
    let mut groups: Vec<(String, String)> = Vec::new();
    let mut skipped = Vec::new();
    for (i, shape) in ann.shapes.iter().enumerate() {
        let label = aliases.resolve(&shape.label);
        let value = labels
            .value(label)
            .ok_or_else(|| (Some(i), format!("label {label:?} is not in the class list")))?;
        let spans = match shape_spans(shape, width, height) {
            Ok(s) => s,
            Err(e) if e.is_skip() => {
                skipped.push((i, e.to_string()));
                continue;
            }
            Err(e) => return Err((Some(i), e.to_string())),
        };
        spans.paint(&mut class, value);
        for (y, _, _) in spans.iter() {
            top = top.min(y);
            bottom = bottom.max(y + 1);
        }
        if let Some(ins) = instance.as_mut() {
            let group = match &shape.group_id {
                Some(g) if !g.is_null() => g.to_string(),
                _ => format!("shape#{i}"),
            };
            let key = (label.to_string(), group);
            let id = match groups.iter().position(|k| *k == key) {
                Some(p) => p + 1,
                None => {
                    groups.push(key);
                    groups.len()
                }
            };
            if id >= IGNORE_INDEX as usize {
                return Err((
                    Some(i),
                    format!(
                        "more than {} instances do not fit an 8-bit object mask",
                        IGNORE_INDEX - 1
                    ),
                ));
            }
            spans.paint(ins, id as u8);
        }
    }
    if let Some(ins) = instance.as_mut() {
        for (o, &c) in ins.iter_mut().zip(&class) {
            if c == IGNORE_INDEX {
                *o = 0;
            }
        }
    }
    Ok(Rasterized {
        class,
        instance,
        skipped,
        rows: top.min(bottom)..bottom,
    })
}

/// Zero `rows` of a row-major mask `width` wide (undoes what [`rasterize_into`] painted).
fn clear_rows(buf: &mut [u8], width: u32, rows: std::ops::Range<u32>) {
    let w = width as usize;
    buf[rows.start as usize * w..rows.end as usize * w].fill(0);
}

fn convert_one(
    file: &Path,
    stem: &str,
    source: &str,
    labels: &LabelMap,
    opts: &ConvertOptions,
    out: &Path,
) -> Result<Done, Problem> {
    let problem = |shape: Option<usize>, message: String| Problem {
        file: file.to_path_buf(),
        shape,
        message,
    };
    let mut scratch = SCRATCH.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let result = with_file_bytes(file, |text| {
        convert_parsed(file, text, stem, source, labels, opts, out, &mut scratch)
    })
    .map_err(|e| problem(None, strip_path(&e.to_string(), file)))
    .and_then(|r| r);
    SCRATCH.with(|b| *b.borrow_mut() = scratch);
    result
}

/// The per-thread buffers of [`convert_one`], reused from image to image.
#[derive(Default)]
struct Scratch {
    /// The decoded source image.
    image: Vec<u8>,
    /// The class mask; all zeros between images.
    class: Vec<u8>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

#[allow(clippy::too_many_arguments)]
fn convert_parsed(
    file: &Path,
    text: &[u8],
    stem: &str,
    source: &str,
    labels: &LabelMap,
    opts: &ConvertOptions,
    out: &Path,
    scratch: &mut Scratch,
) -> Result<Done, Problem> {
    let problem = |shape: Option<usize>, message: String| Problem {
        file: file.to_path_buf(),
        shape,
        message,
    };
    let (ann, image_data) = Annotation::parse_borrowed(text, file).map_err(|e| match e {
        crate::annotation::AnnotationError::Shape { index, message, .. } => {
            problem(Some(index), message)
        }
        other => problem(None, strip_path(&other.to_string(), file)),
    })?;
    let mut unknown: Vec<String> = Vec::new();
    for shape in &ann.shapes {
        let label = opts.aliases.resolve(&shape.label);
        if labels.value(label).is_none() && !unknown.iter().any(|u| u == label) {
            unknown.push(label.to_string());
        }
    }
    if !unknown.is_empty() {
        return Ok(Done::UnknownLabels(unknown));
    }
    let src = SourceImage::load_with(
        &ann,
        image_data.as_deref(),
        file,
        std::mem::take(&mut scratch.image),
    )
    .map_err(|m| problem(None, m))?;
    let result = convert_image(file, &ann, &src, stem, source, labels, opts, out, scratch);
    scratch.image = src.bytes;
    result.map(|(entry, warnings)| Done::Converted(Box::new(entry), warnings))
}

#[allow(clippy::too_many_arguments)]
fn convert_image(
    file: &Path,
    ann: &Annotation,
    src: &SourceImage,
    stem: &str,
    source: &str,
    labels: &LabelMap,
    opts: &ConvertOptions,
    out: &Path,
    scratch: &mut Scratch,
) -> Result<(ImageEntry, Vec<Problem>), Problem> {
    let problem = |shape: Option<usize>, message: String| Problem {
        file: file.to_path_buf(),
        shape,
        message,
    };
    let (width, height) = (src.width, src.height);
    if let (Some(h), Some(w)) = (ann.image_height, ann.image_width) {
        if (w, h) != (width, height) {
            let rotated = if src.copyable() {
                ""
            } else {
                " after its EXIF orientation"
            };
            return Err(problem(
                None,
                format!(
                    "imageWidth x imageHeight is {w}x{h} but the image ({}) is {width}x{height}{rotated}",
                    src.origin
                ),
            ));
        }
    }
    let buf = std::mem::take(&mut scratch.class);
    let n = width as usize * height as usize;
    let r = match rasterize_into(
        buf,
        ann,
        width,
        height,
        labels,
        &opts.aliases,
        opts.instances,
    ) {
        Ok(r) => r,
        Err((shape, m)) => {
            // the buffer is dropped half-painted; the next image starts a fresh one
            return Err(problem(shape, m));
        }
    };
    let mut result = write_outputs(file, stem, source, opts, out, src, &r);
    let mut class = r.class;
    if class.len() == n {
        clear_rows(&mut class, width, r.rows.clone());
    }
    scratch.class = class;
    // The annotator's image flags (views, "needs review", ...) travel with the image:
    // `split --view-from-flags` reads them from the manifest.
    if let (Ok((entry, _)), Some(flags)) = (&mut result, ann.extra.get("flags")) {
        if flags.as_object().is_some_and(|f| !f.is_empty()) {
            entry.extra.insert("flags".into(), flags.clone());
        }
    }
    result
}

fn write_outputs(
    file: &Path,
    stem: &str,
    source: &str,
    opts: &ConvertOptions,
    out: &Path,
    src: &SourceImage,
    r: &Rasterized,
) -> Result<(ImageEntry, Vec<Problem>), Problem> {
    let problem = |shape: Option<usize>, message: String| Problem {
        file: file.to_path_buf(),
        shape,
        message,
    };
    let (width, height) = (src.width, src.height);
    let warnings = r
        .skipped
        .iter()
        .map(|(i, m)| problem(Some(*i), m.clone()))
        .collect();

    let io = |e: DatasetError| problem(None, e.to_string());
    let image_file = format!("{IMAGES_DIR}/{stem}.{}", src.extension());
    let mut rgb = None;
    if src.copyable() {
        atomic_write(&out.join(&image_file), &src.bytes).map_err(io)?;
    } else {
        let img = src.decode_rgb().map_err(|m| problem(None, m))?;
        write_png(&out.join(&image_file), &img).map_err(io)?;
        rgb = Some(img);
    }
    let mask_png = |data: &[u8], encoding| {
        encode_index_png(width, height, data, r.rows.clone(), encoding)
            .map_err(|e| problem(None, format!("encoding its mask: {e}")))
    };
    let p = out.join(MASKS_DIR).join(format!("{stem}.png"));
    atomic_write(&p, &mask_png(&r.class, opts.encoding)?).map_err(io)?;
    if let Some(ins) = &r.instance {
        // instance ids are painted with the same spans, so within the same rows
        write_object_mask(out, stem, width, height, ins, r.rows.clone()).map_err(io)?;
    }
    if opts.visualization {
        let img = match rgb {
            Some(img) => img,
            None => src.decode_rgb().map_err(|m| problem(None, m))?,
        };
        let p = out.join(VIS_DIR).join(format!("{stem}.jpg"));
        write_visualization(&p, &img, &r.class).map_err(io)?;
    }
    let (class_pixels, mut instances) =
        counts_and_instances_in_rows(&r.class, width, height, r.rows.clone());
    if let Some(ins) = &r.instance {
        // with object masks the objects are the instances, as import-voc records them
        instances = object_instances(&r.class, ins, width, r.rows.clone()).instances;
    }
    let entry = ImageEntry {
        stem: stem.to_string(),
        file: image_file,
        width,
        height,
        views: Vec::new(),
        source: source.to_string(),
        class_pixels,
        instances,
        extra: serde_json::Map::new(),
    };
    Ok((entry, warnings))
}

fn write_png(path: &Path, img: &image::RgbImage) -> Result<(), DatasetError> {
    atomic_write_with(path, |w: &mut dyn Write| {
        img.write_with_encoder(image::codecs::png::PngEncoder::new(w))
            .map_err(std::io::Error::other)
    })
}
