//! What templates see (the contexts) and the machine-read outputs written without templates:
//! the Atom feed, the sitemap, `robots.txt`, redirect pages, `/projects.json` and the edge index.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{json, Value};

use crate::highlight::escape;
use crate::markdown::{reading_time, Rendered};
use folio_content::config::Config;
use folio_content::content::{tag_slug, Content, Page, Section};
use folio_content::diagnostics::{Diagnostic, Diagnostics};
use folio_edge::config::{ManifestFile, MANIFEST_VERSION};

/// A tag and the pages that carry it.
#[derive(Debug, Clone)]
pub(crate) struct Tag {
    /// Display name (as first written).
    pub name: String,
    /// URL slug.
    pub slug: String,
    /// Site path (`/tags/<slug>/`).
    pub path: String,
    /// Indices of pages, newest first.
    pub pages: Vec<usize>,
}

/// Groups pages by tag. Spellings that differ only in letter case are one tag (titled as
/// the newest page spells it); two other spellings that would share a slug, and so a page
/// (`Meta Stuff` and `meta-stuff`), are an error naming both files and lines.
pub(crate) fn collect_tags(content: &Content, diags: &mut Diagnostics) -> Vec<Tag> {
    let mut by_slug: BTreeMap<String, Tag> = BTreeMap::new();
    // The first page seen with each spelling of a slug, to name in a clash.
    let mut spellings: HashMap<String, Vec<(String, usize)>> = HashMap::new();
    let mut order: Vec<usize> = (0..content.pages.len()).collect();
    order.sort_by(|&a, &b| {
        content.pages[b]
            .meta
            .date
            .cmp(&content.pages[a].meta.date)
            .then_with(|| content.pages[a].path.cmp(&content.pages[b].path))
    });
    let mut clashes: HashSet<(String, String)> = HashSet::new();
    for i in order {
        for name in &content.pages[i].meta.fm.tags {
            let slug = tag_slug(name);
            let seen = spellings.entry(slug.clone()).or_default();
            let folded = name.to_lowercase();
            match seen.iter().find(|(n, _)| n.to_lowercase() != folded) {
                Some((other, j)) if clashes.insert((slug.clone(), folded.clone())) => {
                    let (a, b) = (&content.pages[i], &content.pages[*j]);
                    let at = |p: &Page, t: &str| {
                        let pos = tag_pos(&p.file.text, t);
                        match pos {
                            Some((l, c)) => format!("{}:{l}:{c}", p.file.shown.display()),
                            None => p.file.shown.display().to_string(),
                        }
                    };
                    diags.push(Diagnostic::error(
                        &a.file.shown,
                        tag_pos(&a.file.text, name),
                        format!(
                            "tag {name:?} and tag {other:?} ({}) would share the page /tags/{slug}/: spell them the same, or tell them apart",
                            at(b, other)
                        ),
                    ));
                }
                _ => {}
            }
            if !seen.iter().any(|(n, _)| n == name) {
                seen.push((name.clone(), i));
            }
            let tag = by_slug.entry(slug.clone()).or_insert_with(|| Tag {
                name: name.clone(),
                path: format!("/tags/{slug}/"),
                slug,
                pages: vec![],
            });
            if !tag.pages.contains(&i) {
                tag.pages.push(i);
            }
        }
    }
    by_slug.into_values().collect()
}

/// Where a tag is spelt in a content file's front matter: the quoted name, else the `tags`
/// key.
fn tag_pos(text: &str, tag: &str) -> Option<(usize, usize)> {
    let split = folio_content::frontmatter::split(text).ok()?;
    let front = &text[..split.body_offset];
    for quoted in [format!("\"{tag}\""), format!("'{tag}'")] {
        if let Some(at) = front.find(&quoted) {
            return Some(folio_content::diagnostics::line_col(text, at));
        }
    }
    // A YAML list item (`- Meta Stuff`).
    let mut offset = 0;
    for line in front.split_inclusive('\n') {
        let t = line.trim_start();
        if t.strip_prefix("- ").map(str::trim) == Some(tag) {
            return Some(folio_content::diagnostics::line_col(
                text,
                offset + line.len() - t.len() + 2,
            ));
        }
        offset += line.len();
    }
    folio_content::frontmatter::find_key_in_file(text, "tags")
}

