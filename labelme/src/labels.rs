//! Class names → mask values, the same for every file of a dataset (the old
//! `json_to_dataset` numbered classes per file, so one label got different ids).
//!
//! Lists follow labelme2voc.py's `labels.txt`: `__ignore__` maps to 255 wherever it is
//! listed and takes no id; the other names get 0, 1, 2, … in order (`_background_` first).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::dataset::IGNORE_INDEX;

/// The label that marks pixels to ignore.
pub const IGNORE: &str = "__ignore__";
/// The background class name, id 0.
pub const BACKGROUND: &str = "_background_";

/// What to do with a label that is not in the class list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownPolicy {
    /// Refuse, listing every unknown label and the files that use it.
    #[default]
    Error,
    /// Paint it as background (0).
    Background,
    /// Paint it as ignore (255).
    Ignore,
}

/// Class names in id order and the mask value of every known label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    names: Vec<String>,
    values: HashMap<String, u8>,
    unknown: UnknownPolicy,
}

impl LabelMap {
    /// From names in list order (`__ignore__` anywhere → 255). Names must be unique, and
    /// `_background_`, when listed, must be the first class.
    pub fn from_list(list: &[String], unknown: UnknownPolicy) -> Result<LabelMap, String> {
        let mut names = Vec::new();
        let mut values = HashMap::new();
        for raw in list {
            let name = raw.trim();
            if name.is_empty() {
                continue;
            }
            if values.contains_key(name) {
                return Err(format!("class {name:?} is listed twice"));
            }
            if name == IGNORE {
                values.insert(name.to_string(), IGNORE_INDEX);
                continue;
            }
            if name == BACKGROUND && !names.is_empty() {
                return Err(format!("{BACKGROUND} must be the first class (id 0)"));
            }
            if names.len() >= IGNORE_INDEX as usize {
                return Err(format!(
                    "too many classes: at most {} fit in an 8-bit mask with 255 = ignore",
                    IGNORE_INDEX
                ));
            }
            values.insert(name.to_string(), names.len() as u8);
            names.push(name.to_string());
        }
        if names.is_empty() {
            return Err("the class list is empty".into());
        }
        Ok(LabelMap {
            names,
            values,
            unknown,
        })
    }

    /// From a labelme2voc-style labels file, one name a line.
    pub fn from_file(path: &Path, unknown: UnknownPolicy) -> Result<LabelMap, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let list: Vec<String> = text.lines().map(String::from).collect();
        Self::from_list(&list, unknown).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// From all labels seen: `_background_` first, then the others sorted, so that ids do
    /// not depend on which file came first.
    pub fn collect<'a>(labels: impl IntoIterator<Item = &'a str>) -> LabelMap {
        let seen: BTreeSet<&str> = labels.into_iter().collect();
        let mut list = vec![BACKGROUND.to_string()];
        if seen.contains(IGNORE) {
            list.push(IGNORE.to_string());
        }
        list.extend(
            seen.into_iter()
                .filter(|l| *l != BACKGROUND && *l != IGNORE)
                .map(String::from),
        );
        Self::from_list(&list, UnknownPolicy::Error).unwrap_or_else(|_| {
            // only "too many classes" can fail here; keep the first 254 and refuse the rest later
            let keep: Vec<String> = list.into_iter().take(IGNORE_INDEX as usize).collect();
            Self::from_list(&keep, UnknownPolicy::Error).expect("a short unique list")
        })
    }

    /// Class names in id order (what `class_names.txt` lists).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The mask value of `label`, or `None` when it is unknown and unknown labels are errors.
    pub fn value(&self, label: &str) -> Option<u8> {
        match (self.values.get(label), self.unknown) {
            (Some(&v), _) => Some(v),
            (None, UnknownPolicy::Error) => None,
            (None, UnknownPolicy::Background) => Some(0),
            (None, UnknownPolicy::Ignore) => Some(IGNORE_INDEX),
        }
    }

    /// Labels that are not in the list, each with the files that use it; empty when every
    /// label is known or unknown labels are allowed.
    pub fn unknown_labels<'a>(
        &self,
        uses: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (label, file) in uses {
            if self.value(label).is_none() {
                out.entry(label.to_string())
                    .or_default()
                    .insert(file.to_string());
            }
        }
        out
    }
}

