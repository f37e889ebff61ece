//! Markdown to HTML: CommonMark + GFM through pulldown-cmark, with heading anchors, a table of
//! contents, `<!-- more -->` summaries, highlighted code and `@/…` internal links.

use std::collections::{HashMap, HashSet};

use pulldown_cmark::{
    html, CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd,
};
use serde::{Deserialize, Serialize};

use crate::highlight::{escape, Highlighter};
use crate::{callouts, code_blocks, math};
use folio_content::content::slugify;

/// Whether an HTML comment is the marker that ends a page's summary, `<!-- more -->`, however
/// it is spaced (Hugo writes `<!--more-->`).
fn is_more_marker(html: &str) -> bool {
    html.split_whitespace().collect::<String>() == "<!--more-->"
}

/// What rendering needs besides the markdown.
#[derive(Clone, Copy)]
pub(crate) struct RenderOptions<'a> {
    /// Curly quotes and dashes.
    pub smart_punctuation: bool,
    /// Deepest heading level in the table of contents.
    pub toc_depth: u8,
    /// `@/` content path → site path, for internal links.
    pub links: &'a HashMap<String, String>,
    /// Highlighter; `None` renders code unhighlighted (used by `folio check`).
    pub highlighter: Option<&'a Highlighter>,
    /// `$…$` / `$$…$$` as TeX (`[markdown] math`).
    pub math: bool,
    /// The site's images and the site path of the page (`/projects/x/`) its relative image
    /// paths start from: local images become `<picture>`s. `None` leaves them as written.
    pub images: Option<(&'a crate::images::Images, &'a str)>,
}

/// One heading in the table of contents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct TocEntry {
    /// 1 to 6.
    pub level: u8,
    /// The heading's anchor.
    pub id: String,
    /// The heading's text.
    pub title: String,
    /// Deeper headings under this one.
    pub children: Vec<TocEntry>,
}

/// An `@/` link found in the markdown, to check once every page's anchors are known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InternalLink {
    /// Content path of the target (`projects/x/index.md`).
    pub target: String,
    /// The `#fragment`, if any.
    pub anchor: Option<String>,
    /// Byte offset of the link in the markdown body.
    pub offset: usize,
}

/// A link or image to a path of the site (root-relative, relative, or `#anchor`), checked
/// against the build's output once every output is known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UrlRef {
    /// The destination as written.
    pub url: String,
    /// Byte offset of the link in the markdown body.
    pub offset: usize,
    /// An image (`![…](…)`), not a link.
    pub image: bool,
}

/// A rendered markdown document (serialisable: kept between builds, see `site::bodies`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Rendered {
    /// The body as HTML.
    pub html: String,
    /// The HTML before `<!-- more -->`, if the marker is there.
    pub summary: Option<String>,
    /// Nested table of contents.
    pub toc: Vec<TocEntry>,
    /// Every id a link may point at (headings and footnotes).
    pub anchors: HashSet<String>,
    /// Internal links (`@/…` and `….md`), resolved or not.
    pub links: Vec<InternalLink>,
    /// Links and images to site paths, to check against the outputs.
    pub urls: Vec<UrlRef>,
    /// `http(s)://` links and images: (byte offset, URL), for `folio check --external`.
    pub external: Vec<(usize, String)>,
    /// Images without alt text: byte offsets.
    pub missing_alt: Vec<usize>,
    /// Words of prose (code excluded), for reading time.
    pub word_count: usize,
    /// Broken internal links and the like: (byte offset in the body, message).
    pub errors: Vec<(usize, String)>,
    /// Languages of code blocks that no grammar knows: (byte offset, name).
    pub unknown_languages: Vec<(usize, String)>,
    /// Site paths of the images shown as processed (see `crate::images`), for reuse checks.
    pub images: Vec<String>,
    /// Shortcode templates used (`shortcodes/figure.html`), for reuse checks.
    pub shortcodes: Vec<String>,
}