/// The `config` variable of every template: `folio.toml` minus what only the build needs.
pub(crate) fn config_context(cfg: &Config) -> Value {
    json!({
        "title": cfg.title,
        "base_url": cfg.base_url,
        "author": cfg.author,
        "description": cfg.description,
        "language": cfg.language,
        "extra": folio_content::value::toml_to_json(&toml::Value::Table(cfg.extra.clone())),
        "edge": { "views": cfg.edge.views },
        "terminal": { "enabled": cfg.terminal.enabled },
        "contact": { "enabled": cfg.contact.enabled, "page": cfg.contact.page },
        "search": { "enabled": cfg.search.enabled },
    })
}

fn tag_refs(p: &Page) -> Value {
    Value::Array(
        p.meta
            .fm
            .tags
            .iter()
            .map(|t| {
                let slug = tag_slug(t);
                json!({ "name": t, "slug": slug, "path": format!("/tags/{slug}/") })
            })
            .collect(),
    )
}

/// A page as it appears in lists (no body).
pub(crate) fn page_summary(cfg: &Config, p: &Page, r: &Rendered) -> Value {
    json!({
        "title": p.meta.fm.title,
        "description": p.meta.fm.description,
        "date": p.meta.date.as_ref().map(|d| &d.text),
        "updated": p.meta.updated.as_ref().map(|d| &d.text),
        "slug": p.slug,
        "view_key": folio_edge::counter::page_key(&p.path),
        "path": p.path,
        "permalink": cfg.permalink(&p.path),
        "content_path": p.file.content_path,
        "summary": r.summary.clone().or_else(|| {
            p.meta.fm.summary.as_ref().map(|s| format!("<p>{}</p>\n", escape(s.trim())))
        }),
        "tags": tag_refs(p),
        "categories": p.meta.fm.categories,
        "repo": p.meta.fm.repo,
        "cover": p.cover,
        "has_demo": p.demo.is_some(),
        "word_count": r.word_count,
        "reading_time": reading_time(r.word_count),
        "weight": p.meta.fm.weight,
        "draft": p.meta.fm.draft,
        "extra": p.meta.extra,
    })
}

/// The `page` variable of a page's own template: the summary fields plus the body, the table of
/// contents, the demo and the neighbours in its section.
/// `html` is the rendered body (`r.html`, or read back from where the build wrote it out).
pub(crate) fn page_full(
    mut summary: Value,
    p: &Page,
    (r, html): (&Rendered, String),
    lower: Option<&Value>,
    higher: Option<&Value>,
) -> Value {
    let o = summary.as_object_mut().expect("object");
    o.insert("content".into(), Value::String(html));
    o.insert(
        "toc".into(),
        serde_json::to_value(&r.toc).unwrap_or(Value::Null),
    );
    o.insert(
        "demo".into(),
        match &p.demo {
            Some(d) => {
                // `recording` is filled in by the page job when the demo has one.
                json!({ "id": d.id, "motd": d.motd, "endpoint": format!("/terminal/{}", d.id), "recording": null })
            }
            None => Value::Null,
        },
    );
    o.insert(
        "assets".into(),
        Value::Array(
            p.assets
                .iter()
                .map(|(_, out)| Value::String(format!("/{out}")))
                .collect(),
        ),
    );
    let neighbour = |v: Option<&Value>| {
        v.map(|v| json!({ "title": v["title"], "path": v["path"] }))
            .unwrap_or(Value::Null)
    };
    o.insert("lower".into(), neighbour(lower));
    o.insert("higher".into(), neighbour(higher));
    summary
}

/// A section as it appears in lists.
pub(crate) fn section_summary(cfg: &Config, s: &Section) -> Value {
    let mut v = json!({
        "title": s.title(),
        "description": s.meta.as_ref().and_then(|m| m.fm.description.clone()),
        "path": s.path,
        "permalink": cfg.permalink(&s.path),
        "key": s.key,
        "page_count": s.pages.len(),
        "extra": s.meta.as_ref().map(|m| m.extra.clone()).unwrap_or(Value::Object(Default::default())),
    });
    // Only when there is one: a site without section feeds renders as it did.
    if let Some(feed) = s.feed_path() {
        v["feed"] = Value::String(cfg.permalink(&feed));
    }
    v
}

