//! Shortcodes in Zola's syntax — `{{ name(key=value, …) }}` inline and
//! `{% name(…) %}…{% end %}` with a body — rendered from `templates/shortcodes/NAME.html`
//! (the site's, else the theme's) and never expanded inside code.
//!
//! A body is rendered in three steps: each shortcode is replaced by a placeholder (an HTML
//! comment markdown passes through untouched), the markdown is rendered, then each
//! placeholder is replaced by its shortcode's HTML. Byte offsets of what the markdown
//! reports (links, images, errors) are mapped back to the file as written, so every message
//! names the right line and column. A body without `{{` or `{%` costs one substring search.
//!
//! The built-in shortcodes (`figure`, `video`, `details`, `note`, and Zola's embeds `youtube`,
//! `vimeo`, `streamable`, `gist` written as links) declare their arguments
//! here ([`BUILTINS`]): a missing required one or one of the wrong type is an error at the
//! call. Any template's use of an argument it was not given is reported the same way.

use std::ops::Range;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::images::{self, markup, ImageInfo};
use crate::markdown::{self, RenderOptions, Rendered, UrlRef};
use crate::templates::Templates;

mod parse;

use parse::{Call, Item};

/// The type an argument must have.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Num,
    Bool,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Num => "a number",
            Ty::Bool => "true or false",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Ty::Str => v.is_string(),
            Ty::Num => v.is_number(),
            Ty::Bool => v.is_boolean(),
        }
    }
}

/// One argument of a built-in shortcode: name, type, default (`None`: required).
type Arg = (&'static str, Ty, Option<fn() -> Value>);

/// A built-in shortcode: its name, whether it takes a body, its arguments.
struct Builtin {
    name: &'static str,
    body: bool,
    args: &'static [Arg],
}

fn empty() -> Value {
    Value::String(String::new())
}
fn no() -> Value {
    Value::Bool(false)
}
fn null() -> Value {
    Value::Null
}
fn note_kind() -> Value {
    Value::String("note".into())
}

/// The built-in shortcodes and their arguments (a site's template of the same name takes the
/// same arguments).
const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "figure",
        body: false,
        args: &[
            ("src", Ty::Str, None),
            ("caption", Ty::Str, Some(empty)),
            ("alt", Ty::Str, Some(null)),
        ],
    },
    Builtin {
        name: "video",
        body: false,
        args: &[
            ("src", Ty::Str, None),
            ("poster", Ty::Str, Some(null)),
            ("width", Ty::Num, Some(null)),
            ("height", Ty::Num, Some(null)),
            ("caption", Ty::Str, Some(empty)),
        ],
    },
    Builtin {
        name: "details",
        body: true,
        args: &[("summary", Ty::Str, None), ("open", Ty::Bool, Some(no))],
    },
    Builtin {
        name: "note",
        body: true,
        args: &[
            ("title", Ty::Str, Some(empty)),
            ("kind", Ty::Str, Some(note_kind)),
        ],
    },
    // Zola's built-in embeds, as links (no third-party frame or script under the CSP).
    Builtin {
        name: "youtube",
        body: false,
        args: &[
            ("id", Ty::Str, None),
            ("playlist", Ty::Str, Some(empty)),
            ("title", Ty::Str, Some(empty)),
            ("class", Ty::Str, Some(empty)),
            ("autoplay", Ty::Bool, Some(no)),
        ],
    },
    Builtin {
        name: "vimeo",
        body: false,
        args: &[
            ("id", Ty::Str, None),
            ("title", Ty::Str, Some(empty)),
            ("class", Ty::Str, Some(empty)),
        ],
    },
    Builtin {
        name: "streamable",
        body: false,
        args: &[
            ("id", Ty::Str, None),
            ("title", Ty::Str, Some(empty)),
            ("class", Ty::Str, Some(empty)),
        ],
    },
    Builtin {
        name: "gist",
        body: false,
        args: &[
            ("url", Ty::Str, None),
            ("file", Ty::Str, Some(empty)),
            ("title", Ty::Str, Some(empty)),
            ("class", Ty::Str, Some(empty)),
        ],
    },
];