/// Renders a markdown body; `from` is its file's path under `content/` (relative `.md`
/// links resolve from its folder).
pub(crate) fn render(body: &str, from: &str, opts: &RenderOptions<'_>) -> Rendered {
    let mut options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    if opts.smart_punctuation {
        options |= Options::ENABLE_SMART_PUNCTUATION;
    }
    // Callouts (`> [!NOTE]`); math only when a `$` could start some.
    options |= Options::ENABLE_GFM;
    if opts.math && body.contains('$') {
        options |= Options::ENABLE_MATH;
    }
    let mut out = Rendered::default();
    let mut events: Vec<Event<'_>> = Vec::new();
    let mut flat_toc: Vec<(u8, String, String)> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut more_at: Option<usize> = None;
    // The image being read: its offset and its alt text so far.
    let mut image: Option<(usize, String)> = None;
    // A processed image being read: where its events start, what to show, its title.
    let mut picture: Option<(usize, std::sync::Arc<crate::images::ImageInfo>, String)> = None;

    let math_on = options.contains(Options::ENABLE_MATH);
    // The source of the text being read (text and line breaks in a row), to find formulas
    // the parser left as text.
    let mut text_run: Option<std::ops::Range<usize>> = None;
    let mut iter = Parser::new_ext(body, options).into_offset_iter().peekable();
    while let Some((event, range)) = iter.next() {
        if math_on {
            if matches!(event, Event::Text(_) | Event::SoftBreak) && image.is_none() {
                let start = text_run.as_ref().map_or(range.start, |r| r.start);
                text_run = Some(start..range.end);
            } else if let Some(r) = text_run.take() {
                unbalanced_formula(body, r, &mut out);
            }
        }
        match event {
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs: _,
            }) => {
                let mut inner = Vec::new();
                let mut text = String::new();
                for (e, r) in iter.by_ref() {
                    match &e {
                        Event::End(TagEnd::Heading(_)) => break,
                        Event::Text(t) | Event::Code(t) => text.push_str(t),
                        Event::InlineMath(t) | Event::DisplayMath(t) => {
                            // the TeX source stands for the formula in the table of contents
                            text.push_str(t);
                            inner.push(math_event(&e, r.start, &mut out));
                            continue;
                        }
                        _ => {}
                    }
                    inner.push(e);
                }
                let base = id.map(|i| i.to_string()).unwrap_or_else(|| {
                    let s = slugify(&text);
                    if s.is_empty() {
                        "section".into()
                    } else {
                        s
                    }
                });
                let id = unique_id(&mut ids, base);
                let n = heading_number(level);
                let class = if classes.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"{}\"", escape(&classes.join(" ")))
                };
                events.push(Event::Html(
                    format!("<h{n} id=\"{}\"{class}>", escape(&id)).into(),
                ));
                events.extend(inner);
                events.push(Event::Html(format!("<a class=\"anchor\" href=\"#{}\" aria-hidden=\"true\" tabindex=\"-1\">#</a></h{n}>\n", escape(&id)).into()));
                out.word_count += text.split_whitespace().count();
                if n <= opts.toc_depth {
                    flat_toc.push((n, id.clone(), text.trim().to_string()));
                }
                out.anchors.insert(id);
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let info = match &kind {
                    CodeBlockKind::Fenced(info) => info.as_ref(),
                    CodeBlockKind::Indented => "",
                };
                let mut code = String::new();
                for (e, _) in iter.by_ref() {
                    match e {
                        Event::End(TagEnd::CodeBlock) => break,
                        Event::Text(t) => code.push_str(&t),
                        _ => {}
                    }
                }
                let mut notes = code_blocks::BlockNotes::default();
                match code_blocks::render(info, &code, opts.highlighter, &mut notes) {
                    Ok(html) => events.push(Event::Html(html.into())),
                    Err(e) => {
                        out.errors
                            .push((info_offset(body, range.start, info, e.at), e.message));
                    }
                }
                if let Some(l) = notes.unknown_language {
                    out.unknown_languages.push((range.start, l));
                }
            }
            Event::Start(Tag::BlockQuote(Some(kind))) => {
                events.push(Event::Html(callouts::open(kind).into()));
            }
            Event::End(TagEnd::BlockQuote(Some(_))) => {
                events.push(Event::Html(callouts::CLOSE.into()));
            }
            // In an image's alt text a formula stays its TeX source (alt is plain text).
            Event::InlineMath(_) | Event::DisplayMath(_) if image.is_none() => {
                events.push(math_event(&event, range.start, &mut out));
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let dest_url = resolve(&dest_url, range.start, from, false, opts, &mut out);
                events.push(Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }));
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let dest_url = resolve(&dest_url, range.start, from, true, opts, &mut out);
                image = Some((range.start, String::new()));
                // A local image (`resolve` listed it for the link check) is processed.
                let local = out
                    .urls
                    .last()
                    .is_some_and(|u| u.offset == range.start && u.image);
                if let (true, Some((images, base))) = (local, opts.images) {
                    match crate::images::for_page(images, base, &dest_url) {
                        Some((path, Ok(info))) => {
                            out.images.push(path);
                            picture = Some((events.len(), info, title.to_string()));
                        }
                        Some((_, Err(msg))) => out.errors.push((range.start, msg)),
                        None => {}
                    }
                }
                events.push(Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                }));
            }
            Event::End(TagEnd::Image) => {
                if let Some((at, alt)) = image.take() {
                    if alt.trim().is_empty() {
                        out.missing_alt.push(at);
                    }
                    if let Some((from, info, title)) = picture.take() {
                        events.truncate(from);
                        events.push(Event::Html(
                            crate::images::markup::picture(
                                &info,
                                &alt,
                                Some(&title),
                                crate::images::markup::CONTENT_SIZES,
                            )
                            .into(),
                        ));
                        continue;
                    }
                }
                events.push(Event::End(TagEnd::Image));
            }
            Event::Html(h) | Event::InlineHtml(h) if is_more_marker(&h) => {
                if more_at.is_none() {
                    more_at = Some(events.len());
                }
            }
            // Footnote ids live in their own `fn-` namespace: a label equal to a heading's
            // slug (`[^design]` beside `## Design`) would otherwise give two elements one id.
            Event::Start(Tag::FootnoteDefinition(label)) => {
                let id = footnote_id(&label);
                out.anchors.insert(id.clone());
                events.push(Event::Start(Tag::FootnoteDefinition(id.into())));
            }
            Event::FootnoteReference(label) => {
                events.push(Event::FootnoteReference(footnote_id(&label).into()));
            }
            Event::TaskListMarker(done) => {
                // A task's checkbox is read-only; its name says its state to screen readers.
                events.push(Event::Html(
                    if done {
                        "<input type=\"checkbox\" disabled checked aria-label=\"Done\"> "
                    } else {
                        "<input type=\"checkbox\" disabled aria-label=\"Not done\"> "
                    }
                    .into(),
                ));
            }
            Event::Text(t) | Event::Code(t) if image.is_some() => {
                if let Some((_, alt)) = image.as_mut() {
                    alt.push_str(&t);
                }
                events.push(Event::Text(t));
            }
            Event::Text(t) => {
                out.word_count += t.split_whitespace().count();
                events.push(Event::Text(t));
            }
            e => events.push(e),
        }
    }

    if let Some(r) = text_run.take() {
        unbalanced_formula(body, r, &mut out);
    }
    if let Some(cut) = more_at {
        let mut s = String::new();
        html::push_html(&mut s, events[..cut].iter().cloned());
        out.summary = Some(s);
    }
    out.html.reserve(body.len() * 3 / 2);
    html::push_html(&mut out.html, events.into_iter());
    if out.html.contains(" style=\"text-align: ") {
        out.html = align_classes(&out.html);
    }
    out.toc = nest(&flat_toc);
    out
}

