//! Finding shortcodes in a markdown body (outside code) and reading their arguments, Zola's
//! syntax: `{{ name(key=value, …) }}` and `{% name(…) %}body{% end %}`.

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag};
use serde_json::Value;

/// One shortcode call found in a body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    /// The shortcode's name (`figure`).
    pub name: String,
    /// Arguments in the order written: (name, value, byte offset of the name).
    pub args: Vec<(String, Value, usize)>,
    /// Where the call is written, from `{{`/`{%` to the end of its `}}` or `{% end %}`.
    pub span: Range<usize>,
    /// The body between `%}` and `{% end %}`, for the `{% %}` form.
    pub body: Option<Range<usize>>,
}

/// What the scan found: calls, literal text to show (`{{/* … */}}`), errors.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Calls and escapes in the order written, not overlapping.
    pub items: Vec<Item>,
    /// (byte offset, message).
    pub errors: Vec<(usize, String)>,
}

/// A shortcode call, or an escaped one to show as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// A call to render.
    Call(Call),
    /// `{{/* x() */}}`: shows `{{ x() }}` (span, text).
    Literal(Range<usize>, String),
}

/// The byte ranges of code (code spans, fenced and indented blocks), where `{{` is text.
fn code_ranges(body: &str) -> Vec<Range<usize>> {
    let opts = Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH;
    let mut out: Vec<Range<usize>> = Parser::new_ext(body, opts)
        .into_offset_iter()
        .filter_map(|(e, r)| match e {
            Event::Code(_) | Event::Start(Tag::CodeBlock(_)) => Some(r),
            _ => None,
        })
        .collect();
    out.sort_by_key(|r| r.start);
    out
}

/// Scans `body` for shortcodes.
pub(crate) fn scan(body: &str) -> Found {
    let code = code_ranges(body);
    let in_code = |at: usize| code.iter().find(|r| r.start <= at && at < r.end).cloned();
    let b = body.as_bytes();
    let mut found = Found::default();
    let mut i = 0;
    while let Some(rel) = body[i..].find('{') {
        let at = i + rel;
        i = at + 1;
        let Some(&next) = b.get(at + 1) else { break };
        if next != b'{' && next != b'%' {
            continue;
        }
        if let Some(r) = in_code(at) {
            i = r.end.max(i);
            continue;
        }
        let block = next == b'%';
        let close = if block { "%}" } else { "}}" };
        let rest = &body[at + 2..];
        // `{{/* x() */}}`: an escaped shortcode, shown as written without the comment marks.
        if let Some(inner) = rest.strip_prefix("/*") {
            if let Some(end) = inner.find(&format!("*/{close}")) {
                let open = if block { "{%" } else { "{{" };
                let text = format!("{open}{}{close}", &inner[..end]);
                let stop = at + 4 + end + 4;
                found.items.push(Item::Literal(at..stop, text));
                i = stop;
                continue;
            }
        }
        // Hugo's `{{< name >}}` and `{{% name %}}`.
        if !block && (rest.starts_with('<') || rest.starts_with('%')) {
            found.errors.push((
                at,
                "Hugo shortcode syntax `{{< … >}}` is not supported: folio takes Zola's, `{{ name(key=\"value\") }}` (see docs/shortcodes.md)".into(),
            ));
            let end = if rest.starts_with('<') { ">}}" } else { "%}}" };
            i = rest.find(end).map_or(at + 3, |e| at + 2 + e + 3);
            continue;
        }
        let mut p = Cursor {
            s: body,
            at: at + 2,
        };
        p.ws();
        let name_at = p.at;
        let name = p.ident();
        if name.is_empty() {
            continue;
        }
        p.ws();
        if block && name == "end" && body[p.at..].starts_with("%}") {
            found
                .errors
                .push((at, "`{% end %}` without a shortcode to close".into()));
            i = p.at + 2;
            continue;
        }
        if !body[p.at..].starts_with('(') {
            continue; // `{{ word }}` in prose: not a shortcode
        }
        p.at += 1;
        let args = match p.args() {
            Ok(a) => a,
            Err((pos, msg)) => {
                found
                    .errors
                    .push((pos, format!("shortcode `{name}`: {msg}")));
                i = body[pos..].find(close).map_or(pos + 1, |e| pos + e + 2);
                continue;
            }
        };
        p.ws();
        if !body[p.at..].starts_with(close) {
            found.errors.push((
                p.at,
                format!("shortcode `{name}`: expected `{close}` after its arguments"),
            ));
            continue;
        }
        p.at += 2;
        let (span, body_range) = if block {
            match find_end(body, p.at, &in_code) {
                Some((end_at, after)) => (at..after, Some(p.at..end_at)),
                None => {
                    found.errors.push((
                        at,
                        format!(
                            "unclosed shortcode `{{% {name}(…) %}}`: no `{{% end %}}` after it"
                        ),
                    ));
                    i = p.at;
                    continue;
                }
            }
        } else {
            (at..p.at, None)
        };
        debug_assert!(name_at > at);
        i = span.end;
        found.items.push(Item::Call(Call {
            name: name.to_string(),
            args,
            span,
            body: body_range,
        }));
    }
    found
}

/// The next `{% end %}` from `from` outside code: (its start, the offset after it).
fn find_end(
    body: &str,
    mut from: usize,
    in_code: &impl Fn(usize) -> Option<Range<usize>>,
) -> Option<(usize, usize)> {
    while let Some(rel) = body[from..].find("{%") {
        let at = from + rel;
        if let Some(r) = in_code(at) {
            from = r.end.max(at + 2);
            continue;
        }
        let mut p = Cursor {
            s: body,
            at: at + 2,
        };
        p.ws();
        if p.ident() == "end" {
            p.ws();
            if body[p.at..].starts_with("%}") {
                return Some((at, p.at + 2));
            }
        }
        from = at + 2;
    }
    None
}

