//! The content tree: sections, pages and page bundles read from `content/`, with their URLs.
//!
//! Loading reads and validates every file (front matter, slugs, demos, covers) in parallel and
//! reports every problem; it does not render markdown (see `markdown`), so `folio-pty` can use it
//! cheaply to learn which demos a site declares.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rayon::prelude::*;

use crate::diagnostics::{display_path, line_col, Diagnostic, Diagnostics};
use crate::frontmatter::{self, CommandSpec, FmError, PageMeta, SectionMeta, SortBy, Split};

/// A markdown file as read from disk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Path shown in messages (relative to the site root).
    pub shown: PathBuf,
    /// Path under `content/` with `/` separators: what `@/…` links name.
    pub content_path: String,
    /// The whole file (shared with serve's cache of unchanged files: a rebuild does not copy
    /// the text of every file it did not read again).
    pub text: Arc<str>,
    /// Where the markdown body starts in `text`.
    pub body_offset: usize,
}

impl SourceFile {
    /// The markdown after the front matter.
    pub fn body(&self) -> &str {
        &self.text[self.body_offset..]
    }

    /// A (line, column) for a byte offset into the body.
    pub fn body_pos(&self, offset: usize) -> (usize, usize) {
        line_col(&self.text, self.body_offset + offset)
    }
}

/// A page: one write-up.
#[derive(Debug, Clone)]
pub struct Page {
    /// The markdown file.
    pub file: SourceFile,
    /// Its front matter, shared with the parse cache (`folio serve` loads an unchanged file's
    /// page again after every edit without copying it).
    pub meta: Arc<PageMeta>,
    /// Last URL segment; also the page's id for the view counter and its demo.
    pub slug: String,
    /// Site path, e.g. `/projects/minirt/`.
    pub path: String,
    /// Key of the section the page belongs to (`""` for top-level pages).
    pub section: String,
    /// Files that ship beside a bundle's `index.md`: (absolute source, output path under the site).
    pub assets: Vec<(PathBuf, String)>,
    /// Site path of the cover image, resolved.
    pub cover: Option<String>,
    /// The live terminal the page declares.
    pub demo: Option<Demo>,
    /// Alias paths (normalised to `/…/`).
    pub aliases: Vec<String>,
}

/// A section: a folder of pages with an `_index.md` (or without one: then it is not rendered).
#[derive(Debug, Clone)]
pub struct Section {
    /// `""` for the home page, else the folder under `content/` (`projects`).
    pub key: String,
    /// The `_index.md`, if the folder has one.
    pub file: Option<SourceFile>,
    /// Its front matter (defaults when there is no `_index.md`).
    pub meta: Option<SectionMeta>,
    /// Site path, e.g. `/projects/`.
    pub path: String,
    /// Indices into [`Content::pages`], in the section's order.
    pub pages: Vec<usize>,
    /// Keys of direct subsections.
    pub subsections: Vec<String>,
}

impl Section {
    /// The section's title (its folder name without `_index.md`).
    pub fn title(&self) -> String {
        self.meta
            .as_ref()
            .map(|m| m.fm.title.clone())
            .unwrap_or_else(|| self.key.rsplit('/').next().unwrap_or("").to_string())
    }

    /// How the section sorts its pages.
    pub fn sort_by(&self) -> SortBy {
        self.meta.as_ref().map(|m| m.fm.sort_by).unwrap_or_default()
    }

    /// Whether the section gets pages of its own in the output.
    pub fn is_rendered(&self) -> bool {
        self.file.is_some()
    }

    /// Whether the build writes list pages for it: sections with an `_index.md`, and the home
    /// page always.
    pub fn gets_page(&self) -> bool {
        self.is_rendered() || self.key.is_empty()
    }

    /// Site path of the section's own feed (`/posts/atom.xml`) when its front matter asks for
    /// one. Never for the home page: the site's feed, `/atom.xml`, already holds every page.
    pub fn feed_path(&self) -> Option<String> {
        let wanted = self.meta.as_ref().is_some_and(|m| m.fm.generate_feeds);
        (wanted && !self.key.is_empty() && self.is_rendered())
            .then(|| format!("{}atom.xml", self.path))
    }

    /// Pages per list page (0: not paginated).
    pub fn paginate_by(&self) -> usize {
        self.meta.as_ref().map_or(0, |m| m.fm.paginate_by)
    }

    /// How many list pages the section has (at least one).
    pub fn pager_count(&self) -> usize {
        match self.paginate_by() {
            0 => 1,
            per => self.pages.len().div_ceil(per).max(1),
        }
    }
}

/// A page's live terminal, resolved against the file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demo {
    /// The page's slug.
    pub id: String,
    /// argv to run; default `["/bin/bash"]`.
    pub command: Vec<String>,
    /// Absolute, canonical folder holding the demo's files.
    pub workdir: PathBuf,
    /// Shell command run once per origin start.
    pub build: Option<String>,
    /// Seconds without input before the session ends (None: site default).
    pub idle_timeout: Option<u64>,
    /// Wall-clock seconds (None: site default).
    pub timeout: Option<u64>,
    /// Shown when a session starts.
    pub motd: Option<String>,
    /// The recorded session shown before the live one, if the page names one.
    pub recording: Option<Recording>,
    /// What `folio record` does to make the recording.
    pub script: Vec<ScriptAction>,
}

