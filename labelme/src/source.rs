//! The image behind an annotation: from `imageData` (base64) or `imagePath` (relative to the
//! JSON, Windows separators normalised), probed without decoding, with the EXIF orientation
//! labelme applied before showing it to the annotator.

use std::io::{Cursor, Read};
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
        Self::load_with(ann, ann.image_data.as_deref(), json_path, Vec::new())
    }

    /// [`SourceImage::load`] with the annotation's `imageData` given apart (see
    /// [`Annotation::parse_borrowed`]), decoding into `buf` (cleared first): a converter
    /// hands the same buffer from image to image instead of faulting in a fresh one.
    pub fn load_with(
        ann: &Annotation,
        image_data: Option<&str>,
        json_path: &Path,
        mut buf: Vec<u8>,
    ) -> Result<SourceImage, String> {
        let origin = match image_data.filter(|d| !d.is_empty()) {
            Some(data) => {
                // tolerate a data URI prefix and line breaks some tools write
                let data = match data.starts_with("data:") {
                    true => data.split_once("base64,").map(|(_, d)| d).unwrap_or(data),
                    false => data,
                };
                // SIMD decoding first (a tenth of a conversion with the scalar decoder);
                // when it refuses, the base64 crate decides, stripping the line breaks
                // some tools insert, and says what is wrong
                let engine = base64::engine::general_purpose::STANDARD;
                if !decode_base64_simd(data.as_bytes(), &mut buf) && {
                    buf.clear();
                    engine.decode_vec(data, &mut buf).is_err()
                } {
                    buf.clear();
                    let clean: Vec<u8> =
                        data.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
                    engine
                        .decode_vec(clean, &mut buf)
                        .map_err(|e| format!("imageData is not valid base64: {e}"))?;
                }
                "imageData".to_string()
            }
            None => {
                let rel = ann
                    .image_path_normalized()
                    .filter(|p| !p.is_empty())
                    .ok_or("neither imageData nor imagePath is set")?;
                let path = resolve_image_path(json_path, &rel)?;
                buf.clear();
                std::fs::File::open(&path)
                    .and_then(|mut f| f.read_to_end(&mut buf))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                path.display().to_string()
            }
        };
        let format = image::guess_format(&buf)
            .map_err(|e| format!("{origin}: not a recognised image: {e}"))?;
        let (w, h, orientation) = match format {
            ImageFormat::Jpeg => jpeg_header(&buf),
            _ => None,
        }
        .map_or_else(|| probe(&buf, format, &origin), Ok)?;
        let (width, height) = if swaps_axes(orientation) {
            (h, w)
        } else {
            (w, h)
        };
        Ok(SourceImage {
            bytes: buf,
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
        Ok(img.into_rgb8())
    }
}

/// Format, width and height of encoded image bytes as stored (no EXIF orientation
/// applied), reading headers only.
pub fn image_size(bytes: &[u8]) -> Result<(ImageFormat, u32, u32), String> {
    let format = image::guess_format(bytes).map_err(|e| format!("not a recognised image: {e}"))?;
    if format == ImageFormat::Jpeg {
        if let Some((w, h, _)) = jpeg_header(bytes) {
            return Ok((format, w, h));
        }
    }
    let (w, h) = image::ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| format!("cannot read image: {e}"))?;
    Ok((format, w, h))
}

/// Standard base64 with padding into `buf` (replacing its content); false when it is not
/// that.
fn decode_base64_simd(data: &[u8], buf: &mut Vec<u8>) -> bool {
    let b64 = base64_simd::STANDARD;
    let Ok(n) = b64.decoded_length(data) else {
        return false;
    };
    // every byte is overwritten: only growth needs filling, not the reused part
    buf.resize(n, 0);
    let ok = b64
        .decode(data, base64_simd::Out::from_slice(&mut buf[..]))
        .map(|d| d.len() == n)
        .unwrap_or(false);
    if !ok {
        buf.clear();
    }
    ok
}

