//! Fenced code blocks with Zola's annotations, so Zola content moves in unchanged:
//! ```` ```rust,linenos,linenostart=10,hl_lines=2 4-6,hide_lines=1,name=src/main.rs ````.
//!
//! The fence's info string is split at commas. A bare word is the language (the first one) or a
//! flag (`linenos`, `copy`); `key=value` sets `linenostart`, `hl_lines`, `hide_lines` or `name`.
//! Line ranges (`2 4-6`) count the block's own lines from 1, whatever `linenostart` says, as in
//! Zola. Anything else is an error, as is a range that is backwards, not a number or past the
//! block's end. Text after the first word of the first part (`rust title`, `rust {linenos=true}`)
//! is free-form CommonMark info and ignored, as it always was.
//!
//! A `diff-LANG` language (`diff-rust`) reads each line's first character as a diff marker (`+`
//! added, `-` removed, a space unchanged), highlights the rest as LANG and colours the added and
//! removed lines; the markers are shown in a gutter that a copy does not pick up. A plain `diff`
//! block is a patch: highlighted as one, with its added and removed lines coloured too.
//!
//! Every block is wrapped in `.code-block` (a `<figure>` with a `<figcaption>` when named) so the
//! theme's copy button has a place; a block without annotations takes the fast path (one
//! highlighted string, no per-line work). Annotated blocks are split into `<span class="line">`
//! elements; line numbers and diff markers live in `data-n` / `data-m` attributes that the
//! stylesheet shows with `::before`, which neither a selection nor the copy button copies.
//! Hidden lines (`hide_lines`) are left out of the page entirely, as Zola does, so neither the
//! display nor a copy has them.

use std::ops::RangeInclusive;

use crate::highlight::{escape, Highlighter};

/// A fence annotation that cannot be honoured: the message, and the byte offset of the
/// offending part within the info string (to point the error at it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FenceError {
    /// Where in the info string the problem starts.
    pub at: usize,
    /// What is wrong, for a `file:line:col: message` diagnostic.
    pub message: String,
}

/// The annotations folio knows.
const KEYS: &[&str] = &[
    "linenos",
    "copy",
    "linenostart",
    "hl_lines",
    "hide_lines",
    "name",
];

/// One line range as written: (offset in the info string, lines, text, annotation).
type Ranges<'a> = Vec<(usize, RangeInclusive<usize>, &'a str, &'static str)>;

/// The annotations of one fence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fence<'a> {
    lang: Option<&'a str>,
    linenos: bool,
    start: usize,
    hl: Ranges<'a>,
    hide: Ranges<'a>,
    name: Option<&'a str>,
}

/// The language named by an info string: its first word before any comma or `{`.
pub(crate) fn language(info: &str) -> Option<&str> {
    info.split(|c: char| c.is_whitespace() || c == ',' || c == '{')
        .next()
        .filter(|s| !s.is_empty())
}

fn parse(info: &str) -> Result<Fence<'_>, FenceError> {
    let mut f = Fence {
        start: 1,
        ..Fence::default()
    };
    let mut at = 0;
    for (i, part) in info.split(',').enumerate() {
        let here = at + (part.len() - part.trim_start().len());
        at += part.len() + 1;
        let tok = part.trim();
        if tok.is_empty() {
            continue;
        }
        if i == 0 {
            // The first part is CommonMark's: its first word is the language, the rest free
            // text, unless it is one of the annotations.
            let word = language(tok).unwrap_or("");
            let key = tok.split('=').next().unwrap_or("").trim();
            if !KEYS.contains(&key) {
                f.lang = Some(word).filter(|w| !w.is_empty());
                continue;
            }
        }
        let err = |message: String| FenceError { at: here, message };
        let (key, value) = match tok.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (tok, None),
        };
        match (key, value) {
            ("linenos", None) => f.linenos = true,
            // Zola's per-block copy switch; every block here has a copy button.
            ("copy", None) => {}
            ("linenos" | "copy", Some(_)) => {
                return Err(err(format!("annotation `{key}` takes no value")));
            }
            ("linenostart", Some(v)) => {
                f.start = v.parse().map_err(|_| {
                    err(format!(
                        "linenostart: `{v}` is not a line number (a whole number, 0 or more)"
                    ))
                })?;
            }
            ("hl_lines", Some(v)) => f.hl.extend(ranges("hl_lines", v, here)?),
            ("hide_lines", Some(v)) => f.hide.extend(ranges("hide_lines", v, here)?),
            ("name", Some(v)) if !v.is_empty() => f.name = Some(v),
            ("linenostart" | "hl_lines" | "hide_lines" | "name", _) => {
                return Err(err(format!("annotation `{key}` needs a value (`{key}=…`)")));
            }
            (word, None) if f.lang.is_none() && !word.contains(char::is_whitespace) => {
                f.lang = Some(word);
            }
            _ => {
                return Err(err(format!(
                    "unknown code block annotation `{tok}`; known: linenos, linenostart=N, \
                     hl_lines=RANGES, hide_lines=RANGES, name=NAME, copy"
                )));
            }
        }
    }
    Ok(f)
}