/// A reading position in the body.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

type ParseResult<T> = Result<T, (usize, String)>;

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.at..].chars().next()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += self.peek().map_or(1, char::len_utf8);
        }
    }

    fn ident(&mut self) -> &'a str {
        let start = self.at;
        let rest = &self.s[start..];
        let len = rest
            .char_indices()
            .find(|&(i, c)| !(c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(rest.len(), |(i, _)| i);
        self.at += len;
        &self.s[start..start + len]
    }

    /// `key=value, …)` (the `(` already read).
    fn args(&mut self) -> ParseResult<Vec<(String, Value, usize)>> {
        let mut out: Vec<(String, Value, usize)> = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(')') {
                self.at += 1;
                return Ok(out);
            }
            let key_at = self.at;
            let key = self.ident();
            if key.is_empty() {
                return Err((self.at, "expected an argument name or `)`".into()));
            }
            if out.iter().any(|(k, _, _)| k == key) {
                return Err((key_at, format!("argument `{key}` given twice")));
            }
            self.ws();
            if self.peek() != Some('=') {
                return Err((self.at, format!("expected `=` after `{key}`")));
            }
            self.at += 1;
            self.ws();
            let value = self.value(key)?;
            out.push((key.to_string(), value, key_at));
            self.ws();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(')') => {}
                _ => return Err((self.at, "expected `,` or `)` after an argument".into())),
            }
        }
    }

    fn value(&mut self, key: &str) -> ParseResult<Value> {
        let at = self.at;
        match self.peek() {
            Some(q @ ('"' | '\'' | '`')) => {
                self.at += 1;
                let mut s = String::new();
                loop {
                    let Some(c) = self.peek() else {
                        return Err((at, format!("unclosed string for `{key}`")));
                    };
                    self.at += c.len_utf8();
                    if c == q {
                        return Ok(Value::String(s));
                    }
                    if c == '\\' && q != '`' {
                        match self.peek() {
                            Some(e @ ('\\' | '"' | '\'')) => {
                                s.push(e);
                                self.at += 1;
                                continue;
                            }
                            Some('n') => {
                                s.push('\n');
                                self.at += 1;
                                continue;
                            }
                            _ => {}
                        }
                    }
                    s.push(c);
                }
            }
            Some('[') => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    if self.peek() == Some(']') {
                        self.at += 1;
                        return Ok(Value::Array(items));
                    }
                    items.push(self.value(key)?);
                    self.ws();
                    match self.peek() {
                        Some(',') => self.at += 1,
                        Some(']') => {}
                        _ => {
                            return Err((
                                self.at,
                                format!("expected `,` or `]` in the array of `{key}`"),
                            ))
                        }
                    }
                }
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let rest = &self.s[at..];
                let len = rest
                    .char_indices()
                    .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && c == '-')))
                    .map_or(rest.len(), |(i, _)| i);
                let text = &rest[..len];
                self.at += len;
                if let Ok(n) = text.parse::<i64>() {
                    return Ok(Value::from(n));
                }
                match text.parse::<f64>() {
                    Ok(f) => Ok(Value::from(f)),
                    Err(_) => Err((at, format!("`{text}` is not a number (argument `{key}`)"))),
                }
            }
            _ => {
                let word = self.ident();
                match word {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    _ => Err((
                        at,
                        format!("bad value for `{key}`: expected a quoted string, a number, true/false or an array"),
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(body: &str) -> Vec<Call> {
        scan(body)
            .items
            .into_iter()
            .filter_map(|i| match i {
                Item::Call(c) => Some(c),
                Item::Literal(..) => None,
            })
            .collect()
    }

    #[test]
    fn arguments_of_every_type() {
        let c =
            calls(r#"x {{ f(a="s \"q\"", b='x', c=-3, d=1.5, e=true, f=[1, "two", false],) }} y"#);
        assert_eq!(c.len(), 1);
        let v: Vec<String> = c[0]
            .args
            .iter()
            .map(|(k, v, _)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            v,
            [
                r#"a="s \"q\"""#,
                r#"b="x""#,
                "c=-3",
                "d=1.5",
                "e=true",
                r#"f=[1,"two",false]"#
            ]
        );
        assert_eq!(&r#"x {{ f("#[..2], "x ");
        assert_eq!(c[0].span.start, 2);
    }

    #[test]
    fn bodies_code_and_prose() {
        let md = "{% note(kind=\"tip\") %}\nHi `{{ x() }}`\n{% end %}\n\n```\n{{ y() }}\n```\n\n    {{ z() }}\n\nTera's {{ var }} and `{% end %}`.\n";
        let f = scan(md);
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        let c = calls(md);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(&md[c[0].body.clone().unwrap()], "\nHi `{{ x() }}`\n");
    }

    #[test]
    fn errors_have_positions() {
        let f = scan("ab {% note() %} never closed");
        assert_eq!(f.errors[0].0, 3);
        assert!(f.errors[0].1.contains("unclosed"), "{:?}", f.errors);
        let f = scan("{{ f(a=) }}");
        assert_eq!(f.errors[0].0, 7, "{:?}", f.errors);
        let f = scan("x {{< figure src=\"a\" >}}");
        assert!(f.errors[0].1.contains("Hugo"));
        let f = scan("{{/* f(a=1) */}}");
        assert_eq!(f.items, vec![Item::Literal(0..16, "{{ f(a=1) }}".into())]);
    }
}