/// The `section` variable of a section's template: its summary, body, its pages (summaries;
/// empty when the section is paginated and `all_pages` is false — the `paginator` holds them
/// then) and subsections.
pub(crate) fn section_full(
    cfg: &Config,
    s: &Section,
    body: Option<&Rendered>,
    pages: &[Value],
    subsections: Vec<Value>,
    all_pages: bool,
) -> Value {
    let mut v = section_summary(cfg, s);
    let o = v.as_object_mut().expect("object");
    o.insert(
        "content".into(),
        Value::String(body.map(|r| r.html.clone()).unwrap_or_default()),
    );
    o.insert(
        "toc".into(),
        body.map(|r| serde_json::to_value(&r.toc).unwrap_or(Value::Null))
            .unwrap_or(Value::Array(vec![])),
    );
    let paginated = s.paginate_by() > 0;
    let listed = if paginated && !all_pages {
        Vec::new()
    } else {
        s.pages.iter().map(|&i| pages[i].clone()).collect()
    };
    o.insert("pages".into(), Value::Array(listed));
    o.insert("subsections".into(), Value::Array(subsections));
    o.insert("paginate_by".into(), Value::from(s.paginate_by()));
    v
}

/// One list page of a paginated section.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Pager {
    /// 1-based.
    pub current_index: usize,
    /// How many list pages there are.
    pub number_pagers: usize,
    /// How many pages are listed across all list pages.
    pub total_pages: usize,
    /// Path of the first list page.
    pub first: String,
    /// Path of the last list page.
    pub last: String,
    /// Path of the previous list page.
    pub previous: Option<String>,
    /// Path of the next list page.
    pub next: Option<String>,
    /// The page summaries on this list page.
    pub pages: Vec<Value>,
}

/// Site path of list page `n` (1-based) of a section.
pub(crate) fn pager_path(section_path: &str, n: usize) -> String {
    if n <= 1 {
        section_path.to_string()
    } else {
        format!("{section_path}page/{n}/")
    }
}

/// List page `k` (1-based) of a paginated section, made when that page is rendered: only
/// its own pages' summaries are copied (all the pagers of a section, made at once and kept,
/// held a copy of every summary: ~60 MB at 10,000 pages). `None` past the last page or
/// when the section is not paginated.
pub(crate) fn pager(s: &Section, pages: &[Value], k: usize) -> Option<Pager> {
    let per = s.paginate_by();
    let n = s.pager_count();
    if per == 0 || k == 0 || k > n {
        return None;
    }
    Some(Pager {
        current_index: k,
        number_pagers: n,
        total_pages: s.pages.len(),
        first: pager_path(&s.path, 1),
        last: pager_path(&s.path, n),
        previous: (k > 1).then(|| pager_path(&s.path, k - 1)),
        next: (k < n).then(|| pager_path(&s.path, k + 1)),
        pages: s
            .pages
            .iter()
            .skip((k - 1) * per)
            .take(per)
            .map(|&i| pages[i].clone())
            .collect(),
    })
}

/// One Atom feed: the site's, of every page, or a section's, of its own pages.
pub(crate) struct Feed<'a> {
    /// Site path of the feed file: `/atom.xml`, `/posts/atom.xml`.
    pub(crate) path: String,
    /// Site path of the page the feed follows: `/`, `/posts/`.
    pub(crate) page: &'a str,
    /// The feed's title.
    pub(crate) title: String,
    /// The pages it may hold (indices into [`Content::pages`]); the newest dated ones are its
    /// entries.
    pub(crate) pages: Vec<usize>,
}

impl<'a> Feed<'a> {
    /// `/atom.xml`: every page of the site.
    pub(crate) fn site(cfg: &Config, content: &Content) -> Feed<'a> {
        Feed {
            path: "/atom.xml".into(),
            page: "/",
            title: cfg.title.clone(),
            pages: (0..content.pages.len()).collect(),
        }
    }

    /// A section's own feed, if its front matter asks for one ([`Section::feed_path`]).
    pub(crate) fn section(cfg: &Config, s: &'a Section) -> Option<Feed<'a>> {
        Some(Feed {
            path: s.feed_path()?,
            page: &s.path,
            title: format!("{} · {}", s.title(), cfg.title),
            pages: s.pages.clone(),
        })
    }
}

