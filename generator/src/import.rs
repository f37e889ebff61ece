//! `folio import zola|hugo DIR`: a Zola `config.toml` or a Hugo `hugo.toml`/`config.toml`/
//! `config.yaml` turned into a `folio.toml` in place, with every setting that could not be
//! carried over reported at its line. Content is left as it is: folio reads Zola's and
//! Hugo's front matter as written (see `docs/migrating.md`).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use folio_content::config::{Config, CONFIG_FILE};
use folio_content::value::{toml_to_json, yaml_to_json};

/// Which generator a site comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Zola: `config.toml` (or `zola.toml`).
    Zola,
    /// Hugo: `hugo.toml`, `hugo.yaml`, `config.toml` or `config.yaml`.
    Hugo,
}

/// A setting that was not carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line in the source configuration, when found.
    pub line: Option<usize>,
    /// The setting, dotted (`markdown.highlight_theme`).
    pub key: String,
    /// Why, and what to do instead.
    pub why: String,
}

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    /// The configuration read.
    pub source: PathBuf,
    /// The `folio.toml` written.
    pub written: PathBuf,
    /// Every setting left behind, in the order of the source.
    pub skipped: Vec<Skipped>,
}

/// Writes `dir/folio.toml` from the Zola or Hugo configuration in `dir`. Refuses to replace
/// an existing `folio.toml`.
pub fn import(from: Origin, dir: &Path) -> Result<Imported, String> {
    let written = dir.join(CONFIG_FILE);
    if written.exists() {
        return Err(format!(
            "{} exists already: folio import never replaces it",
            written.display()
        ));
    }
    let names: &[&str] = match from {
        Origin::Zola => &["zola.toml", "config.toml"],
        Origin::Hugo => &[
            "hugo.toml",
            "hugo.yaml",
            "hugo.yml",
            "config.toml",
            "config.yaml",
            "config.yml",
        ],
    };
    let source = names
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no {} configuration in {} (looked for {})",
                if from == Origin::Zola { "Zola" } else { "Hugo" },
                dir.display(),
                names.join(", ")
            )
        })?;
    let text = std::fs::read_to_string(&source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let yaml = source
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml");
    let value = if yaml {
        let y: serde_norway::Value =
            serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", source.display()))?;
        yaml_to_json(&y)
    } else {
        let t: toml::Table =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", source.display()))?;
        toml_to_json(&toml::Value::Table(t))
    };
    let Value::Object(map) = value else {
        return Err(format!("{}: not a table of settings", source.display()));
    };
    let mut c = Convert {
        text: &text,
        out: Map::new(),
        markdown: Map::new(),
        search: Map::new(),
        extra: Map::new(),
        skipped: Vec::new(),
    };
    match from {
        Origin::Zola => c.zola(map),
        Origin::Hugo => c.hugo(map),
    }
    if dir.join("templates").is_dir() && from == Origin::Zola {
        c.skipped.push(Skipped {
            line: None,
            key: "templates/".into(),
            why: "holds Zola's templates, which folio would use over its theme: move it away (or port the templates, see docs/templates.md)".into(),
        });
    }
    let toml = c.finish(from, &source)?;
    Config::parse(&toml).map_err(|(pos, msg)| {
        format!(
            "the folio.toml made from {} is not valid ({pos:?}: {msg}); nothing was written",
            source.display()
        )
    })?;
    std::fs::write(&written, toml)
        .map_err(|e| format!("cannot write {}: {e}", written.display()))?;
    Ok(Imported {
        source,
        written,
        skipped: c.skipped,
    })
}

struct Convert<'a> {
    text: &'a str,
    out: Map<String, Value>,
    markdown: Map<String, Value>,
    search: Map<String, Value>,
    extra: Map<String, Value>,
    skipped: Vec<Skipped>,
}

