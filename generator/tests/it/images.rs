//! Images in markdown and covers, through the real `folio` binary: `<picture>` with WebP
//! first, `srcset` of the widths made (never wider than the original), `width`/`height`,
//! lazy loading after the first image, a warm build that encodes nothing, and a missing
//! image reported at its file:line:col with the old output kept.

use std::io::Cursor;

use crate::common::{stderr, Site};

/// A PNG of `w`×`h` with some detail (a gradient), as a screenshot would be.
pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 3 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 200) as u8, (y % 150) as u8, 90])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
        .unwrap();
    out
}

/// A site with a notes section (not `projects`), a bundle with three images of different
/// kinds and sizes, and a static image named from the root.
fn site() -> Site {
    // The theme's home lists `projects/`; this site keeps its write-ups elsewhere.
    let s = Site::minimal();
    s.write("content/notes/_index.md", "+++\ntitle = \"Notes\"\n+++\n");
    s.write(
        "content/notes/lab/index.md",
        "+++\ntitle = \"Lab\"\ndate = 2025-02-03\n+++\nIntro.\n\n![A wide plot of the run](plot.png \"The run\")\n\nThen a small one: ![tiny *icon*](tiny.jpg) inline,\n\n![A diagram](diagram.svg)\n\n![Root photo](/img/photo.jpg)\n\n![A spinner](spin.gif)\n",
    );
    s.write_bytes("content/notes/lab/plot.png", &png(1200, 600));
    s.write_bytes("content/notes/lab/tiny.jpg", &jpeg(300, 200));
    s.write(
        "content/notes/lab/diagram.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 400 100\"><rect width=\"400\" height=\"100\"/></svg>",
    );
    s.write_bytes("static/img/photo.jpg", &jpeg(800, 800));
    // A 1×1 GIF header stating a 48×16 screen: passed through, measured from its header.
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[48, 0, 16, 0, 0, 0, 0, b';']);
    s.write_bytes("content/notes/lab/spin.gif", &gif);
    s
}

/// The `<img …>` tags of an HTML file, in order, with the `<source>` before each, if any.
fn tags<'a>(html: &'a str, tag: &str) -> Vec<&'a str> {
    html.match_indices(tag)
        .map(|(i, _)| &html[i..i + html[i..].find('>').unwrap() + 1])
        .collect()
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    // Minified HTML may drop quotes: take either form.
    let at = tag.find(&format!(" {name}="))? + name.len() + 2;
    let rest = &tag[at..];
    Some(match rest.strip_prefix('"') {
        Some(r) => &r[..r.find('"').unwrap()],
        None => &rest[..rest.find([' ', '>']).unwrap()],
    })
}

#[test]
fn markdown_images_become_pictures_with_sizes_and_no_upscaling() {
    let s = site();
    s.build_ok();
    let html = s.read("public/notes/lab/index.html");
    let imgs = tags(&html, "<img");
    assert_eq!(imgs.len(), 5, "{imgs:?}");
    // Every image has its intrinsic size and its alt text from the markdown.
    let sizes: Vec<(Option<&str>, Option<&str>, Option<&str>)> = imgs
        .iter()
        .map(|t| (attr(t, "width"), attr(t, "height"), attr(t, "alt")))
        .collect();
    assert_eq!(
        sizes,
        [
            (Some("1200"), Some("600"), Some("A wide plot of the run")),
            (Some("300"), Some("200"), Some("tiny icon")),
            (Some("400"), Some("100"), Some("A diagram")),
            (Some("800"), Some("800"), Some("Root photo")),
            (Some("48"), Some("16"), Some("A spinner")),
        ]
    );
    assert_eq!(attr(imgs[0], "title"), Some("The run"));
    // Only the first is eager.
    assert_eq!(attr(imgs[0], "loading"), None, "{}", imgs[0]);
    for t in &imgs[1..] {
        assert_eq!(attr(t, "loading"), Some("lazy"), "{t}");
        assert_eq!(attr(t, "decoding"), Some("async"), "{t}");
    }
    // The plot: copies at 360, 720, 1080 in PNG and WebP, and WebP at its own 1200; the
    // original is wider than every width but not upscaled to 1440.
    let sources = tags(&html, "<source");
    assert_eq!(
        sources.len(),
        3,
        "raster images get a WebP source: {sources:?}"
    );
    assert_eq!(attr(sources[0], "type"), Some("image/webp"));
    let webp: Vec<&str> = attr(sources[0], "srcset").unwrap().split(", ").collect();
    let webp_widths: Vec<&str> = webp.iter().map(|c| c.rsplit(' ').next().unwrap()).collect();
    assert_eq!(webp_widths, ["360w", "720w", "1080w", "1200w"]);
    let fallback: Vec<&str> = attr(imgs[0], "srcset").unwrap().split(", ").collect();
    assert_eq!(fallback.last().unwrap(), &"/notes/lab/plot.png 1200w");
    assert_eq!(fallback.len(), 4);
    for c in webp.iter().chain(&fallback) {
        let (url, w) = c.split_once(' ').unwrap();
        let bytes = std::fs::read(s.path(&format!("public{url}"))).unwrap();
        let w: u32 = w.trim_end_matches('w').parse().unwrap();
        let got = if url.ends_with(".webp") {
            assert_eq!(&bytes[8..12], b"WEBP", "{url}");
            let d = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP);
            // `image` here reads PNG and JPEG only; the WebP header states the width.
            d.map(|i| i.width()).unwrap_or_else(|_| webp_width(&bytes))
        } else {
            image::load_from_memory(&bytes).unwrap().width()
        };
        assert_eq!(got, w, "{url}");
    }
    // The small JPEG: nothing narrower to make but its WebP twin; no 360w copy (no upscaling).
    let tiny = attr(sources[1], "srcset").unwrap();
    assert!(tiny.ends_with(" 300w") && !tiny.contains(','), "{tiny}");
    assert_eq!(attr(imgs[1], "srcset"), None);
    assert_eq!(attr(imgs[1], "src"), Some("/notes/lab/tiny.jpg"));
    // SVG and GIF pass through, not in a <picture>.
    assert_eq!(attr(imgs[2], "src"), Some("/notes/lab/diagram.svg"));
    assert_eq!(attr(imgs[4], "src"), Some("/notes/lab/spin.gif"));
    assert!(
        !html.contains("spin.gif 48w") && !html.contains("diagram.svg 400w"),
        "{html}"
    );
    // Copies are named by content: the headers file caches them forever.
    let headers = s.read("public/_headers");
    let copy = webp[0].split(' ').next().unwrap();
    assert!(headers.contains(copy), "{copy} not immutable:\n{headers}");
}

