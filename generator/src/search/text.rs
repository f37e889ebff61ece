//! The text of a page for the search index: the visible text of a rendered body (headings
//! apart), and the terms of a text.

/// Longer runs of letters and digits are not terms (hashes, base64).
pub(crate) const MAX_TERM: usize = 32;

/// The search terms of a text: runs of letters and digits, lower-cased, 2 to [`MAX_TERM`]
/// characters.
pub(crate) fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| {
            let n = w.chars().count();
            (2..=MAX_TERM).contains(&n)
        })
        .map(str::to_lowercase)
}

/// The text of a rendered body.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Text {
    /// The headings' text, separated by newlines.
    pub(crate) headings: String,
    /// All visible text, headings included, blocks separated by newlines.
    pub(crate) body: String,
}

/// Elements that never hold text a reader sees.
const HIDDEN: &[&str] = &["script", "style", "template", "svg", "math", "button"];
/// Elements with no closing tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];
/// Elements after which the text breaks (a new line in the stored text).
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "pre",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
    "td",
    "th",
    "table",
    "section",
    "figure",
    "figcaption",
    "dt",
    "dd",
    "br",
    "hr",
    "details",
    "summary",
    "aside",
];

/// The visible text of an HTML body: tags dropped, entities decoded, `<pre>` left out unless
/// `include_code`, elements marked `aria-hidden="true"` (heading anchors) and scripts left out.
pub(crate) fn extract(html: &str, include_code: bool) -> Text {
    let mut out = Text::default();
    // Open elements: (name, hides its content, is a heading).
    let mut stack: Vec<(String, bool, bool)> = Vec::new();
    let mut rest = html;
    let hidden = |stack: &[(String, bool, bool)]| stack.iter().any(|e| e.1);
    let heading = |stack: &[(String, bool, bool)]| stack.iter().any(|e| e.2);
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut out, rest, hidden(&stack), heading(&stack));
            break;
        };
        push_text(&mut out, &rest[..lt], hidden(&stack), heading(&stack));
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
            continue;
        }
        let end = tag_end(rest);
        let tag = &rest[1..end.saturating_sub(1).max(1)];
        rest = &rest[end..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        if BLOCKS.contains(&name.as_str()) {
            newline(&mut out.body);
            if heading(&stack) || is_heading(&name) {
                newline(&mut out.headings);
            }
        }
        if closing {
            if let Some(i) = stack.iter().rposition(|e| e.0 == name) {
                stack.truncate(i);
            }
            continue;
        }
        if VOID.contains(&name.as_str()) || tag.ends_with('/') {
            continue;
        }
        let raw_hidden = HIDDEN.contains(&name.as_str()) || (name == "pre" && !include_code);
        let hides = raw_hidden || tag.contains("aria-hidden=\"true\"");
        if raw_hidden {
            // Nothing inside counts (highlighted code is thousands of spans): go straight
            // to the closing tag (these elements do not nest in rendered markdown).
            let close = format!("</{name}");
            rest = rest.find(&close).map_or("", |i| &rest[i..]);
        }
        stack.push((name, hides, false));
        let last = stack.len() - 1;
        stack[last].2 = is_heading(&stack[last].0);
    }
    out.body = out.body.trim().to_string();
    out.headings = out.headings.trim().to_string();
    out
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// The end of the tag `s` starts with (just past its `>`), skipping quoted attribute values.
fn tag_end(s: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return i + 1,
            _ => {}
        }
    }
    s.len()
}

fn newline(s: &mut String) {
    if !s.is_empty() && !s.ends_with('\n') {
        while s.ends_with(' ') {
            s.pop();
        }
        s.push('\n');
    }
}

fn push_text(out: &mut Text, raw: &str, hidden: bool, heading: bool) {
    if hidden || raw.is_empty() {
        return;
    }
    let text = decode_entities(raw);
    let starts_space = text.starts_with(char::is_whitespace);
    let ends_space = text.ends_with(char::is_whitespace);
    for target in [Some(&mut out.body), heading.then_some(&mut out.headings)]
        .into_iter()
        .flatten()
    {
        let mut space = starts_space;
        for word in text.split_whitespace() {
            if space && !target.is_empty() && !target.ends_with([' ', '\n']) {
                target.push(' ');
            }
            target.push_str(word);
            space = true;
        }
        if ends_space && !target.is_empty() && !target.ends_with([' ', '\n']) {
            target.push(' ');
        }
    }
}

/// Decodes the character references an HTML renderer writes (named ones for the usual
/// characters, and every numeric one).
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..semi];
        let c = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => name
                .strip_prefix("#x")
                .or_else(|| name.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_leaves_out_code_anchors_and_scripts_and_decodes_entities() {
        let html = "<h2 id=\"a\">Fast &amp; small<a class=\"anchor\" href=\"#a\" aria-hidden=\"true\" tabindex=\"-1\">#</a></h2>\n<p>Uses <code>mmap</code> &#8212; a lot.</p><pre class=\"code\"><code>let zebra = 1;</code></pre><script>var hidden;</script><p>end</p>";
        let t = extract(html, false);
        assert_eq!(t.headings, "Fast & small");
        assert_eq!(t.body, "Fast & small\nUses mmap \u{2014} a lot.\nend");
        let with_code = extract(html, true);
        assert!(with_code.body.contains("let zebra = 1;"));
        assert!(!with_code.body.contains("hidden"));
    }

    #[test]
    fn terms_are_lowercased_alphanumeric_runs() {
        let t: Vec<String> = terms("Ray-tracer in C, 2× faster: Übergröße x86_64").collect();
        assert_eq!(
            t,
            ["ray", "tracer", "in", "faster", "übergröße", "x86", "64"]
        );
    }
}