impl Convert<'_> {
    fn skip(&mut self, path: &[&str], why: impl Into<String>) {
        self.skipped.push(Skipped {
            line: line_of(self.text, path),
            key: path.join("."),
            why: why.into(),
        });
    }

    fn zola(&mut self, map: Map<String, Value>) {
        for (key, v) in map {
            match key.as_str() {
                "title" | "base_url" | "description" | "author" | "feed_limit" => {
                    self.out.insert(key, v);
                }
                "default_language" => {
                    self.out.insert("language".into(), v);
                }
                // Zola writes a search index only when asked; folio's `[search] enabled`
                // is the same switch (default true), so the choice is carried either way.
                "build_search_index" => match v {
                    Value::Bool(on) => {
                        self.search.insert("enabled".into(), Value::Bool(on));
                    }
                    _ => self.skip(&[&key], "not true or false: set `enabled` under [search]"),
                },
                "search" => {
                    for k in v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                        self.skip(&[&key, &k], "folio's index always holds titles, headings and text, with its own format: see docs/search.md ([search] has `enabled` and `include_code`)");
                    }
                }
                "generate_feed" | "generate_feeds" | "feed_filename" | "feed_filenames" => {
                    self.skip(&[&key], "folio always writes the site's Atom feed, /atom.xml; a section's own: `generate_feeds = true` in its _index.md, as in Zola")
                }
                "taxonomies" => {
                    for t in v.as_array().into_iter().flatten() {
                        let name = t["name"].as_str().unwrap_or("");
                        if name != "tags" && name != "categories" {
                            self.skip(&[&key], format!("taxonomy `{name}`: folio has tags and categories"));
                        }
                    }
                }
                "markdown" => {
                    for (k, v) in v.as_object().cloned().unwrap_or_default() {
                        match k.as_str() {
                            "highlight_code" => {
                                self.markdown.insert("highlight".into(), v);
                            }
                            "smart_punctuation" => {
                                self.markdown.insert(k, v);
                            }
                            "highlight_theme" => self.skip(&[&key, &k], "theme names differ: set highlight_theme_light/_dark under [markdown] (any syntect theme)"),
                            _ => self.skip(&[&key, &k], "no such setting in folio"),
                        }
                    }
                }
                "extra" => {
                    if let Value::Object(m) = v {
                        self.extra.extend(m);
                    }
                }
                "theme" => self.skip(&[&key], "folio uses its own theme (or themes/<name>/ with `theme`): see docs/templates.md"),
                _ => self.skip(&[&key], "no such setting in folio"),
            }
        }
    }

    fn hugo(&mut self, map: Map<String, Value>) {
        for (key, v) in map {
            match key.to_ascii_lowercase().as_str() {
                "title" => {
                    self.out.insert("title".into(), v);
                }
                "baseurl" => {
                    self.out.insert("base_url".into(), v);
                }
                "languagecode" => {
                    let lang = v.as_str().unwrap_or("en").to_ascii_lowercase();
                    self.out.insert("language".into(), Value::String(lang));
                }
                "defaultcontentlanguage" if !self.out.contains_key("language") => {
                    self.out.insert("language".into(), v);
                }
                "author" => self.author(v),
                "params" => {
                    for (k, v) in v.as_object().cloned().unwrap_or_default() {
                        match k.to_ascii_lowercase().as_str() {
                            "description" => {
                                self.out.insert("description".into(), v);
                            }
                            "author" => self.author(v),
                            _ => {
                                self.extra.insert(k, v);
                            }
                        }
                    }
                }
                "menu" | "menus" => {
                    let main = v["main"].as_array().cloned().unwrap_or_default();
                    let menu: Vec<Value> = main
                        .iter()
                        .filter_map(|m| {
                            let name = m["name"].as_str()?;
                            let url = m["url"].as_str().or_else(|| m["pageRef"].as_str())?;
                            Some(serde_json::json!({ "name": name, "url": url }))
                        })
                        .collect();
                    if !menu.is_empty() {
                        self.extra.insert("menu".into(), Value::Array(menu));
                    }
                    if v.as_object().is_some_and(|m| m.keys().any(|k| k != "main")) {
                        self.skip(&[&key], "only the main menu is carried (to [extra] menu)");
                    }
                }
                "taxonomies" => {
                    for (k, name) in v.as_object().cloned().unwrap_or_default() {
                        let name = name.as_str().unwrap_or("").to_string();
                        if !matches!(k.as_str(), "tag" | "category") {
                            self.skip(&[&key, &k], format!("taxonomy `{name}`: folio has tags and categories"));
                        }
                    }
                }
                "markup" => {
                    let depth = &v["tableOfContents"]["endLevel"];
                    if let Some(d) = depth.as_u64() {
                        self.markdown.insert("toc_depth".into(), Value::from(d.clamp(1, 6)));
                    }
                    for k in v.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
                        if k != "tableOfContents" {
                            self.skip(&[&key, &k], "folio renders CommonMark with its own settings ([markdown])");
                        }
                    }
                }
                "paginate" | "pagination" => self.skip(&[&key], "set `paginate_by` in each section's _index.md"),
                "theme" => self.skip(&[&key], "folio uses its own theme (or themes/<name>/ with `theme`): see docs/templates.md"),
                _ => self.skip(&[&key], "no such setting in folio"),
            }
        }
    }

    fn author(&mut self, v: Value) {
        let name = match &v {
            Value::String(s) => Some(s.clone()),
            Value::Object(m) => m.get("name").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        if let Some(n) = name {
            self.out.insert("author".into(), Value::String(n));
        }
    }

    fn finish(&mut self, from: Origin, source: &Path) -> Result<String, String> {
        if !self.out.contains_key("title") {
            self.out
                .insert("title".into(), Value::String("My site".into()));
            self.skipped.push(Skipped {
                line: None,
                key: "title".into(),
                why: "missing: set to \"My site\"".into(),
            });
        }
        if !self.out.contains_key("base_url") {
            return Err(format!(
                "{} has no base URL: folio needs one",
                source.display()
            ));
        }
        let mut table = toml::Table::new();
        for key in [
            "title",
            "base_url",
            "author",
            "description",
            "language",
            "feed_limit",
        ] {
            if let Some(v) = self.out.get(key).and_then(to_toml) {
                table.insert(key.into(), v);
            }
        }
        if let Some(t) = to_toml(&Value::Object(std::mem::take(&mut self.markdown)))
            .filter(|t| t.as_table().is_some_and(|t| !t.is_empty()))
        {
            table.insert("markdown".into(), t);
        }
        if let Some(t) = to_toml(&Value::Object(std::mem::take(&mut self.search)))
            .filter(|t| t.as_table().is_some_and(|t| !t.is_empty()))
        {
            table.insert("search".into(), t);
        }
        if let Some(t) = to_toml(&Value::Object(std::mem::take(&mut self.extra)))
            .filter(|t| t.as_table().is_some_and(|t| !t.is_empty()))
        {
            table.insert("extra".into(), t);
        }
        let body = toml::to_string_pretty(&table).map_err(|e| e.to_string())?;
        let name = source.file_name().unwrap_or_default().to_string_lossy();
        let gen = if from == Origin::Zola { "Zola" } else { "Hugo" };
        Ok(format!(
            "# Made from {gen}'s {name} by `folio import`; docs/configuration.md lists every setting.\n{body}"
        ))
    }
}