/// `2 4-6` → ranges, each with its offset in the info string and its text (for errors).
fn ranges<'a>(key: &'static str, v: &'a str, at: usize) -> Result<Ranges<'a>, FenceError> {
    let mut out = Vec::new();
    for r in v.split_whitespace() {
        let bad = |why: &str| FenceError {
            at,
            message: format!("{key}: `{r}` {why}"),
        };
        let num = |s: &str| -> Result<usize, FenceError> {
            match s.parse::<usize>() {
                Ok(0) => Err(bad("is not a line: lines count from 1")),
                Ok(n) => Ok(n),
                Err(_) => Err(bad("is not a line or a range of lines (`3` or `4-6`)")),
            }
        };
        let range = match r.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad("is backwards: write the first line first"));
                }
                a..=b
            }
            None => {
                let n = num(r)?;
                n..=n
            }
        };
        out.push((at, range, r, key));
    }
    Ok(out)
}

/// What rendering a block found besides its HTML.
#[derive(Debug, Default)]
pub(crate) struct BlockNotes {
    /// A language named by the fence that no grammar knows.
    pub unknown_language: Option<String>,
}

/// Renders one code block (fenced or, with `info` empty, indented) to HTML.
pub(crate) fn render(
    info: &str,
    code: &str,
    highlighter: Option<&Highlighter>,
    notes: &mut BlockNotes,
) -> Result<String, FenceError> {
    // The fast path: no annotations, no per-line work.
    if !info.contains(',') {
        let lang = language(info);
        if !lang.is_some_and(|l| l == "diff" || l.starts_with("diff-")) {
            let inner = highlight(highlighter, lang, code, notes);
            return Ok(frame(lang, None, &inner, ""));
        }
    }
    let f = parse(info)?;
    let (shown_lang, diff_of) = match f.lang {
        Some(l) => match l.strip_prefix("diff-").filter(|s| !s.is_empty()) {
            Some(base) => (Some(l), Some(base)),
            None => (Some(l), None),
        },
        None => (None, None),
    };
    // diff-LANG: the markers come off before highlighting as LANG.
    let (markers, body): (Vec<Option<char>>, String) = match diff_of {
        Some(_) => {
            let mut ms = Vec::new();
            let mut body = String::with_capacity(code.len());
            for line in code.split_inclusive('\n') {
                match line.chars().next() {
                    Some(m @ ('+' | '-' | ' ')) => {
                        ms.push(Some(m));
                        body.push_str(&line[1..]);
                    }
                    _ => {
                        ms.push(None);
                        body.push_str(line);
                    }
                }
            }
            (ms, body)
        }
        None => (Vec::new(), String::new()),
    };
    let (hl_lang, text) = match diff_of {
        Some(base) => (Some(base), body.as_str()),
        None => (shown_lang, code),
    };
    let inner = highlight(highlighter, hl_lang, text, notes);
    let lines = split_lines(&inner);
    let count = lines.len();
    for (at, r, written, key) in f.hl.iter().chain(f.hide.iter()) {
        if *r.end() > count {
            return Err(FenceError {
                at: *at,
                message: format!(
                    "{key}: `{written}` is past the end of the block, which has {count} line{}",
                    if count == 1 { "" } else { "s" }
                ),
            });
        }
    }
    let patch: Vec<&str> = if shown_lang == Some("diff") {
        code.split('\n').collect()
    } else {
        Vec::new()
    };
    let mut out = String::with_capacity(inner.len() + count * 40);
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        if f.hide.iter().any(|(_, r, _, _)| r.contains(&n)) {
            continue;
        }
        out.push_str("<span class=\"line");
        if f.hl.iter().any(|(_, r, _, _)| r.contains(&n)) {
            out.push_str(" hl");
        }
        let marker = markers.get(i).copied().flatten();
        let change = match marker {
            Some('+') => Some("ins"),
            Some('-') => Some("del"),
            _ => patch.get(i).and_then(|l| patch_change(l)),
        };
        if let Some(c) = change {
            out.push(' ');
            out.push_str(c);
        }
        out.push('"');
        if f.linenos {
            out.push_str(&format!(" data-n=\"{}\"", f.start + i));
        }
        if diff_of.is_some() {
            out.push_str(match marker {
                Some('+') => " data-m=\"+\"",
                Some('-') => " data-m=\"-\"",
                _ => " data-m=\" \"",
            });
        }
        out.push('>');
        out.push_str(line);
        out.push_str("</span>");
    }
    Ok(wrap_lines(
        shown_lang,
        f.name,
        &out,
        f.linenos,
        diff_of.is_some(),
    ))
}

