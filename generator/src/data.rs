//! `data/`: TOML, JSON and CSV files that templates read with `load_data(path="cv.toml")`.
//!
//! Every data file is parsed up front, so a syntax error is reported at its line and column
//! even when no template reads the file yet.

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde_json::{Map, Value};

use folio_content::diagnostics::{display_path, line_col, Diagnostic, Diagnostics};
use folio_content::value::toml_to_json;

/// The parsed data files, by path under `data/` (`cv.toml`, `talks/2024.csv`).
#[derive(Debug, Default, Clone)]
pub(crate) struct DataFiles {
    files: HashMap<String, Value>,
}

impl DataFiles {
    /// Loads every `.toml`, `.json` and `.csv` file under `root/data`.
    pub(crate) fn load(root: &Path, diags: &mut Diagnostics) -> DataFiles {
        let dir = root.join("data");
        if !dir.is_dir() {
            return DataFiles::default();
        }
        let mut paths = Vec::new();
        for e in walkdir::WalkDir::new(&dir).sort_by_file_name() {
            match e {
                Ok(e)
                    if e.file_type().is_file()
                        && !e.file_name().to_string_lossy().starts_with('.') =>
                {
                    paths.push(e.into_path())
                }
                Ok(_) => {}
                Err(err) => diags.push(Diagnostic::error(
                    display_path(root, err.path().unwrap_or(&dir)),
                    None,
                    format!("cannot read: {err}"),
                )),
            }
        }
        let results: Vec<Result<Option<(String, Value)>, Diagnostic>> = paths
            .par_iter()
            .map(|p| {
                let shown = display_path(root, p);
                let key = p
                    .strip_prefix(&dir)
                    .expect("under data")
                    .to_string_lossy()
                    .replace('\\', "/");
                let ext = p
                    .extension()
                    .map(|e| e.to_string_lossy().to_lowercase())
                    .unwrap_or_default();
                if !matches!(ext.as_str(), "toml" | "json" | "csv") {
                    return Ok(None);
                }
                let text = folio_content::diagnostics::read_text(p, &shown)?;
                parse(&ext, &text)
                    .map(|v| Some((key, v)))
                    .map_err(|(pos, msg)| Diagnostic::error(&shown, pos, msg))
            })
            .collect();
        let mut files = HashMap::new();
        for r in results {
            match r {
                Ok(Some((k, v))) => {
                    files.insert(k, v);
                }
                Ok(None) => {}
                Err(d) => diags.push(d),
            }
        }
        DataFiles { files }
    }

    /// The value of a data file; `path` may start with `data/`.
    pub(crate) fn get(&self, path: &str) -> Option<&Value> {
        self.files.get(path.trim_start_matches("data/"))
    }

    /// A hash of every data file's name and value: part of the page cache key.
    pub(crate) fn digest(&self) -> [u8; 32] {
        let mut names: Vec<&String> = self.files.keys().collect();
        names.sort();
        let mut h = blake3::Hasher::new();
        for n in names {
            h.update(n.as_bytes());
            let _ = serde_json::to_writer(&mut h, &self.files[n]);
        }
        *h.finalize().as_bytes()
    }

    /// Names of all data files, for error messages.
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.files.keys().map(String::as_str).collect();
        v.sort();
        v
    }
}

/// Parses one data file's text by extension.
pub(crate) fn parse(ext: &str, text: &str) -> Result<Value, (Option<(usize, usize)>, String)> {
    match ext {
        "toml" => toml::from_str::<toml::Table>(text)
            .map(|t| toml_to_json(&toml::Value::Table(t)))
            .map_err(|e| {
                (
                    e.span().map(|s| line_col(text, s.start)),
                    e.message().trim().to_string(),
                )
            }),
        "json" => serde_json::from_str(text)
            .map_err(|e| (Some((e.line(), e.column())), strip_position(&e.to_string()))),
        "csv" => {
            let mut rdr = csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(text.as_bytes());
            let headers = rdr.headers().map_err(|e| csv_err(&e))?.clone();
            let mut rows = Vec::new();
            for rec in rdr.records() {
                let rec = rec.map_err(|e| csv_err(&e))?;
                let mut row = Map::new();
                for (h, v) in headers.iter().zip(rec.iter()) {
                    row.insert(h.to_string(), Value::String(v.to_string()));
                }
                rows.push(Value::Object(row));
            }
            Ok(Value::Array(rows))
        }
        _ => Err((None, format!("unsupported data format .{ext}"))),
    }
}

fn csv_err(e: &csv::Error) -> (Option<(usize, usize)>, String) {
    let pos = e.position().map(|p| (p.line() as usize, 1));
    let msg = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("row has {len} fields, the header has {expected_len}"),
        _ => e.to_string(),
    };
    (pos, msg)
}

fn strip_position(msg: &str) -> String {
    msg.rfind(" at line ")
        .map_or(msg, |i| &msg[..i])
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_formats() {
        assert_eq!(
            parse("toml", "a = 1\n[b]\nc = \"x\"").unwrap()["b"]["c"],
            "x"
        );
        assert_eq!(parse("json", "[1, 2]").unwrap()[1], 2);
        let csv = parse("csv", "date,title\n2024-01-01,Talk\n").unwrap();
        assert_eq!(csv[0]["title"], "Talk");
    }

    #[test]
    fn errors_have_positions() {
        assert_eq!(parse("toml", "a = 1\nb = \n").unwrap_err().0.unwrap().0, 2);
        assert_eq!(
            parse("json", "{\n  \"a\": ,\n}").unwrap_err().0.unwrap().0,
            2
        );
        let (pos, msg) = parse("csv", "a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(pos.unwrap().0, 3);
        assert!(msg.contains("1 fields"), "{msg}");
    }
}
