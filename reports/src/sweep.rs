//! Reading a sweep index: the list of run folders that `segkit compare --sweep` compares.
//!
//! Accepted forms (paths relative to the index's folder):
//! - a JSON file: `["run-a", "run-b"]`, or `{"runs": [...]}` whose items are paths or objects
//!   with a `dir`, `path`, `run` or `out` key;
//! - a text file: one run folder a line (`#` comments and blank lines skipped);
//! - a folder: its `sweep.json` or `index.json` when present, else every sub-folder that is a
//!   run folder, sorted by name.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ReportError, Result};
use crate::run::is_run_dir;

/// The run folders listed by the sweep index at `index`.
pub fn sweep_runs(index: &Path) -> Result<Vec<PathBuf>> {
    if index.is_dir() {
        for name in ["sweep.json", "index.json"] {
            let p = index.join(name);
            if p.is_file() {
                return sweep_runs(&p);
            }
        }
        let mut runs: Vec<PathBuf> = fs::read_dir(index)
            .map_err(|e| ReportError::io(index, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && is_run_dir(p))
            .collect();
        runs.sort();
        if runs.is_empty() {
            return Err(ReportError::invalid(
                index,
                "no sweep.json/index.json and no run folders inside",
            ));
        }
        return Ok(runs);
    }
    let text = fs::read_to_string(index).map_err(|e| ReportError::io(index, e))?;
    let base = index.parent().unwrap_or(Path::new("."));
    let entries: Vec<String> = match serde_json::from_str::<Value>(&text) {
        Ok(v) => {
            let items = match &v {
                Value::Array(a) => a,
                Value::Object(o) => o.get("runs").and_then(Value::as_array).ok_or_else(|| {
                    ReportError::invalid(index, "sweep index has no \"runs\" array")
                })?,
                _ => {
                    return Err(ReportError::invalid(
                        index,
                        "sweep index is neither a list nor an object",
                    ))
                }
            };
            items
                .iter()
                .map(|it| match it {
                    Value::String(s) => Ok(s.clone()),
                    Value::Object(o) => ["dir", "path", "run", "out"]
                        .iter()
                        .find_map(|k| o.get(*k).and_then(Value::as_str).map(String::from))
                        .ok_or_else(|| {
                            ReportError::invalid(
                                index,
                                format!("run entry {it} has no dir/path key"),
                            )
                        }),
                    other => Err(ReportError::invalid(
                        index,
                        format!("run entry {other} is not a path"),
                    )),
                })
                .collect::<Result<_>>()?
        }
        Err(_) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect(),
    };
    if entries.is_empty() {
        return Err(ReportError::invalid(index, "sweep index lists no runs"));
    }
    Ok(entries
        .into_iter()
        .map(|e| {
            let p = PathBuf::from(&e);
            if p.is_absolute() {
                p
            } else {
                base.join(p)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_text_and_folder_forms() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for r in ["b", "a"] {
            fs::create_dir_all(d.join(r)).unwrap();
            fs::write(d.join(r).join("metrics.jsonl"), "").unwrap();
        }
        assert_eq!(sweep_runs(d).unwrap(), vec![d.join("a"), d.join("b")]);
        fs::write(d.join("list.txt"), "# runs\nb\n\na\n").unwrap();
        assert_eq!(
            sweep_runs(&d.join("list.txt")).unwrap(),
            vec![d.join("b"), d.join("a")]
        );
        fs::write(
            d.join("sweep.json"),
            r#"{"runs": [{"dir": "a", "settings": {}}, "/abs/x"]}"#,
        )
        .unwrap();
        assert_eq!(
            sweep_runs(d).unwrap(),
            vec![d.join("a"), PathBuf::from("/abs/x")]
        );
        fs::write(d.join("bad.json"), r#"{"runs": [3]}"#).unwrap();
        let e = sweep_runs(&d.join("bad.json")).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("not a path"), "{e}");
    }
}