/// Added or removed, for a line of a patch (not its `+++`/`---` file headers).
fn patch_change(line: &str) -> Option<&'static str> {
    if line.starts_with("+++") || line.starts_with("---") {
        None
    } else if line.starts_with('+') {
        Some("ins")
    } else if line.starts_with('-') {
        Some("del")
    } else {
        None
    }
}

fn highlight(
    highlighter: Option<&Highlighter>,
    lang: Option<&str>,
    code: &str,
    notes: &mut BlockNotes,
) -> String {
    match highlighter {
        Some(h) => {
            if let Some(l) = lang {
                let base = l
                    .strip_prefix("diff-")
                    .filter(|s| !s.is_empty())
                    .unwrap_or(l);
                if !h.knows(base)
                    && !matches!(base, "text" | "txt" | "plain" | "console" | "output")
                {
                    notes.unknown_language = Some(base.to_string());
                }
            }
            h.highlight(lang, code).to_string()
        }
        None => escape(code),
    }
}

fn wrap_lines(
    lang: Option<&str>,
    name: Option<&str>,
    inner: &str,
    linenos: bool,
    diff: bool,
) -> String {
    let mut extra = String::from(" lines");
    if linenos {
        extra.push_str(" linenos");
    }
    if diff {
        extra.push_str(" diff");
    }
    frame(lang, name, inner, &extra)
}

/// The block's frame: the caption (if named), `<pre>` and `<code>`.
fn frame(lang: Option<&str>, name: Option<&str>, inner: &str, pre_classes: &str) -> String {
    let lang_attr = lang
        .map(|l| format!(" data-lang=\"{}\"", escape(l)))
        .unwrap_or_default();
    let code_class = lang
        .map(|l| format!(" class=\"language-{}\"", escape(l)))
        .unwrap_or_default();
    // tabindex: a block that scrolls sideways must be reachable by keyboard.
    let pre = format!(
        "<pre class=\"code{pre_classes}\"{lang_attr} tabindex=\"0\"><code{code_class}>{inner}</code></pre>"
    );
    match name {
        Some(n) => format!(
            "<figure class=\"code-block\"><figcaption class=\"code-name\">{}</figcaption>{pre}</figure>\n",
            escape(n)
        ),
        None => format!("<div class=\"code-block\">{pre}</div>\n"),
    }
}