/// `[demo] recording`: where the file is and where the page names it, so the build can
/// report a missing or unreadable file at the front matter's line (the file itself is read
/// by the build, not here: `folio record` makes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Absolute path of the `.cast` file (beside the write-up; it need not exist yet).
    pub path: PathBuf,
    /// As written in the front matter.
    pub name: String,
    /// Line and column of `recording` in the write-up.
    pub pos: Option<(usize, usize)>,
    /// `[demo] poster`: the moment whose screen is the poster; `None` is the end.
    pub poster: Option<Duration>,
}

/// One resolved `[[demo.script]]` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptAction {
    /// Type this text (each `\n` is sent as Enter, `\r`).
    Type(String),
    /// Wait until the output shows this text, for at most `timeout`.
    Wait {
        /// The text.
        text: String,
        /// How long to wait before the recording fails.
        timeout: Duration,
    },
    /// Pause.
    Sleep(Duration),
}

/// How long a `wait` step waits when it does not say.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a single `wait` or `sleep` step may last.
const MAX_STEP: f64 = 600.0;

/// A file under `content/` that is neither markdown nor in a bundle: copied as is.
#[derive(Debug, Clone)]
pub struct LooseFile {
    /// Absolute source.
    pub source: PathBuf,
    /// Output path under the site (no leading `/`).
    pub output: String,
}

/// Everything under `content/`.
#[derive(Debug, Default)]
pub struct Content {
    /// All published pages (drafts only with `--drafts`), in path order.
    pub pages: Vec<Page>,
    /// Sections by key; `""` is the home page.
    pub sections: BTreeMap<String, Section>,
    /// Non-markdown files outside bundles.
    pub loose_files: Vec<LooseFile>,
}

impl Content {
    /// Lets go of every markdown body (each file keeps its front matter): for a build that has
    /// rendered and checked them and reads only the front matter after (the positions of its
    /// keys). At 10,000 pages the bodies are some 100 MB held through rendering for nothing.
    /// [`SourceFile::body`] is empty afterwards.
    pub fn forget_bodies(&mut self) {
        let files = self
            .pages
            .iter_mut()
            .map(|p| &mut p.file)
            .chain(self.sections.values_mut().filter_map(|s| s.file.as_mut()));
        for f in files {
            let head: Arc<str> = Arc::from(&f.text[..f.body_offset]);
            f.text = head;
        }
    }

    /// A map from every `@/` content path to its URL path.
    pub fn link_table(&self) -> HashMap<String, String> {
        let mut m = HashMap::new();
        for p in &self.pages {
            m.insert(p.file.content_path.clone(), p.path.clone());
        }
        for s in self.sections.values() {
            if let Some(f) = &s.file {
                m.insert(f.content_path.clone(), s.path.clone());
            }
        }
        m
    }
}

/// Options of a content load.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Publish drafts too.
    pub drafts: bool,
}

/// Turns text into a URL slug: lowercase ASCII letters and digits, other runs become one `-`.
///
/// Letters outside ASCII are transliterated first (through `deunicode`, the table Zola uses):
/// `Café` → `cafe`, `Привет мир` → `privet-mir`, `日本語` → `ri-ben-yu`. Text that is ASCII
/// already gives the slug it always gave.
pub fn slugify(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    let mut push = |c: char, out: &mut String| {
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c.to_ascii_lowercase());
        } else if c == '_' && !out.is_empty() {
            if dash {
                out.push('-');
                dash = false;
            }
            out.push('_');
        } else {
            dash = true;
        }
    };
    for c in s.chars() {
        if c.is_ascii() {
            push(c, &mut out);
        } else {
            // Each transliterated character stands apart from its neighbours when its
            // transliteration is a word of its own (`日本` → `ri ben`).
            match deunicode::deunicode_char(c) {
                Some(t) => t.chars().for_each(|t| push(t, &mut out)),
                None => push(' ', &mut out),
            }
        }
    }
    out
}

/// The slug of a tag: [`slugify`], except that the marks that tell programming languages
/// apart are spelt out, so that distinct tags keep distinct pages. At the end of a word, each
/// `+` becomes `p` and a `#` becomes `sharp`; a `.` that starts a word becomes `dot`:
/// `C` → `c`, `C++` → `cpp`, `C#` → `csharp`, `F#` → `fsharp`, `.NET` → `dotnet`,
/// `Node.js` → `node-js`.
pub fn tag_slug(tag: &str) -> String {
    // Most tags are a slug already (`rust`, `web-assembly`): every build slugs every page's
    // tags, so those skip the spelling out and the transliteration, which give them back
    // unchanged.
    if is_plain_slug(tag) {
        return tag.to_string();
    }
    spelt_tag_slug(tag)
}

/// [`tag_slug`] the long way, for any tag.
fn spelt_tag_slug(tag: &str) -> String {
    let chars: Vec<char> = tag.chars().collect();
    let mut spelt = String::with_capacity(tag.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let word_before = prev.is_some_and(|p| p.is_alphanumeric() || p == '+');
        let word_ends = chars[i + 1..]
            .iter()
            .find(|n| **n != '+')
            .is_none_or(|n| !n.is_alphanumeric());
        match c {
            '+' if word_before && word_ends => spelt.push('p'),
            '#' if prev.is_some_and(char::is_alphanumeric) && word_ends => spelt.push_str("sharp"),
            '.' if !prev.is_some_and(char::is_alphanumeric)
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric()) =>
            {
                spelt.push_str(" dot")
            }
            c => spelt.push(c),
        }
    }
    slugify(&spelt)
}

