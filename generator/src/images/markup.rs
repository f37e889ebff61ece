//! The HTML of a processed image: `<picture>` with a WebP `<source>` and the original format
//! as the fallback `<img>`, always with `width`/`height` (no layout shift), lazy by default.

use super::ImageInfo;
use crate::highlight::escape;

/// How wide an image in a write-up is shown: the prose column (44rem) on wide screens, the
/// viewport less the page's side padding on phones.
pub(crate) const CONTENT_SIZES: &str = "(min-width: 46.5rem) 44rem, calc(100vw - 2.5rem)";

/// The attributes that defer an image; [`eager_first`] takes them off a page's first image.
pub(crate) const LAZY: &str = " loading=\"lazy\" decoding=\"async\"";

/// `<picture>` (or a plain `<img>` when there is only one file to choose) for `info`, with
/// `alt` (and `title`) as written, [`LAZY`], and `sizes` for the `srcset`s.
pub(crate) fn picture(info: &ImageInfo, alt: &str, title: Option<&str>, sizes: &str) -> String {
    let mut img = format!("<img src=\"{}\"", escape(info.src()));
    let srcset = info.srcset();
    if let Some(s) = &srcset {
        img.push_str(&format!(
            " srcset=\"{}\" sizes=\"{}\"",
            escape(s),
            escape(sizes)
        ));
    }
    if let Some((w, h)) = info.size {
        img.push_str(&format!(" width=\"{w}\" height=\"{h}\""));
    }
    img.push_str(&format!(" alt=\"{}\"", escape(alt)));
    if let Some(t) = title.filter(|t| !t.is_empty()) {
        img.push_str(&format!(" title=\"{}\"", escape(t)));
    }
    img.push_str(LAZY);
    img.push('>');
    match info.webp_srcset() {
        Some(webp) => format!(
            "<picture><source type=\"image/webp\" srcset=\"{}\" sizes=\"{}\">{img}</picture>",
            escape(&webp),
            escape(sizes)
        ),
        None => img,
    }
}

/// Takes [`LAZY`] off the first `<img>` of `html`, when it has it: the first image of a page
/// is likely in view, and deferring it would delay the page's largest paint.
pub(crate) fn eager_first(html: &mut String) {
    let Some(start) = html.find("<img") else {
        return;
    };
    let end = html[start..].find('>').map_or(html.len(), |e| start + e);
    if let Some(at) = html[start..end].find(LAZY) {
        html.replace_range(start + at..start + at + LAZY.len(), "");
    }
}

#[cfg(test)]
mod tests {
    use super::super::Variant;
    use super::*;

    fn info(webp: bool) -> ImageInfo {
        let v = |w: u32, ext: &str| Variant {
            width: w,
            height: w / 2,
            url: format!("/a/p.{w}w.{ext}"),
        };
        ImageInfo {
            url: "/a/p.png".into(),
            mime: "image/png",
            size: Some((1000, 500)),
            variants: vec![v(360, "png"), v(720, "png"), v(1000, "png")],
            webp: if webp {
                vec![v(360, "webp"), v(720, "webp"), v(1000, "webp")]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn a_picture_offers_webp_first_and_keeps_the_size() {
        let h = picture(&info(true), "A \"plot\"", None, "100vw");
        assert!(h.starts_with("<picture><source type=\"image/webp\" srcset=\"/a/p.360w.webp 360w, /a/p.720w.webp 720w, /a/p.1000w.webp 1000w\" sizes=\"100vw\"><img src=\"/a/p.720w.png\""), "{h}");
        assert!(h.contains(" width=\"1000\" height=\"500\" alt=\"A &quot;plot&quot;\" loading=\"lazy\" decoding=\"async\"></picture>"), "{h}");
        let plain = picture(&info(false), "x", Some("t"), "100vw");
        assert!(
            plain.starts_with("<img ") && plain.contains(" title=\"t\""),
            "{plain}"
        );
    }

    #[test]
    fn only_the_first_image_is_eager() {
        let one = picture(&info(true), "one", None, "100vw");
        let mut html = format!("<p>{one}</p><p>{one}</p>");
        eager_first(&mut html);
        assert_eq!(html.matches(LAZY).count(), 1, "{html}");
        assert!(html.find(LAZY).unwrap() > html.find("</p>").unwrap());
    }
}
