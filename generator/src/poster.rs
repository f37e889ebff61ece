//! A recording's poster frame: the terminal screen at one moment of an asciicast, computed
//! by a terminal emulator (the `vt100` crate) at build time and written as static HTML, so
//! the demo has a picture before (and without) any JavaScript.
//!
//! The HTML is a `<pre>` of exactly rows × columns cells (blank cells are spaces), so its
//! box has the recording's size from the first paint. Attributes become CSS classes (the
//! strict CSP forbids inline styles): `f0`–`f15` foreground, `g0`–`g15` background, `fB`
//! (foreground in the terminal's background colour) and `gF` (background in its foreground
//! colour) for inverse video of the defaults, `b` bold, `d` dim, `i` italic, `u` underline.
//! 256-colour and RGB colours are drawn in the nearest of the 16 palette colours.

use std::fmt::Write as _;
use std::num::NonZeroU16;

use folio_content::asciicast::{Cast, EventKind};

/// The xterm palette the 16 classes are tuned to (used to map other colours onto them).
const PALETTE: [(u8, u8, u8); 16] = [
    (0, 0, 0),
    (205, 0, 0),
    (0, 205, 0),
    (205, 205, 0),
    (0, 0, 238),
    (205, 0, 205),
    (0, 205, 205),
    (229, 229, 229),
    (127, 127, 127),
    (255, 0, 0),
    (0, 255, 0),
    (255, 255, 0),
    (92, 92, 255),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 255),
];

/// The screen of `cast` after every output up to `at` seconds (`None`: the whole recording).
pub(crate) fn screen_at(cast: &Cast, at: Option<f64>) -> vt100::Screen {
    let nz = |v: u16| NonZeroU16::new(v).unwrap_or(NonZeroU16::MIN);
    let mut parser = vt100::Parser::new(nz(cast.height), nz(cast.width), 0);
    for e in &cast.events {
        if at.is_some_and(|t| e.time > t) {
            break;
        }
        match &e.kind {
            EventKind::Output(s) => parser.process(s.as_bytes()),
            EventKind::Resize(c, r) => parser.set_size(nz(*r), nz(*c)),
            EventKind::Input(_) | EventKind::Marker(_) => {}
        }
    }
    parser.screen().clone()
}