/// Cuts highlighted HTML into lines, each keeping its trailing newline, closing a token span at
/// a line's end and opening it again on the next line (a comment or string may span lines).
/// The highlighter's spans are flat and its text escaped, so a `<` always starts a tag.
fn split_lines(html: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut open: Option<&str> = None;
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix("</span>") {
            cur.push_str("</span>");
            open = None;
            rest = tail;
        } else if rest.starts_with("<span ") {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = &rest[..end];
            cur.push_str(tag);
            open = Some(tag);
            rest = &rest[end..];
        } else {
            let stop = rest.find(['<', '\n']).unwrap_or(rest.len());
            if stop == 0 {
                // a newline
                if open.is_some() {
                    cur.push_str("</span>");
                }
                cur.push('\n');
                lines.push(std::mem::take(&mut cur));
                if let Some(tag) = open {
                    cur.push_str(tag);
                }
                rest = &rest[1..];
            } else {
                cur.push_str(&rest[..stop]);
                rest = &rest[stop..];
            }
        }
    }
    // A last line without a newline (or only a reopened span, dropped).
    if let Some(tag) = open {
        if cur == tag {
            cur.clear();
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(info: &str, code: &str) -> String {
        render(info, code, None, &mut BlockNotes::default()).unwrap()
    }

    fn err(info: &str, code: &str) -> FenceError {
        render(info, code, None, &mut BlockNotes::default()).unwrap_err()
    }

    #[test]
    fn a_block_without_annotations_is_one_piece() {
        let html = plain("rust", "a\nb\n");
        assert_eq!(
            html,
            "<div class=\"code-block\"><pre class=\"code\" data-lang=\"rust\" tabindex=\"0\"><code class=\"language-rust\">a\nb\n</code></pre></div>\n"
        );
        assert!(plain("", "<x>\n").contains("<code>&lt;x&gt;\n</code>"));
    }

    #[test]
    fn zola_annotations_number_highlight_hide_and_name() {
        let html = plain(
            "rust,linenos,linenostart=10,hl_lines=2 4-5,hide_lines=1,name=src/main.rs",
            "use x;\nfn a() {}\nfn b() {}\nfn c() {}\nfn d() {}\n",
        );
        assert!(html.starts_with("<figure class=\"code-block\"><figcaption class=\"code-name\">src/main.rs</figcaption><pre class=\"code lines linenos\""), "{html}");
        assert!(
            !html.contains("use x;"),
            "hidden lines are left out: {html}"
        );
        assert!(!html.contains("data-n=\"10\""), "{html}");
        assert!(
            html.contains("<span class=\"line hl\" data-n=\"11\">fn a() {}\n</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"line\" data-n=\"12\">fn b() {}\n</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"line hl\" data-n=\"13\">"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"line hl\" data-n=\"14\">"),
            "{html}"
        );
    }

    #[test]
    fn spans_crossing_lines_are_closed_and_reopened() {
        let lines = split_lines("<span class=\"hl-c\">/* a\nb */</span> x\ny");
        assert_eq!(
            lines,
            [
                "<span class=\"hl-c\">/* a</span>\n",
                "<span class=\"hl-c\">b */</span> x\n",
                "y"
            ]
        );
        assert_eq!(
            split_lines("<span class=\"hl-c\">a\n</span>"),
            [
                "<span class=\"hl-c\">a</span>\n",
                "<span class=\"hl-c\"></span>"
            ]
        );
    }

    #[test]
    fn highlighted_multiline_tokens_stay_balanced() {
        let h = Highlighter::new();
        let html = render(
            "rust,hl_lines=2",
            "/* one\ntwo */\nfn x() {}\n",
            Some(&h),
            &mut BlockNotes::default(),
        )
        .unwrap();
        for line in html.split("<span class=\"line").skip(1) {
            let body = &line[..line.find("</span><span class=\"line").unwrap_or(line.len())];
            assert_eq!(
                body.matches("<span").count() + 1,
                body.matches("</span>").count().max(1),
                "{line}"
            );
        }
        assert!(
            html.contains("<span class=\"line hl\"><span class=\"hl-c\">two */</span>"),
            "{html}"
        );
    }

    #[test]
    fn diff_lang_moves_markers_to_a_gutter_and_colours_lines() {
        let h = Highlighter::new();
        let html = render(
            "diff-rust,name=lib.rs",
            " fn a() {\n-    old();\n+    new();\n }\n",
            Some(&h),
            &mut BlockNotes::default(),
        )
        .unwrap();
        assert!(
            html.contains(
                "<span class=\"line del\" data-m=\"-\">    <span class=\"hl-nb\">old</span>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"line ins\" data-m=\"+\">"),
            "{html}"
        );
        assert!(html.contains("data-lang=\"diff-rust\""), "{html}");
        assert!(
            !html.contains(">-"),
            "the marker is not in the text: {html}"
        );
        let patch = plain("diff", "--- a\n+++ b\n-x\n+y\n z\n");
        assert!(patch.contains("<span class=\"line\">--- a\n"), "{patch}");
        assert!(patch.contains("<span class=\"line del\">-x\n"), "{patch}");
        assert!(patch.contains("<span class=\"line ins\">+y\n"), "{patch}");
    }

    #[test]
    fn bad_annotations_are_errors_pointing_at_the_part() {
        let e = err("rust,hl_lines=5-2", "a\n");
        assert_eq!(e.at, 5);
        assert!(e.message.contains("`5-2` is backwards"), "{e:?}");
        assert!(err("rust,hl_lines=x", "a\n")
            .message
            .contains("`x` is not a line"));
        assert!(err("rust,hl_lines=0", "a\n").message.contains("from 1"));
        let e = err("rust, hl_lines=1 3", "a\nb\n");
        assert_eq!(e.at, 6);
        assert!(
            e.message
                .contains("`3` is past the end of the block, which has 2 lines"),
            "{e:?}"
        );
        assert!(err("rust,hide_lines=4", "a\n")
            .message
            .starts_with("hide_lines:"));
        let e = err("rust,linenos,colour=red", "a\n");
        assert_eq!(e.at, 13);
        assert!(
            e.message
                .contains("unknown code block annotation `colour=red`"),
            "{e:?}"
        );
        assert!(err("rust,python", "a\n").message.contains("unknown"));
        assert!(err("rust,linenostart=-1", "a\n")
            .message
            .contains("linenostart"));
        assert!(err("rust,name=", "a\n").message.contains("needs a value"));
    }

    #[test]
    fn the_language_may_come_after_the_flags() {
        let html = plain(",linenos,rust", "a\n");
        assert!(html.contains("data-lang=\"rust\""), "{html}");
        let html = plain("linenos,hl_lines=1", "a\n");
        assert!(
            html.contains("<span class=\"line hl\" data-n=\"1\">a\n</span>"),
            "{html}"
        );
    }
}