/// A `$…$` (or `$$…$$`) in `body[run]` that the parser left as text because its braces do not
/// balance (pulldown-cmark's rule for math): the author meant a formula and would see its TeX
/// source on the page, so it is an error at the opening `$`, like any TeX error. A run of text
/// is what the parser did not take as math, so only a candidate it would have taken but for
/// the braces is reported: opened by a `$` not followed by a space, closed by one not preceded
/// by one (prices such as "$5 and $10" are never candidates), `\$` escaped.
fn unbalanced_formula(body: &str, run: std::ops::Range<usize>, out: &mut Rendered) {
    let text = &body[run.clone()];
    if !text.contains('$') {
        return;
    }
    let b = text.as_bytes();
    // The unescaped runs of `$`: (start, length).
    let mut dollars = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'$' {
            let start = i;
            while i < b.len() && b[i] == b'$' {
                i += 1;
            }
            dollars.push((start, i - start));
            continue;
        }
        i += 1;
    }
    let mut k = 0;
    while k < dollars.len() {
        let (open, n) = dollars[k];
        let inner_start = open + n;
        let opens = n <= 2 && b.get(inner_start).is_some_and(|c| !c.is_ascii_whitespace());
        let close = opens
            .then(|| {
                dollars[k + 1..].iter().position(|&(at, m)| {
                    m == n && at > inner_start && !b[at - 1].is_ascii_whitespace()
                })
            })
            .flatten();
        let Some(j) = close else {
            k += 1;
            continue;
        };
        let (close_at, _) = dollars[k + 1 + j];
        let inner = &text[inner_start..close_at];
        let mut depth = 0i32;
        let mut chars = inner.bytes();
        let mut balanced = true;
        while let Some(c) = chars.next() {
            match c {
                b'\\' => {
                    chars.next();
                }
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth < 0 {
                        balanced = false;
                    }
                }
                _ => {}
            }
        }
        if balanced && depth == 0 {
            // Balanced but left as text: not a formula to the parser for another reason
            // (e.g. inside a link's text); nothing to say.
            k += 1;
            continue;
        }
        let shown: String = text[open..close_at + n].chars().take(40).collect();
        out.errors.push((
            run.start + open,
            format!(
                "`{shown}` is not a formula: its braces {{ }} do not balance, so it would show as text \
                 (write \\$ for a dollar sign)"
            ),
        ));
        k += 1 + j + 1;
    }
}