/// The Atom feed of the newest dated pages of `feed`; `html(i)` is page `i`'s rendered body
/// (read only for the pages in the feed).
pub(crate) fn atom<'h>(
    cfg: &Config,
    content: &Content,
    feed: &Feed<'_>,
    html: impl Fn(usize) -> std::io::Result<std::borrow::Cow<'h, str>>,
) -> std::io::Result<String> {
    let mut dated: Vec<usize> = feed
        .pages
        .iter()
        .copied()
        .filter(|&i| content.pages[i].meta.date.is_some())
        .collect();
    dated.sort_by(|&a, &b| {
        content.pages[b]
            .meta
            .date
            .cmp(&content.pages[a].meta.date)
            .then_with(|| content.pages[a].path.cmp(&content.pages[b].path))
    });
    dated.truncate(cfg.feed_limit);
    let updated = dated
        .iter()
        .filter_map(|&i| {
            let p = &content.pages[i];
            p.meta.updated.as_ref().or(p.meta.date.as_ref())
        })
        .max()
        .map(|d| d.rfc3339())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into());
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    x.push_str(&format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n",
        escape(&cfg.language)
    ));
    x.push_str(&format!("  <title>{}</title>\n", escape(&feed.title)));
    if let Some(d) = &cfg.description {
        x.push_str(&format!("  <subtitle>{}</subtitle>\n", escape(d)));
    }
    x.push_str(&format!(
        "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n",
        escape(&cfg.permalink(&feed.path))
    ));
    x.push_str(&format!(
        "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
        escape(&cfg.permalink(feed.page))
    ));
    x.push_str(&format!(
        "  <id>{}</id>\n  <updated>{updated}</updated>\n",
        escape(&cfg.permalink(feed.page))
    ));
    if let Some(a) = &cfg.author {
        x.push_str(&format!("  <author><name>{}</name></author>\n", escape(a)));
    }
    x.push_str("  <generator uri=\"https://github.com/folio-ssg/folio\">folio</generator>\n");
    for i in dated {
        let p = &content.pages[i];
        let body = html(i)?;
        let link = cfg.permalink(&p.path);
        let published = p
            .meta
            .date
            .as_ref()
            .map(|d| d.rfc3339())
            .unwrap_or_default();
        let upd = p
            .meta
            .updated
            .as_ref()
            .map(|d| d.rfc3339())
            .unwrap_or_else(|| published.clone());
        x.push_str("  <entry>\n");
        x.push_str(&format!(
            "    <title>{}</title>\n",
            escape(&p.meta.fm.title)
        ));
        x.push_str(&format!(
            "    <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            escape(&link)
        ));
        x.push_str(&format!("    <id>{}</id>\n", escape(&link)));
        x.push_str(&format!(
            "    <published>{published}</published>\n    <updated>{upd}</updated>\n"
        ));
        for t in &p.meta.fm.tags {
            x.push_str(&format!("    <category term=\"{}\"/>\n", escape(t)));
        }
        if let Some(d) = &p.meta.fm.description {
            x.push_str(&format!("    <summary>{}</summary>\n", escape(d)));
        }
        x.push_str(&format!(
            "    <content type=\"html\" xml:base=\"{}\">{}</content>\n",
            escape(&link),
            escape(&crate::base_path::rewrite_fragment(&body, cfg.base_path()))
        ));
        x.push_str("  </entry>\n");
    }
    x.push_str("</feed>\n");
    Ok(x)
}

/// `sitemap.xml`: every page, rendered section and tag page.
pub(crate) fn sitemap(cfg: &Config, entries: &[(String, Option<String>)]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n");
    for (path, lastmod) in entries {
        x.push_str(&format!(
            "  <url><loc>{}</loc>",
            escape(&cfg.permalink(path))
        ));
        if let Some(l) = lastmod {
            x.push_str(&format!("<lastmod>{l}</lastmod>"));
        }
        x.push_str("</url>\n");
    }
    x.push_str("</urlset>\n");
    x
}

/// `robots.txt`: everything allowed, the sitemap announced.
pub(crate) fn robots(cfg: &Config) -> String {
    format!(
        "User-agent: *\nAllow: /\n\nSitemap: {}\n",
        cfg.permalink("/sitemap.xml")
    )
}

