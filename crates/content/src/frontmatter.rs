//! Front matter: the TOML (`+++`) or YAML (`---`) header of a content file, parsed into typed
//! fields with errors at the exact line and column of the file.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diagnostics::line_col;

/// A problem in front matter: a (line, column) in the whole file when known, and a message.
pub type FmError = (Option<(usize, usize)>, String);

/// Which syntax the front matter is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Between `+++` lines.
    Toml,
    /// Between `---` lines.
    Yaml,
}

/// A content file cut into its front matter and its markdown body, with the offsets needed to
/// report positions in the original file.
#[derive(Debug, Clone, Copy)]
pub struct Split<'a> {
    /// The syntax of the front matter.
    pub format: Format,
    /// The front matter text, without its delimiters.
    pub front: &'a str,
    /// Byte offset of `front` in the file.
    pub front_offset: usize,
    /// The markdown after the closing delimiter.
    pub body: &'a str,
    /// Byte offset of `body` in the file.
    pub body_offset: usize,
}

/// Cuts `text` into front matter and body.
pub fn split(text: &str) -> Result<Split<'_>, FmError> {
    let start = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let rest = &text[start..];
    let first_line_end = rest.find('\n').map_or(rest.len(), |i| i + 1);
    let delim = rest[..first_line_end].trim_end();
    let format = match delim {
        "+++" => Format::Toml,
        "---" => Format::Yaml,
        _ => {
            return Err((
                Some((1, 1)),
                "expected front matter: the file must start with a `+++` line (TOML) or a `---` line (YAML) and hold at least `title`".into(),
            ))
        }
    };
    let front_offset = start + first_line_end;
    let mut pos = front_offset;
    for line in text[front_offset..].split_inclusive('\n') {
        if line.trim_end() == delim {
            let body_offset = pos + line.len();
            return Ok(Split {
                format,
                front: &text[front_offset..pos],
                front_offset,
                body: &text[body_offset..],
                body_offset,
            });
        }
        pos += line.len();
    }
    Err((
        Some((1, 1)),
        format!("front matter opened with `{delim}` on line 1 is never closed"),
    ))
}

/// Where `key = …` (or `key: …`) first appears in `text`, as a 1-based (line, column).
pub fn find_key(text: &str, key: &str) -> Option<(usize, usize)> {
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if key.starts_with('[') {
            if trimmed.trim_end() == key {
                return Some((i + 1, line.len() - trimmed.len() + 1));
            }
            continue;
        }
        if let Some(after) = trimmed.strip_prefix(key) {
            let after = after.trim_start();
            if after.starts_with('=') || after.starts_with(':') {
                let col = line[..line.len() - trimmed.len()].chars().count() + 1;
                return Some((i + 1, col));
            }
        }
    }
    None
}

/// Where `key` sits in a whole content file's front matter, as a (line, column) of the file.
pub fn find_key_in_file(text: &str, key: &str) -> Option<(usize, usize)> {
    let s = split(text).ok()?;
    let (line, col) = find_key(s.front, key)?;
    Some(shift(text, &s, line, col))
}

/// The fields of a page's front matter as written; see `docs/content-model.md`.
#[derive(Debug, Clone, Deserialize)]
pub struct PageFrontMatter {
    /// Required.
    pub title: String,
    #[serde(default)]
    date: Option<Value>,
    /// Hugo spells it `lastmod`.
    #[serde(default, alias = "lastmod")]
    updated: Option<Value>,
    /// One-line description (meta, cards, the projects index).
    #[serde(default)]
    pub description: Option<String>,
    /// Tag names (with those of Zola's `[taxonomies] tags`, merged when parsed).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Category names (Hugo's `categories`, Zola's `[taxonomies] categories`).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Zola's form of tags and categories: `[taxonomies] tags = [...]`.
    #[serde(default)]
    taxonomies: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// A summary written out (Hugo's `summary`), used when the body has no `<!-- more -->`.
    #[serde(default)]
    pub summary: Option<String>,
    /// Hugo's page images: the first becomes the cover when `cover` is not set.
    #[serde(default)]
    images: Vec<String>,
    /// Left out of the build unless `--drafts`.
    #[serde(default)]
    pub draft: bool,
    /// Order in sections sorted by weight.
    #[serde(default)]
    pub weight: i64,
    /// Overrides the slug taken from the file name.
    #[serde(default)]
    pub slug: Option<String>,
    /// Old URLs that redirect here.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Template to render with.
    #[serde(default)]
    pub template: Option<String>,
    /// Source repository URL.
    #[serde(default)]
    pub repo: Option<String>,
    /// Cover image, relative to the page's folder or absolute.
    #[serde(default)]
    pub cover: Option<String>,
    /// The live terminal declaration.
    #[serde(default)]
    pub demo: Option<DemoFrontMatter>,
    /// Free-form data for templates.
    #[serde(default)]
    extra: Option<Value>,
}