/// A formula event as MathML (an inline HTML event); a TeX error is recorded at `offset` and
/// the formula left out.
fn math_event<'a>(event: &Event<'a>, offset: usize, out: &mut Rendered) -> Event<'a> {
    let (tex, display) = match event {
        Event::InlineMath(t) => (t, false),
        Event::DisplayMath(t) => (t, true),
        e => return e.clone(),
    };
    match math::to_mathml(tex, display) {
        Ok(m) => Event::InlineHtml(m.into()),
        Err(msg) => {
            out.errors.push((offset, msg));
            Event::InlineHtml("".into())
        }
    }
}

/// Where in the body the `at`th byte of a fence's info string is: the fence line holds the
/// info as written (after the backticks or tildes); when it cannot be found (escapes in the
/// info), the fence itself.
fn info_offset(body: &str, fence: usize, info: &str, at: usize) -> usize {
    let line = body[fence..].split('\n').next().unwrap_or("");
    match line.find(info) {
        Some(i) if !info.is_empty() => fence + i + at,
        _ => fence,
    }
}

/// Table column alignment as classes: pulldown-cmark writes `style` attributes, which a strict
/// Content-Security-Policy blocks.
fn align_classes(html: &str) -> String {
    html.replace(" style=\"text-align: left\"", " class=\"align-left\"")
        .replace(" style=\"text-align: center\"", " class=\"align-center\"")
        .replace(" style=\"text-align: right\"", " class=\"align-right\"")
}

/// Whether a link leaves the site: a scheme (`https:`, `mailto:`) or `//host`.
fn has_scheme(dest: &str) -> bool {
    if dest.starts_with("//") {
        return true;
    }
    match dest.find(':') {
        Some(i) => {
            let scheme = &dest[..i];
            !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
                && !scheme.contains('/')
        }
        None => false,
    }
}