/// JSON as TOML; nulls (which TOML lacks) are left out.
fn to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(to_toml).collect()),
        Value::Object(m) => toml::Value::Table(
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), to_toml(v)?)))
                .collect(),
        ),
    })
}

/// The line of a (possibly nested) key in a TOML or YAML file: each part of the path is
/// looked for after the line of the part before, as `key =`, `key:` or a `[table]` header.
fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut found = None;
    for (depth, part) in path.iter().enumerate() {
        let table = path[..=depth].join(".");
        let i = (from..lines.len()).find(|&i| {
            let t = lines[i].trim_start();
            let header = t.trim_end().trim_start_matches('[').trim_end_matches(']');
            if t.starts_with('[') {
                return header == table || header == *part;
            }
            let bare = t.trim_start_matches(['"', '\'', '-', ' ']);
            bare.strip_prefix(part).is_some_and(|after| {
                let after = after.trim_start_matches(['"', '\'']).trim_start();
                after.starts_with('=') || after.starts_with(':')
            })
        })?;
        found = Some(i + 1);
        from = i + 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_nested_keys() {
        let t = "title = \"x\"\n[markdown]\nhighlight_code = true\nhighlight_theme = \"a\"\n";
        assert_eq!(line_of(t, &["markdown", "highlight_theme"]), Some(4));
        let y = "title: x\nmarkup:\n  goldmark:\n    x: 1\n  highlight:\n    style: monokai\n";
        assert_eq!(line_of(y, &["markup", "highlight"]), Some(5));
    }
}