/// Whether `s` is its own slug: lowercase ASCII words of letters and digits joined by single
/// dashes.
fn is_plain_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Whether `s` may be a page slug (and so a counter key and a demo id).
/// The rule is the terminal protocol's ([`terminal_protocol::is_valid_demo_id`]), defined once.
pub fn is_valid_slug(s: &str) -> bool {
    terminal_protocol::is_valid_demo_id(s)
}

/// Splits a command line the way a POSIX shell would for plain words and quotes (no expansion).
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("trailing backslash".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().ok_or("trailing backslash")?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        args.push(cur);
    }
    Ok(args)
}

/// `path` relative to `base`, `/`-separated (empty when `path` is not under `base`).
fn rel_slash(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .map(|p| {
            p.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

enum Kind {
    Section(String),
    Page {
        section: String,
        bundle: Option<PathBuf>,
    },
}

/// Reads `content/` under `root`. Returns what could be loaded and every diagnostic found.
pub fn load(root: &Path, opts: LoadOptions) -> (Content, Diagnostics) {
    let (content, diags, _) = load_inner(root, opts, None);
    (content, diags)
}

/// Front matter as parsed by an earlier load, by file: what [`load_cached`] reuses for a file
/// whose text is byte for byte the text it was parsed from. Parsing TOML or YAML is most of
/// what loading a large site costs; reading the files again is cheap, and comparing the text
/// (not a modification time) keeps the reuse exact.
///
/// A file is not even read again when its size, modification and change times, inode and
/// device are those it had when it was read, it was not named as changed, and it had not
/// been modified for [`RACY`] before it was read (git's "racily clean" rule: a write after
/// that read must then show in the stamp, however coarse the file system's clock).
#[derive(Default, Clone)]
pub struct ParseCache {
    map: HashMap<PathBuf, Arc<CachedHeader>>,
    /// Files the load that made this cache actually read.
    read: usize,
}

/// How long before it was read a file must have been last modified for its stamp alone to
/// vouch for its text on the next load.
pub const RACY: std::time::Duration = std::time::Duration::from_secs(1);

/// What identifies a file's version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: std::time::SystemTime,
    changed: (i64, i64),
    ino: u64,
    dev: u64,
}

impl Stamp {
    #[cfg(unix)]
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            len: m.len(),
            modified: m.modified().ok()?,
            changed: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        })
    }

    #[cfg(not(unix))]
    fn of(_: &Path) -> Option<Stamp> {
        None
    }
}

impl ParseCache {
    /// How many files the load that returned this cache read (the others were vouched for
    /// by their stamps).
    pub fn files_read(&self) -> usize {
        self.read
    }

    /// Files whose front matter is held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A file's parsed front matter and the text it was parsed from.
struct CachedHeader {
    text: Arc<str>,
    /// The file's stamp just before it was read, and when that was.
    stamp: Option<Stamp>,
    read_at: std::time::SystemTime,
    section: bool,
    parsed: Result<(usize, Header), FmError>,
}

#[derive(Clone)]
enum Header {
    Page(Arc<PageMeta>, Vec<FmError>),
    Section(SectionMeta, Vec<FmError>),
}

/// Cuts and parses a content file's front matter: (body offset, header).
fn parse_header(text: &str, section: bool) -> Result<(usize, Header), FmError> {
    let split: Split<'_> = frontmatter::split(text)?;
    let header = if section {
        let p = frontmatter::parse_section(text, &split)?;
        Header::Section(p.meta, p.warnings)
    } else {
        let p = frontmatter::parse_page(text, &split)?;
        Header::Page(Arc::new(p.meta), p.warnings)
    };
    Ok((split.body_offset, header))
}

/// [`load`], reusing the front matter of files whose text `cache` holds unchanged. Returns
/// the cache for the next load: the files of this one (a removed file drops out; a file that
/// failed to parse is held with its error).
///
/// `touched` names files or folders known to have changed (the watcher's report): files
/// under them are read whatever their stamps say.
pub fn load_cached(
    root: &Path,
    opts: LoadOptions,
    cache: &ParseCache,
    touched: &[PathBuf],
) -> (Content, Diagnostics, ParseCache) {
    let (content, diags, next) = load_inner(root, opts, Some((cache, touched)));
    (content, diags, next.unwrap_or_default())
}

fn load_inner(
    root: &Path,
    opts: LoadOptions,
    cache: Option<(&ParseCache, &[PathBuf])>,
) -> (Content, Diagnostics, Option<ParseCache>) {
    let content_dir = root.join("content");
    let mut diags = Diagnostics::new();
    let mut content = Content::default();
    if !content_dir.is_dir() {
        diags.push(Diagnostic::error(
            "content",
            None,
            "no content/ folder: add content/_index.md for the home page",
        ));
        return (content, diags, cache.map(|_| ParseCache::default()));
    }

    // 1. List files, find bundles.
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(&content_dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
    {
        match entry {
            Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
            Ok(_) => {}
            Err(e) => {
                let p = e
                    .path()
                    .map(|p| display_path(root, p))
                    .unwrap_or_else(|| "content".into());
                diags.push(Diagnostic::error(
                    p,
                    None,
                    format!(
                        "cannot read: {}",
                        e.io_error()
                            .map_or_else(|| e.to_string(), |io| io.to_string())
                    ),
                ));
            }
        }
    }
    let bundles: HashSet<PathBuf> = files
        .iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "index.md"))
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .filter(|d| d != &content_dir && !d.join("_index.md").exists())
        .collect();
    let bundle_of = |f: &Path| -> Option<PathBuf> {
        f.ancestors()
            .skip(1)
            .find(|a| bundles.contains(*a))
            .map(Path::to_path_buf)
    };