/// `rel` joined to the folder of the content file `from`, with `.` and `..` resolved; `None`
/// when it climbs out of `content/`. A `/`-rooted path is taken from `content/` itself.
pub(crate) fn join_content_path(from: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if !rel.starts_with('/') {
        parts.extend(from.split('/').filter(|s| !s.is_empty()));
        parts.pop(); // the file itself
    }
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

fn resolve<'a>(
    dest: &CowStr<'a>,
    offset: usize,
    from: &str,
    image: bool,
    opts: &RenderOptions<'_>,
    out: &mut Rendered,
) -> CowStr<'a> {
    if dest.is_empty() {
        return dest.clone();
    }
    let (written, target) = if let Some(rest) = dest.strip_prefix("@/") {
        (None, rest.to_string())
    } else if has_scheme(dest) {
        if dest.starts_with("http://") || dest.starts_with("https://") {
            out.external.push((offset, dest.to_string()));
        }
        return dest.clone();
    } else {
        let path = dest.split(['#', '?']).next().unwrap_or("");
        if !path.to_ascii_lowercase().ends_with(".md") {
            out.urls.push(UrlRef {
                url: dest.to_string(),
                offset,
                image,
            });
            return dest.clone();
        }
        // A link to a content file, GitHub style: resolved like `@/` from this file's folder.
        let fragment = dest[path.len()..].to_string();
        match join_content_path(from, path) {
            Some(t) => (Some(dest.to_string()), format!("{t}{fragment}")),
            None => {
                out.errors.push((
                    offset,
                    format!("broken link: `{dest}` leads out of content/"),
                ));
                return dest.clone();
            }
        }
    };
    let rest = target.as_str();
    let (target, anchor) = match rest.split_once('#') {
        Some((t, a)) => (t.to_string(), Some(a.to_string())),
        None => (rest.to_string(), None),
    };
    out.links.push(InternalLink {
        target: target.clone(),
        anchor: anchor.clone(),
        offset,
    });
    match opts.links.get(&target) {
        Some(path) => match anchor {
            Some(a) => format!("{path}#{a}").into(),
            None => path.clone().into(),
        },
        None => {
            let msg = match written {
                None => format!("broken internal link: `@/{target}` is not a published page or section under content/"),
                Some(w) => format!("broken link: `{w}` is content/{target}, which is not a published page or section"),
            };
            out.errors.push((offset, msg));
            dest.clone()
        }
    }
}

fn footnote_id(label: &str) -> String {
    format!("fn-{label}")
}

fn unique_id(ids: &mut HashMap<String, usize>, base: String) -> String {
    let n = ids.entry(base.clone()).or_insert(0);
    *n += 1;
    if *n == 1 {
        base
    } else {
        let id = format!("{base}-{}", *n - 1);
        ids.entry(id.clone()).or_insert(1);
        id
    }
}

