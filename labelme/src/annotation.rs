//! The labelme JSON file, every schema generation of it (3.x `lineColor`/`fillColor`,
//! 4.x, 5.x `description` and `mask` shapes, 7.x `oriented_rectangle`), read leniently:
//! fields this crate does not use are kept in `extra`, never an error.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A labelme annotation file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// labelme version that wrote the file (`"3.16.7"`, `"5.2.1"`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The shapes, in drawing order: later shapes overwrite earlier ones.
    pub shapes: Vec<Shape>,
    /// Image path relative to the JSON file, as labelme wrote it (possibly with `\`).
    #[serde(rename = "imagePath", default)]
    pub image_path: Option<String>,
    /// The image file's bytes, base64, when embedded.
    #[serde(rename = "imageData", default)]
    pub image_data: Option<String>,
    /// Image height the shapes were drawn on (after EXIF orientation); absent before 4.x.
    #[serde(
        rename = "imageHeight",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub image_height: Option<u32>,
    /// Image width the shapes were drawn on.
    #[serde(
        rename = "imageWidth",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub image_width: Option<u32>,
    /// Every other field (`flags`, `lineColor`, `fillColor`, tool-specific ones), kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One labelme shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Class name as the annotator typed it.
    pub label: String,
    /// Vertices `[x, y]` in pixels (floats; pixel centres are at integers).
    pub points: Vec<[f64; 2]>,
    /// Instance group: shapes with the same label and group id are one object.
    #[serde(default)]
    pub group_id: Option<Value>,
    /// `polygon` (also when absent), `rectangle`, `circle`, `line`, `linestrip`, `point`,
    /// `mask`, `oriented_rectangle`.
    #[serde(default)]
    pub shape_type: Option<String>,
    /// For `mask` shapes: a base64 PNG patch placed at the first point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// Every other field (`flags`, `description`, `line_color`, `locked`, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The kinds of shape labelme draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeKind {
    /// Filled polygon through the points.
    Polygon,
    /// Axis-aligned box with two opposite corners as points.
    Rectangle,
    /// Disc: centre, then a point on the circle.
    Circle,
    /// Polyline, 10 px wide.
    Line,
    /// Polyline, 10 px wide, with rounded joints.
    LineStrip,
    /// Disc of radius 5.
    Point,
    /// Bitmap patch with its top-left corner at the first point.
    Mask,
    /// Rotated box given by its four corners, filled as a polygon.
    OrientedRectangle,
}

impl ShapeKind {
    /// The kind named by a `shape_type` (absent or empty means polygon, as in labelme 3.x).
    pub fn parse(shape_type: Option<&str>) -> Option<ShapeKind> {
        Some(match shape_type.unwrap_or("") {
            "" | "polygon" => ShapeKind::Polygon,
            "rectangle" => ShapeKind::Rectangle,
            "circle" => ShapeKind::Circle,
            "line" => ShapeKind::Line,
            "linestrip" => ShapeKind::LineStrip,
            "point" => ShapeKind::Point,
            "mask" => ShapeKind::Mask,
            "oriented_rectangle" => ShapeKind::OrientedRectangle,
            _ => return None,
        })
    }

    /// Points this kind needs at least.
    pub fn min_points(self) -> usize {
        match self {
            ShapeKind::Polygon | ShapeKind::OrientedRectangle => 3,
            ShapeKind::Rectangle | ShapeKind::Circle | ShapeKind::Line | ShapeKind::LineStrip => 2,
            ShapeKind::Point | ShapeKind::Mask => 1,
        }
    }
}

impl Shape {
    /// This shape's kind, or `None` for a `shape_type` labelme does not have.
    pub fn kind(&self) -> Option<ShapeKind> {
        ShapeKind::parse(self.shape_type.as_deref())
    }
}

/// Why an annotation file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not labelme JSON.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// One shape is malformed.
    #[error("{path}: shape {index}: {message}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// Index of the shape in `shapes`, from 0.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

impl Annotation {
    /// Read and parse a labelme file; a malformed shape is reported with its index.
    pub fn read(path: &Path) -> Result<Annotation, AnnotationError> {
        with_file_bytes(path, |text| Self::parse(text, path))?
    }