    let rel_key = |dir: &Path| rel_slash(dir, &content_dir);

    let mut md: Vec<(PathBuf, Kind)> = Vec::new();
    let mut bundle_assets: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    for f in files {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = f.parent().unwrap_or(&content_dir).to_path_buf();
        if name == "_index.md" {
            md.push((f, Kind::Section(rel_key(&parent))));
        } else if name == "index.md" && bundles.contains(&parent) {
            let section = rel_key(parent.parent().unwrap_or(&content_dir));
            md.push((
                f,
                Kind::Page {
                    section,
                    bundle: Some(parent),
                },
            ));
        } else if let Some(b) = bundle_of(&f) {
            bundle_assets.entry(b).or_default().push(f);
        } else if name.ends_with(".md") {
            md.push((
                f,
                Kind::Page {
                    section: rel_key(&parent),
                    bundle: None,
                },
            ));
        } else {
            let output = rel_key(&f);
            content.loose_files.push(LooseFile { source: f, output });
        }
    }

    // 2. Read and parse in parallel.
    #[allow(clippy::type_complexity)]
    let results: Vec<(
        Result<Loaded, Diagnostics>,
        Option<(PathBuf, Arc<CachedHeader>, bool)>,
    )> = md
        .into_par_iter()
        .map(|(path, kind)| read_one(root, &content_dir, path, kind, &bundle_assets, opts, cache))
        .collect();

    let mut next = cache.map(|_| ParseCache::default());
    let mut pages = Vec::new();
    for (r, header) in results {
        if let (Some(next), Some((path, h, read))) = (next.as_mut(), header) {
            next.read += usize::from(read);
            next.map.insert(path, h);
        }
        match r {
            Ok(Loaded::Page(p, w)) => {
                diags.extend(w);
                if let Some(p) = p {
                    pages.push(*p);
                }
            }
            Ok(Loaded::Section(s, w)) => {
                diags.extend(w);
                if let Some(s) = s {
                    content.sections.insert(s.key.clone(), *s);
                }
            }
            Err(d) => diags.extend(d),
        }
    }

    // 3. Drafts: a draft section hides its pages.
    if !opts.drafts {
        let draft_sections: HashSet<String> = content
            .sections
            .values()
            .filter(|s| s.meta.as_ref().is_some_and(|m| m.fm.draft))
            .map(|s| s.key.clone())
            .collect();
        content.sections.retain(|k, _| !draft_sections.contains(k));
        pages.retain(|p| {
            !draft_sections
                .iter()
                .any(|d| p.section == *d || p.section.starts_with(&format!("{d}/")))
        });
    }

    // 4. Implicit sections for folders without `_index.md`, and the tree.
    let keys: Vec<String> = pages.iter().map(|p| p.section.clone()).collect();
    for key in keys {
        let mut k = key;
        loop {
            content
                .sections
                .entry(k.clone())
                .or_insert_with(|| Section {
                    path: section_path(&k),
                    key: k.clone(),
                    file: None,
                    meta: None,
                    pages: vec![],
                    subsections: vec![],
                });
            if k.is_empty() {
                break;
            }
            k = k
                .rsplit_once('/')
                .map(|(a, _)| a.to_string())
                .unwrap_or_default();
        }
    }
    let all_keys: Vec<String> = content.sections.keys().cloned().collect();
    for k in &all_keys {
        if k.is_empty() {
            continue;
        }
        let parent = k
            .rsplit_once('/')
            .map(|(a, _)| a.to_string())
            .unwrap_or_default();
        if let Some(p) = content.sections.get_mut(&parent) {
            p.subsections.push(k.clone());
        }
    }

    // 5. Order pages, attach them to sections.
    pages.sort_by(|a, b| a.path.cmp(&b.path));
    for (i, p) in pages.iter().enumerate() {
        if let Some(s) = content.sections.get_mut(&p.section) {
            s.pages.push(i);
        }
    }
    for s in content.sections.values_mut() {
        let by = s.sort_by();
        s.pages.sort_by(|&a, &b| compare(&pages[a], &pages[b], by));
    }

    // 6. Demo ids must be unique: they name the terminal endpoint.
    let mut demo_ids: HashMap<&str, &Page> = HashMap::new();
    for p in &pages {
        if let Some(d) = &p.demo {
            if let Some(other) = demo_ids.insert(&d.id, p) {
                diags.push(Diagnostic::error(
                    &p.file.shown,
                    frontmatter::find_key_in_file(&p.file.text, "slug"),
                    format!(
                        "demo id `{}` is also declared by {}",
                        d.id,
                        other.file.shown.display()
                    ),
                ));
            }
        }
    }
    content.pages = pages;
    (content, diags, next)
}

fn compare(a: &Page, b: &Page, by: SortBy) -> std::cmp::Ordering {
    let tie = || a.path.cmp(&b.path);
    let by_title = || {
        a.meta
            .fm
            .title
            .to_lowercase()
            .cmp(&b.meta.fm.title.to_lowercase())
            .then_with(tie)
    };
    match by {
        SortBy::Date => match (&a.meta.date, &b.meta.date) {
            (Some(x), Some(y)) => y.cmp(x).then_with(tie),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => by_title(),
        },
        SortBy::Weight => a.meta.fm.weight.cmp(&b.meta.fm.weight).then_with(tie),
        SortBy::Title => by_title(),
    }
}

/// The site path of a section key.
pub fn section_path(key: &str) -> String {
    if key.is_empty() {
        return "/".into();
    }
    let mut p = String::from("/");
    for seg in key.split('/') {
        p.push_str(&slugify(seg));
        p.push('/');
    }
    p
}

