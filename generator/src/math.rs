//! TeX formulas (`$…$` inline, `$$…$$` display) to MathML at build time, through
//! `pulldown-latex`: no JavaScript on the page, and Chromium, Firefox and Safari render MathML
//! Core natively.
//!
//! pulldown-cmark finds the formulas (its rules keep prices such as "$5 and $10" text: an
//! opening `$` must not be followed by a space, nor a closing one preceded by one); this module
//! only converts. A formula that does not parse is an error for the build, never a red box on
//! the page. The renderer writes `style` attributes for a few commands (colours, negative
//! spaces, row spacing), which the site's strict Content-Security-Policy would refuse anyway:
//! they are taken out, so the page has nothing the browser blocks.

use pulldown_latex::{config::DisplayMode, push_mathml, Parser, RenderConfig, Storage};

/// Renders one formula to a `<math>` element, or says why the TeX is wrong.
pub(crate) fn to_mathml(tex: &str, display: bool) -> Result<String, String> {
    let storage = Storage::new();
    let mut events = Vec::new();
    for e in Parser::new(tex, &storage) {
        match e {
            Ok(e) => events.push(e),
            Err(err) => return Err(message(&err.to_string(), tex)),
        }
    }
    let config = RenderConfig {
        display_mode: if display {
            DisplayMode::Block
        } else {
            DisplayMode::Inline
        },
        ..RenderConfig::default()
    };
    let mut out = String::with_capacity(tex.len() * 8);
    push_mathml(
        &mut out,
        events.into_iter().map(Ok::<_, std::convert::Infallible>),
        config,
    )
    .map_err(|e| format!("could not write MathML: {e}"))?;
    Ok(for_html(&out))
}

/// The first line of the parser's message (the rest is a drawing of the context, which the
/// diagnostic's position replaces), without its "parsing error: " prefix.
fn message(full: &str, tex: &str) -> String {
    let first = full.lines().next().unwrap_or(full);
    let first = first.strip_prefix("parsing error: ").unwrap_or(first);
    let shown: String = tex.trim().chars().take(60).collect();
    let more = if shown.len() < tex.trim().len() {
        "…"
    } else {
        ""
    };
    format!("TeX error: {} (in `{shown}{more}`)", first.trim())
}

/// Makes the renderer's MathML fit an HTML page: drops every ` style="…"` attribute (text
/// between tags is left as it is), and writes self-closing tags (`<mspace … />`) open and
/// closed, since an HTML minifier may drop the slash and leave the element open.
fn for_html(html: &str) -> String {
    if !html.contains(" style=\"") && !html.contains("/>") {
        return html.to_string();
    }
    let mut out = String::with_capacity(html.len());
    // The name of the tag being read, if inside one.
    let mut tag: Option<&str> = None;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        if let Some(name) = tag {
            if let Some(tail) = rest.strip_prefix(" style=\"") {
                let end = tail.find('"').map_or(tail.len(), |e| e + 1);
                rest = &tail[end..];
                continue;
            }
            if c == '"' {
                // an attribute value: copied whole, whatever it holds
                let end = rest[1..].find('"').map_or(rest.len(), |e| e + 2);
                out.push_str(&rest[..end]);
                rest = &rest[end..];
                continue;
            }
            if let Some(tail) = rest.strip_prefix("/>") {
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push_str("></");
                out.push_str(name);
                out.push('>');
                tag = None;
                rest = tail;
                continue;
            }
            if c == '>' {
                tag = None;
            }
        } else if c == '<' {
            let name_len = rest[1..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '/'))
                .unwrap_or(rest.len() - 1);
            tag = Some(&rest[1..1 + name_len]);
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_display_formulas_become_mathml() {
        let m = to_mathml(r"e^{i\pi} + 1 = 0", false).unwrap();
        assert!(m.starts_with("<math"), "{m}");
        assert!(m.contains("<msup>"), "{m}");
        assert!(m.contains("π"), "{m}");
        assert!(!m.contains("display=\"block\""), "{m}");
        let d = to_mathml(r"\frac{a}{b}", true).unwrap();
        assert!(d.contains("display=\"block\""), "{d}");
        assert!(d.contains("<mfrac>"), "{d}");
    }

    #[test]
    fn a_tex_error_is_an_error_with_a_message() {
        let e = to_mathml(r"\frac{a}{b", false).unwrap_err();
        assert!(e.starts_with("TeX error: "), "{e}");
        assert!(!e.contains('\n'), "{e}");
        assert!(to_mathml(r"\nosuchcommand", false).is_err());
    }

    #[test]
    fn style_attributes_go_text_stays() {
        let m = to_mathml(r"\color{red} x", false).unwrap();
        assert!(!m.contains("style="), "{m}");
        assert_eq!(
            for_html("<a style=\"x\" b=\"c style=&quot; />\">t style=\"y\" /></a>"),
            "<a b=\"c style=&quot; />\">t style=\"y\" /></a>"
        );
    }

    #[test]
    fn no_self_closing_tags_a_minifier_could_break() {
        let m = to_mathml(r"x\,dx \quad y", false).unwrap();
        assert!(!m.contains("/>"), "{m}");
        assert!(
            m.contains("<mspace width=\"0.16666667em\"></mspace>"),
            "{m}"
        );
    }
}