    /// Parse labelme JSON bytes; `path` names the file in errors.
    pub fn parse(text: &[u8], path: &Path) -> Result<Annotation, AnnotationError> {
        let (mut ann, data) = Self::parse_borrowed(text, path)?;
        ann.image_data = data.map(Cow::into_owned);
        Ok(ann)
    }

    /// Like [`Annotation::parse`], but `imageData` (usually most of the file) is returned
    /// separately, borrowed from `text` when it has no JSON escapes, and left out of the
    /// annotation: converting a folder then never copies megabytes of base64 around.
    pub fn parse_borrowed<'a>(
        text: &'a [u8],
        path: &Path,
    ) -> Result<(Annotation, Option<Cow<'a, str>>), AnnotationError> {
        let invalid = |message: String| AnnotationError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let raw: RawTop<'a> = serde_json::from_slice(text).map_err(|e| {
            invalid(if e.is_data() {
                format!("not a labelme annotation: {e}")
            } else {
                format!("not valid JSON: {e}")
            })
        })?;
        let Some(raw_shapes) = raw.shapes else {
            return Err(invalid(
                "no \"shapes\" list: not a labelme annotation".into(),
            ));
        };
        // Shapes one by one, so that an error can name the shape.
        let mut shapes = Vec::with_capacity(raw_shapes.len());
        for (index, v) in raw_shapes.into_iter().enumerate() {
            let shape: Shape = serde_json::from_value(v).map_err(|e| AnnotationError::Shape {
                path: path.to_path_buf(),
                index,
                message: e.to_string(),
            })?;
            shapes.push(shape);
        }
        let mut rest = raw.rest;
        rest.insert("shapes".into(), Value::Array(Vec::new()));
        let mut ann: Annotation = serde_json::from_value(Value::Object(rest))
            .map_err(|e| invalid(format!("not a labelme annotation: {e}")))?;
        ann.shapes = shapes;
        Ok((ann, raw.image_data))
    }

    /// The image path with Windows separators normalised, relative to the JSON's folder.
    pub fn image_path_normalized(&self) -> Option<String> {
        self.image_path.as_ref().map(|p| p.replace('\\', "/"))
    }
}

/// The top level of a labelme file, visited by hand: `#[serde(flatten)]` would buffer the
/// whole object (megabytes of `imageData` included) before sorting out the fields.
struct RawTop<'a> {
    shapes: Option<Vec<Value>>,
    image_data: Option<Cow<'a, str>>,
    rest: Map<String, Value>,
}