enum Loaded {
    Page(Option<Box<Page>>, Vec<Diagnostic>),
    Section(Option<Box<Section>>, Vec<Diagnostic>),
}

/// Reads one markdown file, with its front matter from `cache` when the text is unchanged.
/// Also returns the parsed header for the next cache (with a cache only).
#[allow(clippy::type_complexity)]
fn read_one(
    root: &Path,
    content_dir: &Path,
    path: PathBuf,
    kind: Kind,
    bundle_assets: &HashMap<PathBuf, Vec<PathBuf>>,
    opts: LoadOptions,
    cache: Option<(&ParseCache, &[PathBuf])>,
) -> (
    Result<Loaded, Diagnostics>,
    Option<(PathBuf, Arc<CachedHeader>, bool)>,
) {
    let shown = display_path(root, &path);
    let section = matches!(kind, Kind::Section(_));
    let before = cache.map(|_| (Stamp::of(&path), std::time::SystemTime::now()));
    // Unchanged by its stamp, and settled before it was read: the text held is the file's.
    let vouched = cache.and_then(|(c, touched)| {
        let h = c.map.get(&path)?;
        let (stamp, _) = before?;
        let settled = h
            .stamp
            .and_then(|s| s.modified.checked_add(RACY))
            .is_some_and(|t| t < h.read_at);
        (h.section == section
            && stamp.is_some()
            && h.stamp == stamp
            && settled
            && !touched.iter().any(|t| path.starts_with(t)))
        .then(|| h.clone())
    });
    let text = match &vouched {
        Some(h) => h.text.clone(),
        None => match crate::diagnostics::read_text(&path, &shown) {
            Ok(t) => Arc::from(t),
            Err(d) => return (Err(d.into()), None),
        },
    };
    let read = vouched.is_none();
    let header = cache.map(|(c, _)| {
        vouched
            .or_else(|| {
                c.map
                    .get(&path)
                    .filter(|h| h.section == section && h.text == text)
                    .map(|h| {
                        // Same text: the parse is reused, under the stamp just taken.
                        let (stamp, read_at) = before.unwrap_or((None, h.read_at));
                        Arc::new(CachedHeader {
                            text: text.clone(),
                            stamp,
                            read_at,
                            section,
                            parsed: h.parsed.clone(),
                        })
                    })
            })
            .unwrap_or_else(|| {
                let (stamp, read_at) = before.unwrap_or((None, std::time::SystemTime::now()));
                Arc::new(CachedHeader {
                    parsed: parse_header(&text, section),
                    text: text.clone(),
                    stamp,
                    read_at,
                    section,
                })
            })
    });
    let parsed = match &header {
        Some(h) => h.parsed.clone(),
        None => parse_header(&text, section),
    };
    let next = header.map(|h| (path.clone(), h, read));
    (
        read_parsed(
            content_dir,
            path,
            kind,
            bundle_assets,
            opts,
            text,
            parsed,
            shown,
        ),
        next,
    )
}