/// `[demo]` of a project page: what its live terminal runs. Strict: a typo here is an error,
/// since this table decides what strangers may execute.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DemoFrontMatter {
    /// A command line (split like a shell would) or an argv array; default interactive bash.
    #[serde(default)]
    pub command: Option<CommandSpec>,
    /// Folder relative to the write-up's folder.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Build step run once per origin start.
    #[serde(default)]
    pub build: Option<String>,
    /// Seconds without input before the session ends.
    #[serde(default)]
    pub idle_timeout: Option<u64>,
    /// Wall-clock seconds a session may last.
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Message shown when a session starts.
    #[serde(default)]
    pub motd: Option<String>,
    /// A recorded session (asciicast v2) beside the write-up, shown before the live terminal.
    #[serde(default)]
    pub recording: Option<String>,
    /// The moment of the recording (seconds) whose screen is the poster; default its end.
    #[serde(default)]
    pub poster: Option<Seconds>,
    /// What `folio record` types and waits for to make the recording.
    #[serde(default)]
    pub script: Vec<ScriptStep>,
}

/// A number of seconds written in front matter (`0.5`, `3`): compared bit for bit, so the
/// front matter types stay `Eq`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Seconds(pub f64);

impl PartialEq for Seconds {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Seconds {}

/// One `[[demo.script]]` entry, exactly one of `type`, `wait`, `sleep` (and `timeout` only
/// with `wait`); checked when the demo is resolved.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScriptStep {
    /// Text typed into the terminal (`"make\n"`; a newline is sent as Enter).
    #[serde(default, rename = "type")]
    pub type_text: Option<String>,
    /// Text to wait for in the output.
    #[serde(default)]
    pub wait: Option<String>,
    /// How long `wait` may take (seconds).
    #[serde(default)]
    pub timeout: Option<Seconds>,
    /// A pause (seconds).
    #[serde(default)]
    pub sleep: Option<Seconds>,
}

/// A demo command: either a command line or an argv array.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum CommandSpec {
    /// `command = "./minirt scenes/demo.rt"`
    Line(String),
    /// `command = ["./minirt", "scenes/demo.rt"]`
    Argv(Vec<String>),
}

/// How a section orders its pages.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    /// Newest first; undated pages last.
    #[default]
    Date,
    /// Lightest first.
    Weight,
    /// Alphabetical.
    Title,
}

/// The fields of a section's `_index.md`.
#[derive(Debug, Clone, Deserialize)]
pub struct SectionFrontMatter {
    /// Required.
    pub title: String,
    /// One-line description.
    #[serde(default)]
    pub description: Option<String>,
    /// Order of the section's pages.
    #[serde(default)]
    pub sort_by: SortBy,
    /// Pages per list page; 0 lists all on one page.
    #[serde(default)]
    pub paginate_by: usize,
    /// Template of the section page itself.
    #[serde(default)]
    pub template: Option<String>,
    /// Default template of the section's pages.
    #[serde(default)]
    pub page_template: Option<String>,
    /// Order among sibling sections.
    #[serde(default)]
    pub weight: i64,
    /// Left out (with its pages) unless `--drafts`.
    #[serde(default)]
    pub draft: bool,
    /// Writes a feed of this section's pages beside its list page (`/posts/atom.xml`), for
    /// readers who follow one section: Zola's key (`generate_feed`, its older name, too).
    #[serde(default, alias = "generate_feed")]
    pub generate_feeds: bool,
    #[serde(default)]
    extra: Option<Value>,
}

/// A parsed date, kept with the text templates see.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// For ordering and the feed (UTC when an offset was given).
    pub at: NaiveDateTime,
    /// `YYYY-MM-DD` for plain dates, RFC 3339 otherwise: both work with Tera's `date` filter.
    pub text: String,
}