impl<'de> Deserialize<'de> for RawTop<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTop<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTop<'de>, A::Error> {
                let mut top = RawTop {
                    shapes: None,
                    image_data: None,
                    rest: Map::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "shapes" => top.shapes = map.next_value()?,
                        "imageData" => {
                            top.image_data = map.next_value::<Option<MaybeBorrowed>>()?.map(|m| m.0)
                        }
                        _ => {
                            top.rest.insert(key, map.next_value()?);
                        }
                    }
                }
                Ok(top)
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON string borrowed from the input when it has no escapes.
struct MaybeBorrowed<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for MaybeBorrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeBorrowed<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeBorrowed(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(MaybeBorrowed(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(MaybeBorrowed(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

thread_local! {
    /// The last file this thread read, its buffer reused: a fresh megabyte-sized buffer
    /// per annotation costs more in page faults than parsing it.
    static FILE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Call `f` with the bytes of the file at `path`, read into a per-thread reused buffer.
pub fn with_file_bytes<T>(path: &Path, f: impl FnOnce(&[u8]) -> T) -> Result<T, AnnotationError> {
    use std::io::Read;
    let mut buf = FILE_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    buf.clear();
    let read = std::fs::File::open(path).and_then(|mut file| {
        let len = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
        buf.reserve(len + 1);
        file.read_to_end(&mut buf)
    });
    let result = match read {
        Ok(_) => Ok(f(&buf)),
        Err(e) => Err(AnnotationError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    };
    FILE_BUF.with(|b| *b.borrow_mut() = buf);
    result
}

/// The label names of a labelme file, cheaply (the image data is skipped, not decoded).
pub fn read_labels(path: &Path) -> Result<Vec<String>, AnnotationError> {
    #[derive(Deserialize)]
    struct LabelOnly {
        label: String,
    }
    #[derive(Deserialize)]
    struct Labels {
        shapes: Vec<LabelOnly>,
    }
    let labels = with_file_bytes(path, |text| serde_json::from_slice::<Labels>(text))?;
    let labels = labels.map_err(|e| AnnotationError::Invalid {
        path: path.to_path_buf(),
        message: if e.is_data() {
            format!("not a labelme annotation: {e}")
        } else {
            format!("not valid JSON: {e}")
        },
    })?;
    Ok(labels.shapes.into_iter().map(|s| s.label).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Annotation, AnnotationError> {
        Annotation::parse(s.as_bytes(), Path::new("a.json"))
    }

    #[test]
    fn old_schema_without_shape_type_or_size_reads() {
        let a = parse(
            r#"{"version": "3.6.1", "flags": {}, "lineColor": [0,255,0,128],
                "shapes": [{"label": "cat", "line_color": null, "points": [[1, 2], [3.5, 4], [5, 6]]}],
                "imagePath": "..\\imgs\\a.jpg", "imageData": null}"#,
        )
        .unwrap();
        assert_eq!(a.shapes[0].kind(), Some(ShapeKind::Polygon));
        assert_eq!(a.shapes[0].points[1], [3.5, 4.0]);
        assert_eq!(a.image_height, None);
        assert_eq!(a.image_path_normalized().as_deref(), Some("../imgs/a.jpg"));
        assert_eq!(a.extra["lineColor"], serde_json::json!([0, 255, 0, 128]));
        assert!(a.shapes[0].extra.contains_key("line_color"));
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let a = parse(
            r#"{"version": "7.1.0", "shapes": [{"label": "x", "points": [[0,0],[1,1],[0,1],[1,0]],
                "shape_type": "oriented_rectangle", "locked": true, "description": "d"}],
                "imagePath": "a.png", "imageData": null, "imageHeight": 4, "imageWidth": 5, "future": [1]}"#,
        )
        .unwrap();
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["future"], serde_json::json!([1]));
        assert_eq!(v["shapes"][0]["locked"], serde_json::json!(true));
        assert_eq!(a.shapes[0].kind(), Some(ShapeKind::OrientedRectangle));
    }

    #[test]
    fn malformed_shape_is_named_by_index() {
        let err = parse(r#"{"shapes": [{"label": "a", "points": [[0,0]]}, {"label": "b"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("a.json: shape 1:") && err.contains("points"),
            "{err}"
        );
    }

    #[test]
    fn image_data_is_borrowed_unless_escaped_and_other_fields_are_kept() {
        let text =
            br#"{"imageData": "iVBO+/w==", "shapes": [], "flags": {"a": true}, "imageWidth": 3}"#;
        let (ann, data) = Annotation::parse_borrowed(text, Path::new("a.json")).unwrap();
        assert!(matches!(data, Some(Cow::Borrowed("iVBO+/w=="))));
        assert_eq!(ann.image_data, None);
        assert_eq!(
            (ann.image_width, ann.extra["flags"]["a"].as_bool()),
            (Some(3), Some(true))
        );
        // some writers escape '/': the string is then unescaped into an owned copy
        let text = br#"{"shapes": [], "imageData": "iVBO+\/w=="}"#;
        let (_, data) = Annotation::parse_borrowed(text, Path::new("a.json")).unwrap();
        assert!(matches!(data, Some(Cow::Owned(ref s)) if s == "iVBO+/w=="));
        let ann = parse(r#"{"shapes": [], "imageData": null}"#).unwrap();
        assert_eq!(ann.image_data, None);
        let err = parse(r#"{"shapes": [], "imageData": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a labelme annotation"), "{err}");
    }

    #[test]
    fn non_labelme_json_is_refused_with_reason() {
        let err = parse(r#"{"images": []}"#).unwrap_err().to_string();
        assert!(err.contains("not a labelme annotation"), "{err}");
        let err = parse("{").unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }
}
