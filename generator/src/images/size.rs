//! The intrinsic size of images folio passes through without decoding: SVG and GIF.

/// The intrinsic size an SVG states: its `width`/`height` attributes in pixels, else its
/// `viewBox`.
pub(crate) fn svg(svg: &str) -> Option<(u32, u32)> {
    let start = svg.find("<svg")?;
    let end = start + svg[start..].find('>')?;
    let tag = &svg[start..end];
    let attr = |name: &str| -> Option<&str> {
        let mut from = 0;
        while let Some(i) = tag[from..].find(name) {
            let at = from + i;
            let before = tag[..at].chars().last();
            let rest = &tag[at + name.len()..];
            if before.is_some_and(char::is_whitespace) {
                if let Some(rest) = rest.trim_start().strip_prefix('=') {
                    let rest = rest.trim_start();
                    let q = rest.chars().next()?;
                    if q == '"' || q == '\'' {
                        let body = &rest[1..];
                        return body.find(q).map(|e| &body[..e]);
                    }
                }
            }
            from = at + name.len();
        }
        None
    };
    let px = |s: &str| -> Option<u32> {
        let s = s.trim().trim_end_matches("px");
        let v: f64 = s.parse().ok()?;
        (v > 0.0 && v < 100_000.0).then(|| v.round() as u32)
    };
    if let (Some(w), Some(h)) = (attr("width").and_then(px), attr("height").and_then(px)) {
        return Some((w, h));
    }
    let vb: Vec<f64> = attr("viewBox")?
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    match vb.as_slice() {
        [_, _, w, h] if *w > 0.0 && *h > 0.0 => Some((w.round() as u32, h.round() as u32)),
        _ => None,
    }
}

/// The logical screen size of a GIF (`GIF87a`/`GIF89a`, then width and height, little end
/// first).
pub(crate) fn gif(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 10 || !(bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
        return None;
    }
    let w = u32::from(u16::from_le_bytes([bytes[6], bytes[7]]));
    let h = u32::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_size_from_attributes_or_viewbox() {
        assert_eq!(
            svg(r#"<svg xmlns="x" viewBox="0 0 320 180" width="640" height="360">"#),
            Some((640, 360))
        );
        assert_eq!(
            svg(r#"<?xml?><svg viewBox="0 0 320 180" stroke-width="2">"#),
            Some((320, 180))
        );
        assert_eq!(svg(r#"<svg width="100%" height="50%">"#), None);
    }

    #[test]
    fn gif_size_from_the_header() {
        let mut g = b"GIF89a".to_vec();
        g.extend_from_slice(&300u16.to_le_bytes());
        g.extend_from_slice(&2u16.to_le_bytes());
        assert_eq!(gif(&g), Some((300, 2)));
        assert_eq!(gif(b"GIF89a\0\0"), None);
        assert_eq!(gif(b"\x89PNG\r\n\x1a\n\0\0\0\0"), None);
    }
}