/// What an embed's id or URL argument may hold: it is written into a link to another site,
/// so anything else (a quote, `&`, `/`, a `javascript:` URL) is refused at the call.
fn embed_problem(name: &str, ctx: &Map<String, Value>) -> Option<(&'static str, String)> {
    let id_ok = |id: &str, digits: bool| {
        !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| {
                if digits {
                    b.is_ascii_digit()
                } else {
                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
                }
            })
    };
    let s = |k: &str| ctx.get(k).and_then(Value::as_str).unwrap_or_default();
    match name {
        "youtube" | "streamable" if !id_ok(s("id"), false) => Some((
            "id",
            format!("shortcode `{name}`: id {:?} is not a video id (letters, digits, - and _)", s("id")),
        )),
        "youtube" if !s("playlist").is_empty() && !id_ok(s("playlist"), false) => Some((
            "playlist",
            format!("shortcode `youtube`: playlist {:?} is not a playlist id (letters, digits, - and _)", s("playlist")),
        )),
        "vimeo" if !id_ok(s("id"), true) => Some((
            "id",
            format!("shortcode `vimeo`: id {:?} is not a Vimeo video id (digits)", s("id")),
        )),
        "gist" => {
            let url = s("url");
            let rest = url.strip_prefix("https://gist.github.com/").unwrap_or("");
            let path_ok = !rest.is_empty()
                && rest.split('/').all(|seg| id_ok(seg, false))
                && rest.split('/').count() <= 2;
            let file_ok = s("file").bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !path_ok {
                Some((
                    "url",
                    format!("shortcode `gist`: url {url:?} is not a gist (https://gist.github.com/USER/ID)"),
                ))
            } else if !file_ok {
                Some((
                    "file",
                    format!("shortcode `gist`: file {:?} is not a file name (letters, digits, -, _ and .)", s("file")),
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The callout kinds `note` takes (shared with GitHub-alert callouts).
const NOTE_KINDS: &[&str] = &["note", "tip", "important", "warning", "caution"];

/// Renders a page's markdown body with its shortcodes expanded; `templates` is `None` when
/// they failed to load (shortcodes are then left as written: the build fails anyway).
pub(crate) fn render(
    body: &str,
    from: &str,
    opts: &RenderOptions<'_>,
    templates: Option<&Templates>,
) -> Rendered {
    let mut r = render_inner(body, from, opts, templates);
    markup::eager_first(&mut r.html);
    if let Some(s) = r.summary.as_mut() {
        markup::eager_first(s);
    }
    r
}

fn render_inner(
    body: &str,
    from: &str,
    opts: &RenderOptions<'_>,
    templates: Option<&Templates>,
) -> Rendered {
    let Some(templates) = templates.filter(|_| body.contains("{{") || body.contains("{%")) else {
        return markdown::render(body, from, opts);
    };
    let found = parse::scan(body);
    let mut extra = Rendered {
        errors: found.errors,
        ..Rendered::default()
    };
    if found.items.is_empty() {
        let mut r = markdown::render(body, from, opts);
        merge(&mut r, extra, 0);
        return r;
    }
    let mut text = String::with_capacity(body.len());
    let mut segments: Vec<Segment> = Vec::new();
    let mut outputs: Vec<String> = Vec::new();
    let mut last = 0;
    let mut nth: std::collections::HashMap<String, usize> = Default::default();
    for item in found.items {
        let (span, html) = match item {
            Item::Literal(span, t) => (span, crate::highlight::escape(&t).to_string()),
            Item::Call(call) => {
                let n = nth.entry(call.name.clone()).or_default();
                *n += 1;
                let html =
                    expand(&call, *n, body, from, opts, templates, &mut extra).unwrap_or_default();
                (call.span, html)
            }
        };
        text.push_str(&body[last..span.start]);
        let id = outputs.len();
        // A call alone on its line(s) becomes an HTML comment (a block markdown passes
        // through); one among text a private-use token (text, so the line stays markdown).
        let line_start = body[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = body[span.end..]
            .find('\n')
            .map_or(body.len(), |i| span.end + i);
        let alone = body[line_start..span.start].trim().is_empty()
            && body[span.end..line_end].trim().is_empty();
        let (open, pad, close) = if alone {
            (format!("<!--fsc{id}"), ' ', "-->")
        } else {
            (format!("{TOKEN_OPEN}fsc{id}:"), '0', TOKEN_CLOSE)
        };
        let mut ph = open;
        let len = span.len();
        // Padded to the call's length, so that offsets after it need no mapping.
        while ph.len() + close.len() < len {
            ph.push(pad);
        }
        ph.push_str(close);
        let exp_start = text.len();
        text.push_str(&ph);
        segments.push(Segment {
            exp: exp_start..text.len(),
            orig: span.clone(),
        });
        outputs.push(html);
        last = span.end;
    }
    text.push_str(&body[last..]);
    let mut r = markdown::render(&text, from, opts);
    remap(&mut r, |o| map_offset(&segments, o));
    let fill = |html: &mut String| {
        for (id, out) in outputs.iter().enumerate() {
            for (open, close) in [
                (format!("<!--fsc{id}"), "-->"),
                (format!("{TOKEN_OPEN}fsc{id}:"), TOKEN_CLOSE),
            ] {
                if let Some(at) = html.find(&open) {
                    if let Some(end) = html[at..].find(close) {
                        html.replace_range(at..at + end + close.len(), out);
                        break;
                    }
                }
            }
        }
    };
    fill(&mut r.html);
    if let Some(s) = r.summary.as_mut() {
        fill(s);
    }
    merge(&mut r, extra, 0);
    r
}

/// The ends of an inline placeholder: private-use characters markdown leaves alone.
const TOKEN_OPEN: &str = "\u{E000}";
const TOKEN_CLOSE: &str = "\u{E001}";

/// A placeholder in the expanded text and the call it stands for in the body.
struct Segment {
    exp: Range<usize>,
    orig: Range<usize>,
}

/// An offset in the expanded text as an offset in the body as written.
fn map_offset(segments: &[Segment], o: usize) -> usize {
    let i = segments.partition_point(|s| s.exp.start <= o);
    match i.checked_sub(1).map(|i| &segments[i]) {
        None => o,
        Some(s) if o < s.exp.end => s.orig.start,
        Some(s) => o - s.exp.end + s.orig.end,
    }
}

/// Applies `f` to every offset a rendering reports.
fn remap(r: &mut Rendered, f: impl Fn(usize) -> usize) {
    for l in &mut r.links {
        l.offset = f(l.offset);
    }
    for u in &mut r.urls {
        u.offset = f(u.offset);
    }
    for (o, _) in &mut r.external {
        *o = f(*o);
    }
    for o in &mut r.missing_alt {
        *o = f(*o);
    }
    for (o, _) in &mut r.errors {
        *o = f(*o);
    }
    for (o, _) in &mut r.unknown_languages {
        *o = f(*o);
    }
}

/// Adds what `extra` found (offsets plus `shift`) to `r`.
fn merge(r: &mut Rendered, mut extra: Rendered, shift: usize) {
    remap(&mut extra, |o| o + shift);
    r.links.extend(extra.links);
    r.urls.extend(extra.urls);
    r.external.extend(extra.external);
    r.missing_alt.extend(extra.missing_alt);
    r.errors.extend(extra.errors);
    r.unknown_languages.extend(extra.unknown_languages);
    r.anchors.extend(extra.anchors);
    r.images.extend(extra.images);
    r.shortcodes.extend(extra.shortcodes);
    r.word_count += extra.word_count;
    r.errors.sort_by_key(|e| e.0);
}

/// Renders one call; errors go to `extra.errors`.
fn expand(
    call: &Call,
    nth: usize,
    body: &str,
    from: &str,
    opts: &RenderOptions<'_>,
    templates: &Templates,
    extra: &mut Rendered,
) -> Option<String> {
    let at = call.span.start;
    let name = &call.name;
    let template = format!("shortcodes/{name}.html");
    if !templates.has(&template) {
        let known: Vec<String> = templates
            .tera
            .get_template_names()
            .filter_map(|n| n.strip_prefix("shortcodes/")?.strip_suffix(".html"))
            .map(str::to_string)
            .collect();
        let mut known_sorted = known.clone();
        known_sorted.sort();
        let refs: Vec<&str> = known.iter().map(String::as_str).collect();
        let hint = match folio_content::frontmatter::suggest(name, &refs) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!(" (known: {})", known_sorted.join(", ")),
        };
        extra.errors.push((
            at,
            format!("unknown shortcode `{name}`: no templates/shortcodes/{name}.html in the site or its theme{hint}"),
        ));
        return None;
    }
    extra.shortcodes.push(template.clone());
    let mut ctx = Map::new();
    for (k, v, _) in &call.args {
        ctx.insert(k.clone(), v.clone());
    }
    let mut ok = true;
    if let Some(b) = BUILTINS.iter().find(|b| b.name == name) {
        for (arg, ty, default) in b.args {
            match (call.args.iter().find(|(k, _, _)| k == arg), default) {
                (Some((_, v, pos)), _) if !ty.accepts(v) => {
                    extra.errors.push((
                        *pos,
                        format!(
                            "argument `{arg}` of shortcode `{name}` must be {}, not {v}",
                            ty.name()
                        ),
                    ));
                    ok = false;
                }
                (Some(_), _) => {}
                (None, Some(d)) => {
                    // Optional arguments without a default stay undefined (`default` works).
                    let v = d();
                    if !v.is_null() {
                        ctx.insert(arg.to_string(), v);
                    }
                }
                (None, None) => {
                    extra.errors.push((
                        at,
                        format!("shortcode `{name}` is missing its argument `{arg}`"),
                    ));
                    ok = false;
                }
            }
        }
        if b.body != call.body.is_some() {
            let msg = if b.body {
                format!("shortcode `{name}` takes a body: write {{% {name}(…) %}}…{{% end %}}")
            } else {
                format!("shortcode `{name}` takes no body: write {{{{ {name}(…) }}}}")
            };
            extra.errors.push((at, msg));
            ok = false;
        }
        if name == "note" {
            let kind = ctx["kind"].as_str().unwrap_or_default().to_string();
            if !NOTE_KINDS.contains(&kind.as_str()) {
                let pos = call.args.iter().find(|a| a.0 == "kind").map_or(at, |a| a.2);
                extra.errors.push((
                    pos,
                    format!(
                        "shortcode `note`: kind `{kind}` is not one of {}",
                        NOTE_KINDS.join(", ")
                    ),
                ));
                ok = false;
            }
            if ctx["title"].as_str().is_some_and(str::is_empty) {
                let mut t = kind.clone();
                if let Some(c) = t.get_mut(..1) {
                    c.make_ascii_uppercase();
                }
                ctx.insert("title".into(), Value::String(t));
            }
        }
    }
    if ok {
        if let Some((arg, msg)) = embed_problem(name, &ctx) {
            let pos = call.args.iter().find(|a| a.0 == arg).map_or(at, |a| a.2);
            extra.errors.push((pos, msg));
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    ctx.insert("nth".into(), Value::from(nth));
    // Files the arguments name, resolved from the page; missing ones left to the link check.
    if let Some((images, base)) = opts.images {
        for key in ["src", "poster"] {
            let Some(src) = ctx.get(key).and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if src.is_empty() || src.contains("://") || src.starts_with("data:") {
                continue;
            }
            // The built-ins' files must exist (a site's own shortcodes may mean something else).
            if name == "figure" || name == "video" {
                extra.urls.push(UrlRef {
                    url: src.clone(),
                    offset: at,
                    image: name == "figure" || key == "poster",
                });
            }
            let path = src.split(['#', '?']).next().unwrap_or("");
            let resolved =
                crate::site::links::site_path(base, &crate::site::links::percent_decode(path));
            if let Some(p) = &resolved {
                ctx.insert(format!("{key}_url"), Value::String(p.clone()));
            }
            match images::for_page(images, base, &src) {
                Some((path, Ok(info))) => {
                    extra.images.push(path);
                    let alt = ctx
                        .get("alt")
                        .and_then(Value::as_str)
                        .or_else(|| ctx.get("caption").and_then(Value::as_str))
                        .unwrap_or_default()
                        .to_string();
                    ctx.insert(format!("{key}_image"), image_value(&info, &alt));
                }
                Some((_, Err(msg))) => {
                    extra.errors.push((at, msg));
                    return None;
                }
                None => {}
            }
        }
    }
    // A video's box is its poster's size unless given.
    if name == "video" && !ctx.contains_key("width") {
        if let Some(p) = ctx.get("poster_image").cloned() {
            ctx.insert("width".into(), p["width"].clone());
            ctx.insert("height".into(), p["height"].clone());
        }
    }
    if let Some(r) = &call.body {
        let inner = render_inner(&body[r.clone()], from, opts, Some(templates));
        ctx.insert("body".into(), Value::String(inner.html.clone()));
        merge(extra, inner, r.start);
    }
    let context = match tera::Context::from_value(Value::Object(ctx)) {
        Ok(c) => c,
        Err(e) => {
            extra.errors.push((at, format!("shortcode `{name}`: {e}")));
            return None;
        }
    };
    match templates.tera.render(&template, &context) {
        Ok(html) => Some(html),
        Err(e) => {
            let msg = chain(&e);
            let missing = msg
                .split("Variable `")
                .nth(1)
                .and_then(|s| s.split('`').next())
                .filter(|_| msg.contains("not found in context"));
            extra.errors.push((
                at,
                match missing {
                    Some(v) => format!("shortcode `{name}` is missing its argument `{v}` (templates/shortcodes/{name}.html uses it)"),
                    None => format!("shortcode `{name}`: {msg}"),
                },
            ));
            None
        }
    }
}

/// What a template gets for an image argument: the `<picture>` markup ready to show
/// (`html`) and its parts.
fn image_value(info: &Arc<ImageInfo>, alt: &str) -> Value {
    let (w, h) = info.size.unzip();
    json!({
        "html": markup::picture(info, alt, None, markup::CONTENT_SIZES),
        "url": info.url,
        "src": info.src(),
        "srcset": info.srcset(),
        "webp_srcset": info.webp_srcset(),
        "sizes": markup::CONTENT_SIZES,
        "width": w,
        "height": h,
        "mime": info.mime,
    })
}

fn chain(e: &tera::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_back_through_placeholders() {
        let segs = vec![
            Segment {
                exp: 5..15,
                orig: 5..30,
            },
            Segment {
                exp: 20..30,
                orig: 35..40,
            },
        ];
        assert_eq!(map_offset(&segs, 3), 3);
        assert_eq!(map_offset(&segs, 7), 5);
        assert_eq!(map_offset(&segs, 16), 31);
        assert_eq!(map_offset(&segs, 25), 35);
        assert_eq!(map_offset(&segs, 31), 41);
    }
}