/// The width a WebP file states (VP8, VP8L or VP8X header).
fn webp_width(b: &[u8]) -> u32 {
    match &b[12..16] {
        b"VP8 " => u32::from(u16::from_le_bytes([b[26], b[27]]) & 0x3fff),
        b"VP8L" => 1 + (u32::from(b[21]) | (u32::from(b[22]) & 0x3f) << 8),
        b"VP8X" => 1 + (u32::from(b[24]) | u32::from(b[25]) << 8 | u32::from(b[26]) << 16),
        other => panic!("not a WebP chunk: {other:?}"),
    }
}

#[test]
fn a_warm_build_encodes_nothing() {
    let s = site();
    s.write(
        "content/notes/cover-page.md",
        "+++\ntitle = \"Covered\"\ndate = 2025-01-01\ncover = \"/img/photo.jpg\"\n+++\nText.\n",
    );
    let cold = s.folio(&["build", "--verbose"]);
    assert!(cold.status.success(), "{}", stderr(&cold));
    let line = |o: &std::process::Output| {
        stderr(o)
            .lines()
            .find(|l| l.contains("image copies:"))
            .map(str::trim)
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no image line:\n{}", stderr(o)))
    };
    // plot: 3 PNG + 4 WebP; tiny: 1 WebP; photo: 2 JPEG + 3 WebP (shared by page and cover).
    assert_eq!(line(&cold), "image copies: 13 encoded, 0 from cache");
    let cache = s.path(".folio/cache/images");
    let before: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    let first = s.snapshot();
    let warm = s.folio(&["build", "--verbose"]);
    assert!(warm.status.success(), "{}", stderr(&warm));
    assert_eq!(line(&warm), "image copies: 0 encoded, 13 from cache");
    let after: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().modified().unwrap())
        .collect();
    assert_eq!(before, after, "the cache was rewritten");
    assert_eq!(first, s.snapshot(), "a warm build gives the same site");
    // The cover gets the same formats.
    let list = s.read("public/notes/index.html");
    assert!(
        list.contains("image/webp") || !list.contains("photo"),
        "{list}"
    );
    let page = s.read("public/notes/cover-page/index.html");
    assert!(page.contains("/img/photo.720w."), "{page}");
}

#[test]
fn a_missing_image_is_an_error_at_its_place_and_the_old_site_stays() {
    let s = site();
    s.build_ok();
    let before = s.snapshot();
    s.write(
        "content/notes/lab/index.md",
        "+++\ntitle = \"Lab\"\n+++\nIntro.\n\nSee ![the graph](graph.png) here.\n",
    );
    let out = s.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("content/notes/lab/index.md:6:5: missing image: `graph.png`"),
        "{err}"
    );
    assert_eq!(before, s.snapshot(), "the old output changed");
    // A file that is there but not an image is an error too, at the image.
    s.write(
        "content/notes/lab/index.md",
        "+++\ntitle = \"Lab\"\n+++\n![broken](bad.png)\n",
    );
    s.write("content/notes/lab/bad.png", "not a png");
    let out = s.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("content/notes/lab/index.md:4:1: image `bad.png`"),
        "{err}"
    );
    assert_eq!(before, s.snapshot());
}

/// `.folio` is a file, so no cache can be saved: the build still succeeds with the same site,
/// and says so once, naming what was not saved, not once per cache and resized image.
#[test]
fn an_unwritable_cache_folder_is_one_warning_and_the_same_site() {
    let s = site();
    s.write(
        "content/notes/code.md",
        "+++\ntitle = \"Code\"\ndate = 2025-01-02\n+++\n```rust\nfn main() {}\n```\n",
    );
    let good = s.folio(&["build"]);
    assert!(good.status.success(), "{}", stderr(&good));
    let expected = s.snapshot();
    std::fs::remove_dir_all(s.path(".folio")).unwrap();
    s.write(".folio", "not a folder\n");
    let out = s.folio(&["build"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let cache_lines: Vec<&str> = err.lines().filter(|l| l.contains(".folio/cache")).collect();
    assert_eq!(cache_lines.len(), 1, "{err}");
    let line = cache_lines[0];
    for what in [
        "the highlight cache",
        "resized images",
        "the next one will redo",
    ] {
        assert!(line.contains(what), "{what}: {line}");
    }
    // Only the copies of the two encoded images: one line names them all.
    assert!(!line.contains("plot") && !line.contains(".webp"), "{line}");
    assert_eq!(expected, s.snapshot(), "the same site without its caches");
}