/// Size and EXIF orientation through the `image` crate's decoder (reads headers only).
fn probe(
    bytes: &[u8],
    format: ImageFormat,
    origin: &str,
) -> Result<(u32, u32, Orientation), String> {
    let mut decoder = image::ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(|e| format!("{origin}: cannot read image: {e}"))?;
    let (w, h) = decoder.dimensions();
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    Ok((w, h, orientation))
}

/// Width, height and EXIF orientation of a JPEG from its marker segments, without copying
/// or decoding anything (the `image` crate's decoder copies the whole file first, which was
/// a tenth of a conversion). As its decoder does, the last `Exif` APP1 segment before the
/// scan counts. `None` for anything unusual: the caller then asks the `image` crate, which
/// also gives the precise error.
pub fn jpeg_header(bytes: &[u8]) -> Option<(u32, u32, Orientation)> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    let mut size = None;
    let mut exif: Option<&[u8]> = None;
    loop {
        // a marker: 0xFF (fill bytes allowed), then its code
        if *bytes.get(i)? != 0xFF {
            return None;
        }
        while *bytes.get(i)? == 0xFF {
            i += 1;
        }
        let marker = *bytes.get(i)?;
        i += 1;
        match marker {
            // standalone markers carry no length
            0x01 | 0xD0..=0xD7 => continue,
            0xD8 | 0xD9 | 0x00 => return None,
            _ => {}
        }
        let len = u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]) as usize;
        if len < 2 {
            return None;
        }
        let body = bytes.get(i + 2..i + len)?;
        match marker {
            // SOF0..SOF2 (baseline, extended, progressive: what the decoder supports; the
            // others go to the fallback, which reports them)
            0xC0..=0xC2 => {
                let h = u16::from_be_bytes([*body.get(1)?, *body.get(2)?]) as u32;
                let w = u16::from_be_bytes([*body.get(3)?, *body.get(4)?]) as u32;
                size = Some((w, h));
            }
            0xC3..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => return None,
            0xE1 if body.len() > 6 && body.starts_with(b"Exif\0\0") => exif = Some(&body[6..]),
            0xDA => break,
            _ => {}
        }
        i += len;
    }
    let (w, h) = size.filter(|&(w, h)| w > 0 && h > 0)?;
    let orientation = exif
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    Some((w, h, orientation))
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

    /// The header reader agrees with the `image` crate on every JPEG of the reference data
    /// (photos, labelme outputs) and on a phone-style rotated one.
    #[test]
    fn jpeg_header_matches_the_image_crate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
        let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(&root)
            .into_iter()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().to_lowercase();
                n.ends_with(".jpg") || n.ends_with(".jpeg")
            })
            .map(|e| {
                (
                    e.path().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        assert!(
            files.len() >= 10,
            "reference JPEGs missing under {}",
            root.display()
        );
        files.push(("rotated".into(), rotated_jpeg()));
        for (name, bytes) in &files {
            let fast = jpeg_header(bytes).unwrap_or_else(|| panic!("{name}: not read"));
            assert_eq!(Ok(fast), probe(bytes, ImageFormat::Jpeg, name), "{name}");
        }
        // truncated or foreign bytes: no answer, so the caller asks the image crate
        let (_, b) = &files[0];
        assert_eq!(jpeg_header(&b[..20]), None);
        assert_eq!(jpeg_header(b"GIF89a"), None);
    }

    /// imageData as labelme writes it, with line breaks, and with a data-URI prefix all give
    /// the file's bytes; broken base64 is named as such.
    #[test]
    fn image_data_variants_decode_to_the_same_bytes() {
        let jpg = rotated_jpeg();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&jpg);
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        let uri = format!("data:image/jpeg;base64,{b64}");
        let ann = annotation(&[]);
        for data in [&b64, &wrapped, &uri] {
            let src =
                SourceImage::load_with(&ann, Some(data), Path::new("a.json"), vec![7; 3]).unwrap();
            assert_eq!(src.bytes, jpg);
            assert_eq!((src.width, src.height), (4, 8));
        }
        let err = SourceImage::load_with(&ann, Some("abc*def"), Path::new("a.json"), Vec::new())
            .unwrap_err();
        assert!(err.contains("imageData is not valid base64"), "{err}");
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