#[allow(clippy::too_many_arguments)]
fn read_parsed(
    content_dir: &Path,
    path: PathBuf,
    kind: Kind,
    bundle_assets: &HashMap<PathBuf, Vec<PathBuf>>,
    opts: LoadOptions,
    text: Arc<str>,
    parsed: Result<(usize, Header), FmError>,
    shown: PathBuf,
) -> Result<Loaded, Diagnostics> {
    let content_path = rel_slash(&path, content_dir);
    let err = |pos: Option<(usize, usize)>, msg: String| {
        Diagnostics::from(Diagnostic::error(&shown, pos, msg))
    };
    let (body_offset, header) = parsed.map_err(|(p, m)| err(p, m))?;
    match (kind, header) {
        (Kind::Section(key), Header::Section(meta, fm_warnings)) => {
            let parsed = frontmatter::Parsed {
                meta,
                warnings: fm_warnings,
            };
            let mut warnings: Vec<Diagnostic> = parsed
                .warnings
                .iter()
                .map(|(p, m)| Diagnostic::warning(&shown, *p, m.clone()))
                .collect();
            if let Some(t) = &parsed.meta.fm.template {
                check_template_name(&text, t, "template", &shown, &mut warnings);
            }
            let file = SourceFile {
                path: path.clone(),
                shown: shown.clone(),
                content_path,
                text: Arc::from(""),
                body_offset,
            };
            let file = SourceFile { text, ..file };
            let s = Section {
                path: section_path(&key),
                key,
                file: Some(file),
                meta: Some(parsed.meta),
                pages: vec![],
                subsections: vec![],
            };
            Ok(Loaded::Section(Some(Box::new(s)), warnings))
        }
        (Kind::Page { section, bundle }, Header::Page(meta, warnings)) => {
            let mut diags = Diagnostics::new();
            let warnings: Vec<Diagnostic> = warnings
                .into_iter()
                .map(|(p, m)| Diagnostic::warning(&shown, p, m))
                .collect();
            if meta.fm.draft && !opts.drafts {
                return Ok(Loaded::Page(None, warnings));
            }
            let key_pos = |k: &str| frontmatter::find_key_in_file(&text, k);

            let stem = match &bundle {
                Some(b) => b
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                None => path
                    .file_stem()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            let slug = match &meta.fm.slug {
                Some(s) if is_valid_slug(s) => s.clone(),
                Some(s) => {
                    diags.push(Diagnostic::error(&shown, key_pos("slug"), format!("slug {s:?} is not valid: use lowercase letters, digits, `-` and `_` (at most {})", terminal_protocol::MAX_ID_LEN)));
                    slugify(s)
                }
                None => {
                    let s = slugify(&stem);
                    if !is_valid_slug(&s) {
                        diags.push(Diagnostic::error(&shown, None, format!("cannot make a slug from the file name {stem:?}: set `slug` in the front matter")));
                    }
                    s
                }
            };
            let page_path = format!("{}{}/", section_path(&section), slug);

            let folder = path.parent().unwrap_or(content_dir).to_path_buf();
            let demo = match &meta.fm.demo {
                Some(d) => match resolve_demo(&slug, &folder, d, &key_pos) {
                    Ok(demo) => Some(demo),
                    Err((key, msg)) => {
                        diags.push(Diagnostic::error(
                            &shown,
                            key_pos(key).or_else(|| key_pos("[demo]")),
                            msg,
                        ));
                        None
                    }
                },
                None => None,
            };

            // Bundle files ship beside the page, except the demo's sources (served by the terminal origin).
            let mut assets = Vec::new();
            if let Some(b) = &bundle {
                for f in bundle_assets.get(b).map(Vec::as_slice).unwrap_or_default() {
                    if let Some(d) = &demo {
                        // The recording is published content-hashed by the build.
                        if d.recording.as_ref().is_some_and(|r| r.path == *f) {
                            continue;
                        }
                        if d.workdir != *b
                            && f.canonicalize().is_ok_and(|c| c.starts_with(&d.workdir))
                        {
                            continue;
                        }
                    }
                    let rel = rel_slash(f, b);
                    assets.push((
                        f.clone(),
                        format!("{}{}", page_path.trim_start_matches('/'), rel),
                    ));
                }
            }

            let cover = meta.fm.cover.as_ref().and_then(|c| {
                if c.starts_with('/') || c.starts_with("https://") || c.starts_with("http://") {
                    Some(c.clone())
                } else if folder.join(c).is_file() {
                    if bundle.is_some() {
                        Some(format!("{page_path}{c}"))
                    } else {
                        Some(format!("{}{c}", section_path(&section)))
                    }
                } else {
                    diags.push(Diagnostic::error(
                        &shown,
                        key_pos("cover"),
                        format!("cover image {c:?} not found beside the page"),
                    ));
                    None
                }
            });

            for t in &meta.fm.tags {
                if tag_slug(t).is_empty() {
                    diags.push(Diagnostic::error(
                        &shown,
                        key_pos("tags"),
                        format!("tag {t:?} has no letters or digits"),
                    ));
                }
            }
            let mut aliases = Vec::new();
            for a in &meta.fm.aliases {
                if a.contains("..") || a.contains('\\') || a.contains(['<', '>', '"', '\'', ' ']) {
                    diags.push(Diagnostic::error(
                        &shown,
                        key_pos("aliases"),
                        format!("alias {a:?} is not a clean site path"),
                    ));
                    continue;
                }
                let mut a = format!("/{}", a.trim_start_matches('/'));
                if !a.ends_with('/') && !a.rsplit('/').next().unwrap_or("").contains('.') {
                    a.push('/');
                }
                aliases.push(a);
            }
            let mut w = Vec::new();
            if let Some(t) = &meta.fm.template {
                check_template_name(&text, t, "template", &shown, &mut w);
            }
            diags.extend(w);
            if diags.has_errors() {
                let mut all = diags;
                all.extend(warnings);
                return Err(all);
            }
            let mut warnings = warnings;
            warnings.extend(diags);
            let file = SourceFile {
                path,
                shown,
                content_path,
                text,
                body_offset,
            };
            Ok(Loaded::Page(
                Some(Box::new(Page {
                    file,
                    meta,
                    slug,
                    path: page_path,
                    section,
                    assets,
                    cover,
                    demo,
                    aliases,
                })),
                warnings,
            ))
        }
        // `parse_header` was asked for the kind of `kind`.
        (Kind::Section(_), Header::Page(..)) | (Kind::Page { .. }, Header::Section(..)) => {
            unreachable!("front matter parsed as the other kind of file")
        }
    }
}

fn check_template_name(text: &str, name: &str, key: &str, shown: &Path, out: &mut Vec<Diagnostic>) {
    if name.contains("..") || name.starts_with('/') {
        out.push(Diagnostic::error(
            shown,
            frontmatter::find_key_in_file(text, key),
            format!("template name {name:?} must be relative to templates/"),
        ));
    }
}

fn resolve_demo(
    slug: &str,
    folder: &Path,
    d: &frontmatter::DemoFrontMatter,
    key_pos: &dyn Fn(&str) -> Option<(usize, usize)>,
) -> Result<Demo, (&'static str, String)> {
    let command = match &d.command {
        None => vec!["/bin/bash".to_string()],
        Some(CommandSpec::Argv(v)) => v.clone(),
        Some(CommandSpec::Line(l)) => {
            split_command(l).map_err(|e| ("command", format!("demo command: {e}")))?
        }
    };
    if command.is_empty() || command[0].is_empty() {
        return Err(("command", "demo command is empty".into()));
    }
    let rel = d.workdir.clone().unwrap_or_else(|| ".".into());
    let relp = Path::new(&rel);
    if relp.is_absolute() || relp.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(("workdir", format!("demo workdir {rel:?} must be a folder inside the write-up's folder (no `..`, not absolute)")));
    }
    let base = folder
        .canonicalize()
        .map_err(|e| ("workdir", format!("cannot resolve the page's folder: {e}")))?;
    let workdir = folder.join(relp).canonicalize().map_err(|_| {
        (
            "workdir",
            format!("demo workdir {rel:?} does not exist beside the page"),
        )
    })?;
    if !workdir.starts_with(&base) {
        return Err((
            "workdir",
            format!("demo workdir {rel:?} leaves the write-up's folder (through a symlink?)"),
        ));
    }
    if !workdir.is_dir() {
        return Err(("workdir", format!("demo workdir {rel:?} is not a folder")));
    }
    for (key, v) in [("idle_timeout", d.idle_timeout), ("timeout", d.timeout)] {
        if v == Some(0) {
            return Err((key, format!("demo {key} must be at least 1 second")));
        }
    }
    let secs = |key: &'static str, v: f64| -> Result<Duration, (&'static str, String)> {
        if v.is_finite() && (0.0..=MAX_STEP).contains(&v) {
            Ok(Duration::from_secs_f64(v))
        } else {
            Err((
                key,
                format!("demo {key} must be a number of seconds from 0 to {MAX_STEP}"),
            ))
        }
    };
    let recording = match &d.recording {
        None => None,
        Some(name) => {
            let p = Path::new(name);
            if name.is_empty()
                || p.is_absolute()
                || p.components().any(|c| matches!(c, Component::ParentDir))
            {
                return Err(("recording", format!("demo recording {name:?} must be a file beside the write-up (no `..`, not absolute)")));
            }
            Some(Recording {
                path: folder.join(p),
                name: name.clone(),
                pos: key_pos("recording"),
                poster: d.poster.map(|s| secs("poster", s.0)).transpose()?,
            })
        }
    };
    if d.poster.is_some() && recording.is_none() {
        return Err(("poster", "demo poster needs a `recording`".into()));
    }
    let mut script = Vec::new();
    for (i, step) in d.script.iter().enumerate() {
        let n = i + 1;
        let action = match (&step.type_text, &step.wait, step.sleep) {
            (Some(t), None, None) if step.timeout.is_none() => ScriptAction::Type(t.clone()),
            (None, Some(w), None) if !w.is_empty() => ScriptAction::Wait {
                text: w.clone(),
                timeout: step
                    .timeout
                    .map(|s| secs("script", s.0))
                    .transpose()?
                    .unwrap_or(DEFAULT_WAIT_TIMEOUT),
            },
            (None, None, Some(s)) if step.timeout.is_none() => {
                ScriptAction::Sleep(secs("script", s.0)?)
            }
            _ => {
                return Err(("script", format!("demo script step {n} must have exactly one of `type = \"text\"`, `wait = \"text\"` (with an optional `timeout`), `sleep = seconds`")));
            }
        };
        script.push(action);
    }
    Ok(Demo {
        id: slug.to_string(),
        command,
        workdir,
        build: d.build.clone(),
        idle_timeout: d.idle_timeout,
        timeout: d.timeout,
        motd: d.motd.clone(),
        recording,
        script,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("The BVH, rebuilt!"), "the-bvh-rebuilt");
        assert_eq!(slugify("  Café  crème "), "cafe-creme");
        assert_eq!(slugify("C++ & Rust"), "c-rust");
        assert_eq!(slugify("snake_case name"), "snake_case-name");
        assert_eq!(slugify("Привет, мир"), "privet-mir");
        assert_eq!(slugify("日本語のブログ"), "ri-ben-yu-noburogu");
        assert_eq!(slugify("Καλημέρα"), "kalemera");
        assert_eq!(slugify("Straße"), "strasse");
        assert!(is_valid_slug("minirt-2"));
        assert!(!is_valid_slug("MiniRT"));
        assert!(!is_valid_slug("-x"));
        assert!(!is_valid_slug("a/b"));
    }

    #[test]
    fn a_tag_that_is_a_slug_already_is_its_own_slug_and_no_other_is() {
        // The fast path must agree with the long way on every tag it takes.
        for tag in ["rust", "web-assembly", "x86-64", "c99", "a-b-c", "2d"] {
            assert!(is_plain_slug(tag), "{tag}");
            assert_eq!(spelt_tag_slug(tag), tag);
        }
        for tag in [
            "", "-a", "a-", "a--b", "Rust", "c++", "c#", ".net", "node.js", "a_b", "a b", "café",
        ] {
            assert!(!is_plain_slug(tag), "{tag}");
        }
    }

    #[test]
    fn tag_slugs_keep_languages_apart() {
        for (tag, slug) in [
            ("C", "c"),
            ("C++", "cpp"),
            ("C#", "csharp"),
            ("F#", "fsharp"),
            (".NET", "dotnet"),
            ("ASP.NET", "asp-net"),
            ("Node.js", "node-js"),
            ("Notepad++", "notepadpp"),
            ("A + B", "a-b"),
            ("Meta Stuff", "meta-stuff"),
            ("rust", "rust"),
            ("日本語", "ri-ben-yu"),
        ] {
            assert_eq!(tag_slug(tag), slug, "{tag}");
        }
    }

    #[test]
    fn command_lines_split_like_a_shell() {
        assert_eq!(
            split_command("./minirt scenes/demo.rt").unwrap(),
            vec!["./minirt", "scenes/demo.rt"]
        );
        assert_eq!(
            split_command(r#"sh -c "echo 'hi there'" a\ b"#).unwrap(),
            vec!["sh", "-c", "echo 'hi there'", "a b"]
        );
        assert!(split_command("echo 'oops").is_err());
    }

    #[test]
    fn section_paths() {
        assert_eq!(section_path(""), "/");
        assert_eq!(section_path("projects"), "/projects/");
        assert_eq!(section_path("Blog/2024 Notes"), "/blog/2024-notes/");
    }

    /// Writes `text` at `rel` under `root`, making its folders.
    fn write_file(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn forgetting_bodies_keeps_front_matter_and_its_key_positions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |rel: &str, text: &str| write_file(root, rel, text);
        write(
            "content/_index.md",
            "+++\ntitle = \"Home\"\n+++\nwelcome, with a long intro\n",
        );
        write(
            "content/notes/x.md",
            "+++\ntitle = \"X\"\ntemplate = \"page.html\"\n+++\n# Heading\n\nsome body text\n",
        );
        let (mut c, d) = load(root, LoadOptions::default());
        assert!(!d.has_errors(), "{d}");
        let front = |c: &Content| -> Vec<String> {
            c.pages
                .iter()
                .map(|p| p.file.text[..p.file.body_offset].to_string())
                .collect()
        };
        let before = front(&c);
        let pos = crate::frontmatter::find_key_in_file(&c.pages[0].file.text, "template");
        assert!(pos.is_some());
        c.forget_bodies();
        assert_eq!(front(&c), before);
        assert_eq!(c.pages[0].file.body(), "");
        assert_eq!(c.sections[""].file.as_ref().unwrap().body(), "");
        assert_eq!(
            crate::frontmatter::find_key_in_file(&c.pages[0].file.text, "template"),
            pos,
            "diagnostics still point at the key"
        );
    }

    #[test]
    fn the_parse_cache_reuses_unchanged_files_and_sees_every_edit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let write = |rel: &str, text: &str| write_file(root, rel, text);
        let age = |rel: &str, when: std::time::SystemTime| {
            let f = std::fs::File::options()
                .append(true)
                .open(root.join(rel))
                .unwrap();
            f.set_modified(when).unwrap();
        };
        write("content/_index.md", "+++\ntitle = \"Home\"\n+++\n");
        write("content/p/_index.md", "+++\ntitle = \"P\"\n+++\n");
        write("content/p/a.md", "+++\ntitle = \"AAAA\"\n+++\nbody a\n");
        write("content/p/b.md", "+++\ntitle = \"BBBB\"\n+++\nbody b\n");
        let opts = LoadOptions::default();
        let titles = |c: &Content| -> Vec<String> {
            c.pages.iter().map(|p| p.meta.fm.title.clone()).collect()
        };
        let load_again = |cache: &ParseCache, touched: &[PathBuf]| {
            let (c, d, next) = load_cached(root, opts, cache, touched);
            assert!(!d.has_errors(), "{d}");
            (c, next)
        };

        let (c, cache) = load_again(&ParseCache::default(), &[]);
        assert_eq!(titles(&c), ["AAAA", "BBBB"]);
        assert_eq!((cache.len(), cache.files_read()), (4, 4));

        // Files written just before they were read are read again (their stamps cannot vouch
        // for them), so an edit of the same size right after is seen.
        let (_, cache) = load_again(&cache, &[]);
        assert_eq!(cache.files_read(), 4);
        write("content/p/a.md", "+++\ntitle = \"ZZZZ\"\n+++\nbody a\n");
        let (c, cache) = load_again(&cache, &[]);
        assert_eq!(titles(&c), ["ZZZZ", "BBBB"]);

        // Settled files: read once more (their times changed), then vouched for by their
        // stamps, unless named as changed.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for f in [
            "content/_index.md",
            "content/p/_index.md",
            "content/p/a.md",
            "content/p/b.md",
        ] {
            age(f, old);
        }
        let (_, cache) = load_again(&cache, &[]);
        assert_eq!(cache.files_read(), 4);
        let (c, cache) = load_again(&cache, &[]);
        assert_eq!(cache.files_read(), 0);
        assert_eq!(titles(&c), ["ZZZZ", "BBBB"]);
        let (_, cache) = load_again(&cache, &[root.join("content/p")]);
        assert_eq!(cache.files_read(), 3, "touched folder: its three files");

        // An edit of the same size whose modification time is put back (`touch -r`, `cp
        // -p`) still changes the change time: seen.
        write("content/p/b.md", "+++\ntitle = \"YYYY\"\n+++\nbody b\n");
        age("content/p/b.md", old);
        let (c, cache) = load_again(&cache, &[]);
        assert_eq!(titles(&c), ["ZZZZ", "YYYY"]);

        // A broken header is an error with its position, not a stale success; fixing it
        // recovers; a removed file leaves the cache.
        write("content/p/a.md", "+++\ntitle = \n+++\nbody a\n");
        let (_, d, broken) = load_cached(root, opts, &cache, &[]);
        assert!(d.has_errors());
        assert!(d.to_string().contains("content/p/a.md:2:"), "{d}");
        write("content/p/a.md", "+++\ntitle = \"AAAA\"\n+++\nbody a\n");
        let (c, fixed) = load_again(&broken, &[]);
        assert_eq!(titles(&c), ["AAAA", "YYYY"]);
        std::fs::remove_file(root.join("content/p/b.md")).unwrap();
        let (c, gone) = load_again(&fixed, &[]);
        assert_eq!(titles(&c), ["AAAA"]);
        assert_eq!(gone.len(), 3);

        // The cache gives what a load without it gives.
        let (plain, _) = load(root, opts);
        assert_eq!(titles(&plain), titles(&c));
        assert_eq!(plain.pages[0].file.text, c.pages[0].file.text);
        assert_eq!(plain.pages[0].path, c.pages[0].path);
    }
}