fn heading_number(level: HeadingLevel) -> u8 {
    match level {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

fn nest(flat: &[(u8, String, String)]) -> Vec<TocEntry> {
    fn build(flat: &[(u8, String, String)], i: &mut usize, level: u8) -> Vec<TocEntry> {
        let mut out = Vec::new();
        while *i < flat.len() {
            let (l, id, title) = &flat[*i];
            if *l < level {
                break;
            }
            *i += 1;
            let children = build(flat, i, l + 1);
            out.push(TocEntry {
                level: *l,
                id: id.clone(),
                title: title.clone(),
                children,
            });
        }
        out
    }
    let min = flat.iter().map(|e| e.0).min().unwrap_or(1);
    let mut i = 0;
    let mut out = build(flat, &mut i, min);
    // Headings shallower than those before them restart at the top level.
    while i < flat.len() {
        let level = flat[i].0;
        out.extend(build(flat, &mut i, level));
    }
    out
}

/// Minutes to read `words` at 200 words a minute, at least one.
pub(crate) fn reading_time(words: usize) -> usize {
    words.div_ceil(200).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders as the home page's body.
    fn render(body: &str, o: &RenderOptions<'_>) -> Rendered {
        super::render(body, "_index.md", o)
    }

    #[test]
    fn every_kind_of_link_is_sorted_out() {
        let mut links = HashMap::new();
        links.insert("about.md".to_string(), "/about/".to_string());
        links.insert(
            "projects/a/index.md".to_string(),
            "/projects/a/".to_string(),
        );
        let md = "[gh](../../about.md#me) [rel](../a/index.md) [root](/abuot/) [x](https://x.dev/a) [m](mailto:a@b) [h](#top) ![](pic.png) ![alt](/img/a.png) [gone](missing.md)\n\n<!--more-->\n";
        let r = super::render(md, "projects/b/index.md", &opts(&links));
        assert!(r.html.contains("href=\"/about/#me\""), "{}", r.html);
        assert!(r.html.contains("href=\"/projects/a/\""), "{}", r.html);
        let urls: Vec<&str> = r.urls.iter().map(|u| u.url.as_str()).collect();
        assert_eq!(urls, ["/abuot/", "#top", "pic.png", "/img/a.png"]);
        assert_eq!(r.external.len(), 1);
        assert_eq!(r.missing_alt.len(), 1);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(
            r.errors[0].1.contains("content/projects/b/missing.md"),
            "{:?}",
            r.errors
        );
        assert!(r.summary.is_some(), "Hugo's <!--more--> ends the summary");
    }

    fn opts(links: &HashMap<String, String>) -> RenderOptions<'_> {
        RenderOptions {
            smart_punctuation: true,
            toc_depth: 3,
            links,
            highlighter: None,
            math: true,
            images: None,
        }
    }

    #[test]
    fn headings_get_unique_anchors_and_a_nested_toc() {
        let links = HashMap::new();
        let r = render("# Top\n\n## The BVH, rebuilt\n\n### Deeper\n\n## The BVH, rebuilt\n\n## Custom {#mine}\n", &opts(&links));
        assert!(r.html.contains("<h2 id=\"the-bvh-rebuilt\">"), "{}", r.html);
        assert!(r.html.contains("<h2 id=\"the-bvh-rebuilt-1\">"));
        assert!(r.html.contains("<h2 id=\"mine\">"));
        assert_eq!(r.toc.len(), 1);
        assert_eq!(r.toc[0].children.len(), 3);
        assert_eq!(r.toc[0].children[0].children[0].id, "deeper");
        assert!(r.anchors.contains("mine"));
    }

    #[test]
    fn summary_stops_at_the_marker() {
        let links = HashMap::new();
        let r = render(
            "First para.\n\n<!-- more -->\n\nSecond para.\n",
            &opts(&links),
        );
        assert_eq!(r.summary.as_deref(), Some("<p>First para.</p>\n"));
        assert!(r.html.contains("Second para."));
        assert!(!r.html.contains("more -->"));
    }

    #[test]
    fn internal_links_resolve_or_report_their_offset() {
        let mut links = HashMap::new();
        links.insert(
            "projects/a/index.md".to_string(),
            "/projects/a/".to_string(),
        );
        let r = render(
            "See [a](@/projects/a/index.md#intro) and [b](@/projects/b.md).\n",
            &opts(&links),
        );
        assert!(r.html.contains("href=\"/projects/a/#intro\""), "{}", r.html);
        assert_eq!(r.links.len(), 2);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].0, 41);
    }

    #[test]
    fn gfm_extensions() {
        let links = HashMap::new();
        let md = "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~\n\n- [x] done\n\nNote[^1].\n\n[^1]: The note.\n";
        let r = render(md, &opts(&links));
        assert!(r.html.contains("<table>"));
        let r2 = render("| a | b |\n|--:|:-:|\n| 1 | 2 |\n", &opts(&links));
        assert!(
            r2.html.contains("<th class=\"align-right\">"),
            "{}",
            r2.html
        );
        assert!(!r2.html.contains("style="));
        assert!(r.html.contains("<del>old</del>"));
        assert!(r.html.contains("type=\"checkbox\""));
        assert!(r.html.contains("footnote-definition"));
        assert!(r.anchors.contains("fn-1"));
    }

    #[test]
    fn a_footnote_named_like_a_heading_does_not_share_its_id() {
        let links = HashMap::new();
        let r = render(
            "## Design\n\nSee[^design].\n\n[^design]: The note.\n",
            &opts(&links),
        );
        assert_eq!(r.html.matches("id=\"design\"").count(), 1, "{}", r.html);
        assert!(r.html.contains("id=\"fn-design\""), "{}", r.html);
        assert!(r.html.contains("href=\"#fn-design\""), "{}", r.html);
        assert!(r.anchors.contains("design") && r.anchors.contains("fn-design"));
    }

    #[test]
    fn formulas_in_headings_and_alt_text() {
        let links = HashMap::new();
        let r = render(
            "## Cost $O(n^2)$\n\n![plot of $y=x^2$](p.png)\n\n## Bad $\\frac{a}$\n",
            &opts(&links),
        );
        assert!(
            r.html.contains("<h2 id=\"cost-o-n-2\">Cost <math"),
            "{}",
            r.html
        );
        assert_eq!(r.toc[0].title, "Cost O(n^2)");
        assert!(r.html.contains("alt=\"plot of $y=x^2$\""), "{}", r.html);
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert!(r.errors[0].1.starts_with("TeX error"), "{:?}", r.errors);
        assert_eq!(
            &"## Cost $O(n^2)$\n\n![plot of $y=x^2$](p.png)\n\n## Bad $\\frac{a}$\n"
                [r.errors[0].0..][..1],
            "$"
        );
    }

    #[test]
    fn a_formula_whose_braces_do_not_balance_is_an_error_not_text() {
        let links = HashMap::new();
        for (body, at) in [
            ("A formula $\\frac{1}{$ here.\n", 10),
            ("Text\n$$\\sqrt{x$$ and $a$.\n", 5),
            ("Two $x}$ then $y$.\n", 4),
            ("*em* and $\\left\\{ {x$ ok\n", 9),
            ("[a $x{$ link](https://example.com)\n", 3),
        ] {
            let r = render(body, &opts(&links));
            assert_eq!(r.errors.len(), 1, "{body:?}: {:?}", r.errors);
            assert_eq!(r.errors[0].0, at, "{body:?}: {:?}", r.errors);
            assert!(
                r.errors[0].1.contains("braces { } do not balance"),
                "{:?}",
                r.errors
            );
        }
        // Not formulas, and not said to be: prices, escaped dollars, shell variables, code,
        // balanced TeX (rendered), a lone dollar, braces in prose beside a price.
        for body in [
            "It costs $5 and {sometimes} $10.\n",
            "Escaped \\$x{\\$ stays.\n",
            "Set $HOME/$USER and ${PATH} in a shell.\n",
            "Code `$x{$` and\n\n```\n$a{$\n```\n",
            "Math $\\{x\\}$ and $$\\frac{1}{2}$$.\n",
            "A $ alone, {braces} too.\n",
        ] {
            let r = render(body, &opts(&links));
            assert!(
                r.errors.iter().all(|e| !e.1.contains("do not balance")),
                "{body:?}: {:?}",
                r.errors
            );
        }
    }

    #[test]
    fn callouts_and_math_switch() {
        let links = HashMap::new();
        let r = render("> [!IMPORTANT]\n> Read this.\n", &opts(&links));
        assert!(r.html.starts_with("<div class=\"callout callout-important\" role=\"note\"><p class=\"callout-title\">Important</p>\n<p>Read this.</p>\n</div>"), "{}", r.html);
        let off = RenderOptions {
            math: false,
            ..opts(&links)
        };
        let r = render("$x$ and $$y$$\n", &off);
        assert_eq!(r.html, "<p>$x$ and $$y$$</p>\n");
    }

    #[test]
    fn code_blocks_are_highlighted_with_classes() {
        let links = HashMap::new();
        let h = Highlighter::new();
        let o = RenderOptions {
            highlighter: Some(&h),
            ..opts(&links)
        };
        let r = render("```rust\nfn main() {}\n```\n\n```rsut\nx\n```\n", &o);
        assert!(r.html.contains("<pre class=\"code\" data-lang=\"rust\" tabindex=\"0\"><code class=\"language-rust\"><span class=\"hl-"), "{}", r.html);
        assert_eq!(r.unknown_languages.len(), 1);
    }
}