impl Date {
    /// Parses `2024-03-02`, `2024-03-02T10:00:00Z`, `2024-03-02T10:00:00+02:00`,
    /// `2024-03-02T10:00:00` and `2024-03-02 10:00:00`.
    pub fn parse(s: &str) -> Option<Date> {
        let s = s.trim();
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Some(Date {
                at: d.and_hms_opt(0, 0, 0)?,
                text: d.format("%Y-%m-%d").to_string(),
            });
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Date {
                at: dt.naive_utc(),
                text: dt.to_rfc3339(),
            });
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S%.f",
        ] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(Date {
                    at: dt,
                    text: dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                });
            }
        }
        None
    }

    /// RFC 3339 in UTC, as Atom and sitemaps want.
    pub fn rfc3339(&self) -> String {
        self.at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }
}

/// A page's front matter with dates parsed and `extra` normalised.
#[derive(Debug, Clone)]
pub struct PageMeta {
    /// The typed fields.
    pub fm: PageFrontMatter,
    /// `date`, parsed.
    pub date: Option<Date>,
    /// `updated`, parsed.
    pub updated: Option<Date>,
    /// `extra`, as a JSON object (empty when absent).
    pub extra: Value,
}

/// A section's front matter with `extra` normalised.
#[derive(Debug, Clone)]
pub struct SectionMeta {
    /// The typed fields.
    pub fm: SectionFrontMatter,
    /// `extra`, as a JSON object (empty when absent).
    pub extra: Value,
}

/// What parsing a page's front matter gave: the fields, and warnings that never fail a build.
#[derive(Debug)]
pub struct Parsed<T> {
    /// The parsed header.
    pub meta: T,
    /// Unknown keys and the like, with their positions.
    pub warnings: Vec<FmError>,
}

const PAGE_KEYS: &[&str] = &[
    "title",
    "date",
    "updated",
    "lastmod",
    "description",
    "tags",
    "categories",
    "taxonomies",
    "summary",
    "images",
    "draft",
    "weight",
    "slug",
    "aliases",
    "template",
    "repo",
    "cover",
    "demo",
    "extra",
];

const SECTION_KEYS: &[&str] = &[
    "title",
    "description",
    "sort_by",
    "paginate_by",
    "template",
    "page_template",
    "weight",
    "draft",
    "generate_feeds",
    "generate_feed",
    "extra",
];

/// One warning per top-level key not in `known`, at its line, with the closest known key.
/// Pages and sections share this policy: an unknown key never fails a build (sites moved in
/// from Zola or Hugo carry keys folio has no use for), but it is never silent either.
fn unknown_keys(text: &str, split: &Split<'_>, known: &[&str]) -> Vec<FmError> {
    let mut warnings = Vec::new();
    let keys = top_level_keys(split).unwrap_or_default();
    for key in keys.iter().filter(|k| !known.contains(&k.as_str())) {
        let pos = find_key(split.front, key).map(|(l, c)| shift(text, split, l, c));
        let hint = suggest(key, known)
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| "; free-form keys go under [extra]".into());
        warnings.push((
            pos,
            format!("unknown front matter key `{key}` is ignored{hint}"),
        ));
    }
    warnings
}

/// Parses a page's front matter. `text` is the whole file (for positions).
///
/// Zola's and Hugo's forms are read as they are: `[taxonomies]` tags and categories join
/// `tags` and `categories`, `lastmod` is `updated`, the first of `images` is the cover.
pub fn parse_page(text: &str, split: &Split<'_>) -> Result<Parsed<PageMeta>, FmError> {
    let mut fm: PageFrontMatter = deserialize(split, text)?;
    let mut warnings = unknown_keys(text, split, PAGE_KEYS);
    for (name, terms) in fm.taxonomies.take().unwrap_or_default() {
        let into = match name.as_str() {
            "tags" => &mut fm.tags,
            "categories" => &mut fm.categories,
            _ => {
                let pos = find_key(split.front, &name).map(|(l, c)| shift(text, split, l, c));
                warnings.push((
                    pos,
                    format!("taxonomy `{name}` is ignored: folio has tags and categories"),
                ));
                continue;
            }
        };
        for t in terms {
            if !into.contains(&t) {
                into.push(t);
            }
        }
    }
    if fm.cover.is_none() {
        fm.cover = fm.images.first().cloned();
    }
    let date = parse_date_field(text, split, "date", fm.date.as_ref())?;
    let updated = parse_date_field(text, split, "updated", fm.updated.as_ref())?;
    let extra = normalise(
        fm.extra
            .clone()
            .unwrap_or(Value::Object(Default::default())),
    );
    if fm.title.trim().is_empty() {
        let pos = find_key(split.front, "title").map(|(l, c)| shift(text, split, l, c));
        return Err((pos, "`title` is empty".into()));
    }
    Ok(Parsed {
        meta: PageMeta {
            fm,
            date,
            updated,
            extra,
        },
        warnings,
    })
}