/// A page at an old URL that sends the browser (and search engines, through the canonical
/// link) to the new one, without any script.
pub(crate) fn redirect_page(cfg: &Config, to_path: &str) -> String {
    let url = escape(&cfg.permalink(to_path));
    let path = escape(&format!("{}{to_path}", cfg.base_path()));
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>Moved</title><link rel=\"canonical\" href=\"{url}\"><meta name=\"robots\" content=\"noindex\"><meta http-equiv=\"refresh\" content=\"0; url={path}\"></head><body><p>This page has moved to <a href=\"{path}\">{url}</a>.</p></body></html>\n",
        escape(&cfg.language)
    )
}

/// `/projects.json`: the projects (pages of the `projects` section and below), for client-side
/// search and for the Worker to know which pages exist.
pub(crate) fn projects_json(cfg: &Config, content: &Content) -> String {
    let mut items = Vec::new();
    let order: Vec<usize> = content
        .sections
        .get("projects")
        .map(|s| s.pages.clone())
        .unwrap_or_default();
    let mut rest: Vec<usize> = (0..content.pages.len())
        .filter(|i| content.pages[*i].section.starts_with("projects/") && !order.contains(i))
        .collect();
    rest.sort();
    for i in order.into_iter().chain(rest) {
        let p = &content.pages[i];
        items.push(json!({
            "title": p.meta.fm.title,
            "url": cfg.permalink(&p.path),
            "path": p.path,
            "slug": p.slug,
            "date": p.meta.date.as_ref().map(|d| &d.text),
            "tags": p.meta.fm.tags,
            "description": p.meta.fm.description,
            "cover": p.cover,
            "has_demo": p.demo.is_some(),
        }));
    }
    serde_json::to_string_pretty(&items).expect("json") + "\n"
}

/// `[contact]` as the Worker needs it, with the defaults that depend on `base_url`.
pub(crate) fn contact_manifest(cfg: &Config) -> Option<folio_edge::contact::ContactManifest> {
    let c = &cfg.contact;
    if !c.enabled {
        return None;
    }
    let mut c = c.clone();
    c.fill_defaults(&cfg.base_url);
    Some(folio_edge::contact::ContactManifest {
        recipient: c.recipient.clone(),
        sender: c.sender.clone().unwrap_or_default(),
        subject_prefix: c.subject_prefix.clone().unwrap_or_default(),
        page: c.page.clone(),
        thanks: c.thanks.clone(),
        min_fill_secs: c.min_fill_secs,
        max_age_secs: c.max_age_secs,
        max_links: c.max_links,
        per_address_per_hour: c.per_address_per_hour,
        per_day: c.per_day,
    })
}

/// `/_folio/edge.json`: what the Worker must know about the build — the security headers (one
/// source of truth with `_headers`), the page keys the view counter accepts (with the old slug
/// key of each page whose slug was its own, to carry its count over) and the demo ids.
pub(crate) fn edge_json(cfg: &Config, content: &Content, headers: &[(String, String)]) -> String {
    use folio_edge::counter::page_key;
    let mut pages: Vec<String> = content.pages.iter().map(|p| page_key(&p.path)).collect();
    pages.sort();
    pages.dedup();
    let mut by_slug: std::collections::HashMap<&str, usize> = Default::default();
    for p in &content.pages {
        *by_slug.entry(p.slug.as_str()).or_default() += 1;
    }
    // A slug two pages shared was one counter for both: it belongs to neither (reset).
    let legacy: std::collections::BTreeMap<String, String> = content
        .pages
        .iter()
        .filter(|p| by_slug[p.slug.as_str()] == 1)
        .map(|p| (page_key(&p.path), p.slug.clone()))
        .filter(|(k, slug)| k != slug)
        .collect();
    let mut demos: Vec<&str> = if cfg.terminal.enabled {
        content
            .pages
            .iter()
            .filter_map(|p| p.demo.as_ref().map(|d| d.id.as_str()))
            .collect()
    } else {
        vec![]
    };
    demos.sort();
    ManifestFile {
        base_url: cfg.base_url.clone(),
        contact: contact_manifest(cfg),
        demos: demos.into_iter().map(str::to_string).collect(),
        headers: headers.to_vec(),
        pages,
        legacy,
        version: MANIFEST_VERSION,
    }
    .to_json()
}
