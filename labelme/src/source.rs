//! The image behind an annotation: from `imageData` (base64) or `imagePath` (relative to the
//! JSON, Windows separators normalised), probed without decoding, with the EXIF orientation
//! labelme applied before showing it to the annotator.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine;
use image::metadata::Orientation;
use image::{ImageDecoder, ImageFormat};

use crate::annotation::Annotation;

/// An annotation's image, encoded, with its size as the annotator saw it.
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// The encoded file (JPEG, PNG, BMP, TIFF).
    pub bytes: Vec<u8>,
    /// Its format, from its magic bytes.
    pub format: ImageFormat,
    /// EXIF orientation to apply.
    pub orientation: Orientation,
    /// Width after orientation.
    pub width: u32,
    /// Height after orientation.
    pub height: u32,
    /// Where it came from: the image file, or `imageData` of the JSON.
    pub origin: String,
}

impl SourceImage {
    /// Load and probe the image of `ann`, read from `json_path`. `imageData` wins over
    /// `imagePath`, as in labelme; a missing `imagePath` is also looked for beside the JSON.
    pub fn load(ann: &Annotation, json_path: &Path) -> Result<SourceImage, String> {
        let (bytes, origin) = match ann.image_data.as_deref().filter(|d| !d.is_empty()) {
            Some(data) => {
                // tolerate a data URI prefix and line breaks some tools write
                let data = match data.starts_with("data:") {
                    true => data.split_once("base64,").map(|(_, d)| d).unwrap_or(data),
                    false => data,
                };
                // line breaks some tools insert are stripped only when plain decoding fails
                let engine = base64::engine::general_purpose::STANDARD;
                let bytes = match engine.decode(data) {
                    Ok(b) => b,
                    Err(_) => {
                        let clean: Vec<u8> =
                            data.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
                        engine
                            .decode(clean)
                            .map_err(|e| format!("imageData is not valid base64: {e}"))?
                    }
                };
                (bytes, "imageData".to_string())
            }
            None => {
                let rel = ann
                    .image_path_normalized()
                    .filter(|p| !p.is_empty())
                    .ok_or("neither imageData nor imagePath is set")?;
                let path = resolve_image_path(json_path, &rel)?;
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                (bytes, path.display().to_string())
            }
        };
        let format = image::guess_format(&bytes)
            .map_err(|e| format!("{origin}: not a recognised image: {e}"))?;
        let (w, h, orientation) = {
            let mut decoder = image::ImageReader::with_format(Cursor::new(&bytes[..]), format)
                .into_decoder()
                .map_err(|e| format!("{origin}: cannot read image: {e}"))?;
            let (w, h) = decoder.dimensions();
            (
                w,
                h,
                decoder.orientation().unwrap_or(Orientation::NoTransforms),
            )
        };
        let (width, height) = if swaps_axes(orientation) {
            (h, w)
        } else {
            (w, h)
        };
        Ok(SourceImage {
            bytes,
            format,
            orientation,
            width,
            height,
            origin,
        })
    }

    /// Whether the file can be copied as is into the dataset: a JPEG or PNG with no
    /// orientation to apply.
    pub fn copyable(&self) -> bool {
        self.orientation == Orientation::NoTransforms
            && matches!(self.format, ImageFormat::Jpeg | ImageFormat::Png)
    }

    /// File extension the dataset image gets.
    pub fn extension(&self) -> &'static str {
        match (self.copyable(), self.format) {
            (true, ImageFormat::Jpeg) => "jpg",
            _ => "png",
        }
    }

    /// Decode to 8-bit RGB with the orientation applied.
    pub fn decode_rgb(&self) -> Result<image::RgbImage, String> {
        let mut img = image::load_from_memory_with_format(&self.bytes, self.format)
            .map_err(|e| format!("{}: cannot decode image: {e}", self.origin))?;
        img.apply_orientation(self.orientation);
        Ok(img.to_rgb8())
    }
}

fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// `imagePath` relative to the JSON's folder; when it is not there (annotations moved
/// between machines), the same file name beside the JSON.
fn resolve_image_path(json_path: &Path, rel: &str) -> Result<PathBuf, String> {
    let dir = json_path.parent().unwrap_or(Path::new("."));
    let direct = dir.join(rel);
    if direct.is_file() {
        return Ok(direct);
    }
    if let Some(name) = Path::new(rel).file_name() {
        let beside = dir.join(name);
        if beside.is_file() {
            return Ok(beside);
        }
    }
    Err(format!(
        "imagePath {rel:?}: no such file {} (and imageData is empty)",
        direct.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8×4 JPEG whose EXIF says "rotate 90° clockwise" (orientation 6), as phones write.
    fn rotated_jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_fn(8, 4, |x, _| image::Rgb([x as u8 * 30, 0, 0]));
        let mut jpg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpg), ImageFormat::Jpeg)
            .unwrap();
        #[rustfmt::skip]
        let app1: [u8; 36] = [
            0xFF, 0xE1, 0, 34, b'E', b'x', b'i', b'f', 0, 0,
            b'I', b'I', 0x2A, 0, 8, 0, 0, 0, // TIFF header, IFD at 8
            1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, // Orientation = 6
            0, 0, 0, 0,
        ];
        let mut out = jpg[..2].to_vec(); // SOI
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpg[2..]);
        out
    }

    fn annotation(data: &[u8]) -> Annotation {
        let b64 = base64::engine::general_purpose::STANDARD.encode(data);
        Annotation::parse(
            serde_json::json!({"shapes": [], "imageData": b64, "imagePath": "x.jpg"})
                .to_string()
                .as_bytes(),
            Path::new("a.json"),
        )
        .unwrap()
    }

    #[test]
    fn exif_orientation_is_applied() {
        let src = SourceImage::load(&annotation(&rotated_jpeg()), Path::new("a.json")).unwrap();
        assert_eq!(src.orientation, Orientation::Rotate90);
        assert_eq!((src.width, src.height), (4, 8));
        assert!(!src.copyable());
        assert_eq!(src.extension(), "png");
        let rgb = src.decode_rgb().unwrap();
        assert_eq!(rgb.dimensions(), (4, 8));
        // the first column (dark) of the original is now the top row
        assert!(rgb.get_pixel(0, 0).0[0] < 40 && rgb.get_pixel(0, 7).0[0] > 150);
    }

    #[test]
    fn plain_png_is_copied_and_missing_image_is_named() {
        let mut png = Vec::new();
        image::GrayImage::new(3, 2)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let src = SourceImage::load(&annotation(&png), Path::new("a.json")).unwrap();
        assert!(src.copyable() && src.extension() == "png" && (src.width, src.height) == (3, 2));
        let mut ann = annotation(&png);
        ann.image_data = None;
        ann.image_path = Some("..\\nowhere\\x.jpg".into());
        let err = SourceImage::load(&ann, Path::new("/tmp/a.json")).unwrap_err();
        assert!(err.contains("../nowhere/x.jpg"), "{err}");
    }
}