/// Parses a section's front matter (`_index.md`). Unknown keys are warnings, as in pages.
pub fn parse_section(text: &str, split: &Split<'_>) -> Result<Parsed<SectionMeta>, FmError> {
    let fm: SectionFrontMatter = deserialize(split, text)?;
    let warnings = unknown_keys(text, split, SECTION_KEYS);
    let extra = normalise(
        fm.extra
            .clone()
            .unwrap_or(Value::Object(Default::default())),
    );
    Ok(Parsed {
        meta: SectionMeta { fm, extra },
        warnings,
    })
}

fn shift(text: &str, split: &Split<'_>, line: usize, col: usize) -> (usize, usize) {
    let (fl, _) = line_col(text, split.front_offset);
    (fl + line - 1, col)
}

fn deserialize<T: DeserializeOwned>(split: &Split<'_>, text: &str) -> Result<T, FmError> {
    match split.format {
        Format::Toml => toml::from_str(split.front).map_err(|e| {
            let missing = e.message().starts_with("missing field");
            let pos = match e.span() {
                // a missing field has no place of its own: point at the opening delimiter
                Some(s) if !missing => line_col(text, split.front_offset + s.start),
                _ => (1, 1),
            };
            (Some(pos), e.message().trim().to_string())
        }),
        Format::Yaml => serde_norway::from_str(split.front).map_err(|e| {
            let pos = e
                .location()
                .map(|l| line_col(text, split.front_offset + l.index()))
                .unwrap_or_else(|| (1, 1));
            let msg = e.to_string();
            let msg = msg
                .rfind(" at line ")
                .map_or(msg.as_str(), |i| &msg[..i])
                .to_string();
            (Some(pos), msg)
        }),
    }
}