/// Label spellings to merge (`--alias 划痕=scratch`), applied before the class lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aliases(HashMap<String, String>);

impl Aliases {
    /// From `FROM=TO` pairs.
    pub fn parse(pairs: &[String]) -> Result<Aliases, String> {
        let mut map = HashMap::new();
        for p in pairs {
            let (from, to) = p
                .split_once('=')
                .ok_or_else(|| format!("alias {p:?} is not FROM=TO"))?;
            let (from, to) = (from.trim(), to.trim());
            if from.is_empty() || to.is_empty() {
                return Err(format!("alias {p:?} has an empty side"));
            }
            map.insert(from.to_string(), to.to_string());
        }
        Ok(Aliases(map))
    }

    /// The canonical spelling of `label`.
    pub fn resolve<'a>(&'a self, label: &'a str) -> &'a str {
        self.0.get(label).map(String::as_str).unwrap_or(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Vec<String> {
        s.split(',').map(String::from).collect()
    }

    #[test]
    fn labelme2voc_file_convention() {
        let m = LabelMap::from_list(
            &list("__ignore__,_background_,cat,dog"),
            UnknownPolicy::Error,
        )
        .unwrap();
        assert_eq!(m.names(), ["_background_", "cat", "dog"]);
        assert_eq!(m.value("__ignore__"), Some(255));
        assert_eq!(m.value("_background_"), Some(0));
        assert_eq!(m.value("dog"), Some(2));
        assert_eq!(m.value("bird"), None);
    }

    #[test]
    fn inline_list_with_ignore_anywhere() {
        let m = LabelMap::from_list(
            &list("_background_,cat,__ignore__,dog"),
            UnknownPolicy::Ignore,
        )
        .unwrap();
        assert_eq!(
            (m.value("cat"), m.value("dog"), m.value("__ignore__")),
            (Some(1), Some(2), Some(255))
        );
        assert_eq!(m.value("bird"), Some(255));
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(LabelMap::from_list(&list("_background_,a,a"), UnknownPolicy::Error).is_err());
        assert!(LabelMap::from_list(&list("a,_background_"), UnknownPolicy::Error).is_err());
        let many: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
        assert!(LabelMap::from_list(&many, UnknownPolicy::Error)
            .unwrap_err()
            .contains("too many"));
    }

    #[test]
    fn collected_ids_are_sorted_and_file_order_free() {
        let a = LabelMap::collect(["狗", "cat", "__ignore__", "cat", "b"]);
        let b = LabelMap::collect(["b", "狗", "cat"]);
        assert_eq!(a.names(), ["_background_", "b", "cat", "狗"]);
        assert_eq!(a.names(), b.names());
        assert_eq!(a.value("__ignore__"), Some(255));
    }

    #[test]
    fn unknown_labels_list_their_files() {
        let m = LabelMap::from_list(&list("_background_,cat"), UnknownPolicy::Error).unwrap();
        let u = m.unknown_labels([("dog", "b.json"), ("cat", "a.json"), ("dog", "a.json")]);
        assert_eq!(u.len(), 1);
        assert_eq!(u["dog"].iter().collect::<Vec<_>>(), ["a.json", "b.json"]);
    }

    #[test]
    fn aliases_merge_spellings() {
        let a = Aliases::parse(&["划痕=scratch".into()]).unwrap();
        assert_eq!(a.resolve("划痕"), "scratch");
        assert_eq!(a.resolve("dent"), "dent");
        assert!(Aliases::parse(&["x".into()]).is_err());
    }
}