/// The screen as a `<pre>` of its rows (see the module's documentation for the classes).
pub(crate) fn to_html(screen: &vt100::Screen) -> String {
    let (rows, cols) = screen.size();
    let (rows, cols) = (rows.get(), cols.get());
    let mut out = String::with_capacity(usize::from(rows) * (usize::from(cols) + 1));
    for row in 0..rows {
        if row > 0 {
            out.push('\n');
        }
        let mut open: Option<String> = None;
        let mut col = 0;
        while col < cols {
            let Some(cell) = screen.cell(row, col) else {
                break;
            };
            col += 1;
            if cell.is_wide_continuation() {
                continue;
            }
            let classes = classes(cell);
            if open.as_deref() != Some(classes.as_str()) {
                if open.as_deref().is_some_and(|c| !c.is_empty()) {
                    out.push_str("</span>");
                }
                if !classes.is_empty() {
                    let _ = write!(out, "<span class=\"{classes}\">");
                }
                open = Some(classes);
            }
            let text = cell.contents();
            if text.is_empty() {
                out.push(' ');
                if cell.is_wide() {
                    out.push(' ');
                }
            } else {
                escape_into(&mut out, text);
            }
        }
        if open.as_deref().is_some_and(|c| !c.is_empty()) {
            out.push_str("</span>");
        }
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// A cell's classes, space-separated (empty for a plain cell).
fn classes(cell: &vt100::Cell) -> String {
    let mut fg = palette_index(cell.fgcolor()).map(Ink::Idx);
    let mut bg = palette_index(cell.bgcolor()).map(Ink::Idx);
    if cell.inverse() {
        (fg, bg) = (
            Some(bg.unwrap_or(Ink::DefaultBg)),
            Some(fg.unwrap_or(Ink::DefaultFg)),
        );
    }
    let mut c = Vec::new();
    match fg {
        Some(Ink::Idx(i)) => c.push(format!("f{i}")),
        Some(Ink::DefaultBg) => c.push("fB".into()),
        Some(Ink::DefaultFg) | None => {}
    }
    match bg {
        Some(Ink::Idx(i)) => c.push(format!("g{i}")),
        Some(Ink::DefaultFg) => c.push("gF".into()),
        Some(Ink::DefaultBg) | None => {}
    }
    for (on, class) in [
        (cell.bold(), "b"),
        (cell.dim(), "d"),
        (cell.italic(), "i"),
        (cell.underline(), "u"),
    ] {
        if on {
            c.push(class.into());
        }
    }
    c.join(" ")
}

/// A colour after inverse video: a palette colour or one of the terminal's defaults.
#[derive(Clone, Copy)]
enum Ink {
    Idx(u8),
    DefaultFg,
    DefaultBg,
}

/// The palette class (0–15) that draws `color`; `None` for the default.
fn palette_index(color: vt100::Color) -> Option<u8> {
    match color {
        vt100::Color::Default => None,
        vt100::Color::Idx(i) if i < 16 => Some(i),
        vt100::Color::Idx(i) => Some(nearest(xterm_256(i))),
        vt100::Color::Rgb(r, g, b) => Some(nearest((r, g, b))),
    }
}

/// The RGB value of xterm's colour `i` (16–255: the 6×6×6 cube, then 24 greys).
fn xterm_256(i: u8) -> (u8, u8, u8) {
    if i < 16 {
        return PALETTE[usize::from(i)];
    }
    if i >= 232 {
        let v = 8 + 10 * (i - 232);
        return (v, v, v);
    }
    let i = i - 16;
    let level = |n: u8| if n == 0 { 0 } else { 55 + 40 * n };
    (level(i / 36), level((i / 6) % 6), level(i % 6))
}

fn nearest((r, g, b): (u8, u8, u8)) -> u8 {
    let d = |(pr, pg, pb): (u8, u8, u8)| {
        let dr = i32::from(r) - i32::from(pr);
        let dg = i32::from(g) - i32::from(pg);
        let db = i32::from(b) - i32::from(pb);
        dr * dr + dg * dg + db * db
    };
    (0u8..16)
        .min_by_key(|i| d(PALETTE[usize::from(*i)]))
        .unwrap_or(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(width: u16, height: u16, events: &[(f64, &str)]) -> Cast {
        let mut text = format!("{{\"version\":2,\"width\":{width},\"height\":{height}}}\n");
        for (t, o) in events {
            text.push_str(&format!("[{t}, \"o\", {}]\n", serde_json::Value::from(*o)));
        }
        Cast::parse(&text).unwrap()
    }

    #[test]
    fn colours_and_attributes_become_classes() {
        let c = cast(
            20,
            2,
            &[(
                0.1,
                "\x1b[1;31mred\x1b[0m \x1b[42;34mon\x1b[0m \x1b[7minv\x1b[0m \x1b[38;5;196mX\x1b[38;2;0;0;250mY\x1b[0m <&>",
            )],
        );
        let html = to_html(&screen_at(&c, None));
        assert!(html.contains("<span class=\"f1 b\">red</span>"), "{html}");
        assert!(html.contains("<span class=\"f4 g2\">on</span>"), "{html}");
        assert!(html.contains("<span class=\"fB gF\">inv</span>"), "{html}");
        // 196 is bright red in the cube; RGB blue maps onto palette blue.
        assert!(html.contains("<span class=\"f9\">X</span>"), "{html}");
        assert!(html.contains("<span class=\"f4\">Y</span>"), "{html}");
        assert!(html.contains("&lt;&amp;&gt;"), "{html}");
        assert!(!html.contains("style"), "{html}");
    }

    #[test]
    fn the_box_is_rows_by_columns() {
        let c = cast(12, 4, &[(0.0, "ab\r\ncd")]);
        let html = to_html(&screen_at(&c, None));
        let lines: Vec<&str> = html.split('\n').collect();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l.chars().count() == 12), "{lines:?}");
        assert_eq!(lines[0].trim_end(), "ab");
    }

    #[test]
    fn last_screen_or_a_chosen_moment() {
        let c = cast(
            10,
            2,
            &[
                (0.5, "first"),
                (2.0, "\x1b[2J\x1b[Hsecond"),
                (4.0, "\r\nthird"),
            ],
        );
        let end = to_html(&screen_at(&c, None));
        assert!(end.starts_with("second") && end.contains("third"), "{end}");
        let early = to_html(&screen_at(&c, Some(1.0)));
        assert!(
            early.starts_with("first") && !early.contains("second"),
            "{early}"
        );
        let mid = to_html(&screen_at(&c, Some(2.0)));
        assert!(mid.starts_with("second") && !mid.contains("third"), "{mid}");
    }

    #[test]
    fn wide_characters_take_two_cells() {
        let c = cast(6, 1, &[(0.0, "日本x")]);
        let html = to_html(&screen_at(&c, None));
        // Two wide characters fill four columns: x is at column 5, then one blank.
        assert_eq!(html, "日本x ");
    }

    #[test]
    fn resizes_are_followed() {
        let text = "{\"version\":2,\"width\":5,\"height\":1}\n[0,\"r\",\"8x2\"]\n[0.1,\"o\",\"abcdefg\\r\\nz\"]\n";
        let html = to_html(&screen_at(&Cast::parse(text).unwrap(), None));
        assert_eq!(html, "abcdefg \nz       ");
    }
}