fn top_level_keys(split: &Split<'_>) -> Result<Vec<String>, FmError> {
    // Syntax errors are reported by the typed pass with better messages; here we only list keys.
    Ok(match split.format {
        Format::Toml => toml::from_str::<toml::Table>(split.front)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default(),
        Format::Yaml => serde_norway::from_str::<serde_norway::Mapping>(split.front)
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn parse_date_field(
    text: &str,
    split: &Split<'_>,
    key: &str,
    v: Option<&Value>,
) -> Result<Option<Date>, FmError> {
    let Some(v) = v else { return Ok(None) };
    let v = normalise(v.clone());
    let pos = || find_key(split.front, key).map(|(l, c)| shift(text, split, l, c));
    match v.as_str() {
        Some(s) => Date::parse(s).map(Some).ok_or_else(|| {
            (
                pos(),
                format!("`{key}` = {s:?} is not a date (use 2024-03-02 or 2024-03-02T10:00:00Z)"),
            )
        }),
        None => Err((
            pos(),
            format!("invalid type: `{key}` must be a date such as 2024-03-02, got {v}"),
        )),
    }
}

/// Replaces the TOML crate's private datetime maps with their string form.
fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some(Value::String(s)) = m.get("$__toml_private_datetime") {
                    return Value::String(s.clone());
                }
            }
            Value::Object(m.into_iter().map(|(k, v)| (k, normalise(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        other => other,
    }
}

/// The known key closest to a misspelt one, if any is close (two edits, or one in three
/// characters for longer keys).
pub fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let most = 2.max(key.chars().count().div_ceil(3));
    known
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(d, _)| *d <= most)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Result<Parsed<PageMeta>, FmError> {
        let s = split(text)?;
        parse_page(text, &s)
    }

    #[test]
    fn toml_and_yaml_front_matter() {
        let p = page("+++\ntitle = \"A\"\ndate = 2024-03-02\ntags = [\"c\"]\n[extra]\nfeatured = true\n+++\nbody").unwrap();
        assert_eq!(p.meta.fm.title, "A");
        assert_eq!(p.meta.date.unwrap().text, "2024-03-02");
        assert_eq!(p.meta.extra["featured"], Value::Bool(true));
        let p = page("---\ntitle: B\ndate: 2024-03-02T10:00:00Z\n---\nbody").unwrap();
        assert_eq!(p.meta.fm.title, "B");
        assert_eq!(p.meta.date.unwrap().rfc3339(), "2024-03-02T10:00:00Z");
    }

    #[test]
    fn missing_title_points_at_the_front_matter() {
        let (pos, msg) = page("+++\ndate = 2024-01-01\n+++\n").unwrap_err();
        assert!(msg.contains("missing field `title`"), "{msg}");
        assert_eq!(pos, Some((1, 1)));
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let (pos, msg) = page("+++\ntitle = \"x\"\nweight = \"heavy\"\n+++\n").unwrap_err();
        assert_eq!(pos, Some((3, 10)), "{msg}");
        assert!(msg.contains("invalid type"), "{msg}");
        let (pos, _) = page("---\ntitle: x\ntags: 3\n---\n").unwrap_err();
        assert_eq!(pos.unwrap().0, 3);
    }

    #[test]
    fn syntax_error_has_a_position_and_unclosed_is_caught() {
        let (pos, _) = page("+++\ntitle = \"x\nweight = 1\n+++\n").unwrap_err();
        assert_eq!(pos.unwrap().0, 2);
        let (pos, msg) = page("+++\ntitle = \"x\"\n").unwrap_err();
        assert_eq!(pos, Some((1, 1)));
        assert!(msg.contains("never closed"));
        assert!(page("# no front matter\n").is_err());
    }

    #[test]
    fn unknown_keys_warn_with_a_hint_and_extra_is_free() {
        let p = page("+++\ntitle = \"x\"\ntittle = \"y\"\n[extra]\nanything = 1\n+++\n").unwrap();
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.warnings[0].0, Some((3, 1)));
        assert!(p.warnings[0].1.contains("did you mean `title`"));
    }

    #[test]
    fn zola_and_hugo_forms_are_read_as_they_are() {
        let p = page("+++\ntitle = \"z\"\n[taxonomies]\ntags = [\"Rust\", \"CLI\"]\ncategories = [\"Notes\"]\nseries = [\"x\"]\n+++\n").unwrap();
        assert_eq!(p.meta.fm.tags, ["Rust", "CLI"]);
        assert_eq!(p.meta.fm.categories, ["Notes"]);
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert_eq!(p.warnings[0].0, Some((6, 1)));
        let p = page("---\ntitle: h\nlastmod: 2024-05-01\ncategories: [a]\nsummary: Short.\nimages: [/img/a.png]\n---\n").unwrap();
        assert_eq!(p.meta.updated.unwrap().text, "2024-05-01");
        assert_eq!(p.meta.fm.categories, ["a"]);
        assert_eq!(p.meta.fm.summary.as_deref(), Some("Short."));
        assert_eq!(p.meta.fm.cover.as_deref(), Some("/img/a.png"));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn unknown_section_keys_warn_like_page_keys() {
        let text = "+++\ntitle = \"s\"\npaginateby = 3\n+++\n";
        let s = split(text).unwrap();
        let p = parse_section(text, &s).unwrap();
        assert_eq!(p.warnings[0].0, Some((3, 1)));
        assert!(p.warnings[0].1.contains("did you mean `paginate_by`"));
    }

    #[test]
    fn demo_table_is_strict() {
        let (pos, msg) =
            page("+++\ntitle = \"x\"\n[demo]\nworkdir = \"src\"\ncomand = \"ls\"\n+++\n")
                .unwrap_err();
        assert!(msg.contains("comand"), "{msg}");
        assert_eq!(pos.unwrap().0, 5);
        let p = page("+++\ntitle = \"x\"\n[demo]\ncommand = [\"./a\", \"b\"]\n+++\n").unwrap();
        assert_eq!(
            p.meta.fm.demo.unwrap().command,
            Some(CommandSpec::Argv(vec!["./a".into(), "b".into()]))
        );
    }

    #[test]
    fn bad_date_is_an_error() {
        let (pos, msg) = page("+++\ntitle = \"x\"\ndate = \"last tuesday\"\n+++\n").unwrap_err();
        assert_eq!(pos, Some((3, 1)));
        assert!(msg.contains("not a date"));
    }
}
