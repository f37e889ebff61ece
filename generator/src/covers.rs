//! Responsive cover images: a raster cover (PNG or JPEG) gets smaller copies at a few widths,
//! so a card on a phone downloads a 360-pixel image and not the author's 1440-pixel original.
//!
//! Resizing is the slow part of a build that has images, so every variant is kept under
//! `.folio/cache/covers/`, named by a hash of the source bytes, the width and the encoder
//! settings: a warm build reads the files back instead of decoding and resizing again.
//! Templates get the result as page fields (`cover_srcset`, `cover_width`, …); SVG covers pass
//! through untouched, with their intrinsic size when the file states one.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::{json, Value};

use crate::assets::{Assets, Payload, StaticFile};
use folio_content::content::{Content, Page};
use folio_content::diagnostics::{display_path, Diagnostic, Diagnostics};

/// Widths of the variants, in CSS pixels at 1×; capped at the original's width.
pub(crate) const WIDTHS: &[u32] = &[360, 720, 1080, 1440];

/// JPEG quality of the variants: covers are illustrations and photos seen small.
const JPEG_QUALITY: u8 = 78;

/// Bumped when the encoding changes, so cached variants made the old way are not reused.
const CODEC_VERSION: &[u8] = b"folio-covers-1";

/// The folder of the variant cache of a site.
pub(crate) fn cache_dir(root: &Path) -> PathBuf {
    root.join(".folio/cache/covers")
}

/// One image width of a cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variant {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// URL path.
    pub url: String,
}

/// What the templates need to show a cover well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CoverInfo {
    /// URL path of the original (as in `page.cover`).
    pub url: String,
    /// MIME type of the original.
    pub mime: &'static str,
    /// Intrinsic size of the original, when known.
    pub size: Option<(u32, u32)>,
    /// Raster variants, narrowest first, the original included when it is within the widths;
    /// empty for SVG and for covers that are not files of the site.
    pub variants: Vec<Variant>,
}

impl CoverInfo {
    /// The `srcset` attribute value, or `None` when there is nothing to choose from.
    pub(crate) fn srcset(&self) -> Option<String> {
        (self.variants.len() > 1).then(|| {
            self.variants
                .iter()
                .map(|v| format!("{} {}w", v.url, v.width))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// A good default `src`: the variant closest to 720 pixels wide (cards), else the original.
    pub(crate) fn src(&self) -> &str {
        self.variants
            .iter()
            .min_by_key(|v| v.width.abs_diff(720))
            .map_or(self.url.as_str(), |v| v.url.as_str())
    }
}

/// The covers of a build, by page path.
#[derive(Debug, Default)]
pub(crate) struct Covers {
    by_page: HashMap<String, CoverInfo>,
}

/// A cover to process: the page it belongs to, its URL and source file.
struct Job<'a> {
    page: &'a Page,
    url: String,
    source: PathBuf,
}

impl Covers {
    /// Finds every published page's cover, makes (or reads from the cache) its variants and
    /// adds them to the static files of the build.
    pub(crate) fn build(
        root: &Path,
        content: &Content,
        assets: &mut Assets,
        diags: &mut Diagnostics,
    ) -> Covers {
        let mut covers = Covers::default();
        let mut jobs = Vec::new();
        for p in &content.pages {
            let Some(url) = &p.cover else { continue };
            if url.starts_with("http://") || url.starts_with("https://") {
                continue;
            }
            match source_of(url, p, content, assets) {
                Some(source) => jobs.push(Job {
                    page: p,
                    url: url.clone(),
                    source,
                }),
                None => {
                    covers.by_page.insert(
                        p.path.clone(),
                        CoverInfo {
                            url: url.clone(),
                            mime: mime_of(url),
                            size: None,
                            variants: vec![],
                        },
                    );
                }
            }
        }
        let cache = cache_dir(root);
        let results: Vec<_> = jobs
            .par_iter()
            .map(|j| (j, process(&j.url, &j.source, &cache)))
            .collect();
        for (job, result) in results {
            match result {
                Ok((info, made, cache_problem)) => {
                    for (width, out, bytes) in made {
                        // Named by content: cached forever (`_headers`), like hashed CSS.
                        assets.urls.insert(
                            format!("{}@{width}w", info.url.trim_start_matches('/')),
                            format!("/{out}"),
                        );
                        assets.files.insert(
                            out,
                            StaticFile {
                                payload: Payload::Bytes(Cow::Owned(bytes)),
                                shown: display_path(root, &job.source),
                            },
                        );
                    }
                    if let Some(msg) = cache_problem {
                        diags.push(Diagnostic::warning(
                            ".folio/cache",
                            None,
                            format!("cannot save a resized cover: {msg}"),
                        ));
                    }
                    covers.by_page.insert(job.page.path.clone(), info);
                }
                Err(Problem(msg)) => diags.push(Diagnostic::error(
                    display_path(root, &job.source),
                    None,
                    format!("cover image of {}: {msg}", job.page.file.shown.display()),
                )),
            }
        }
        covers
    }

    /// The cover of a page, by its path.
    pub(crate) fn get(&self, page_path: &str) -> Option<&CoverInfo> {
        self.by_page.get(page_path)
    }

    /// Adds the cover fields to a page's template value: `cover_src`, `cover_srcset`,
    /// `cover_width`, `cover_height`, `cover_type` and `cover_social` (`{url, width, height}`).
    pub(crate) fn annotate(&self, page: &Page, mut v: Value) -> Value {
        let Some(o) = v.as_object_mut() else { return v };
        let info = self.get(&page.path);
        let (w, h) = info.and_then(|i| i.size).unzip();
        o.insert(
            "cover_src".into(),
            info.map_or(Value::Null, |i| Value::String(i.src().to_string())),
        );
        o.insert(
            "cover_srcset".into(),
            info.and_then(CoverInfo::srcset)
                .map_or(Value::Null, Value::String),
        );
        o.insert("cover_width".into(), w.map_or(Value::Null, Value::from));
        o.insert("cover_height".into(), h.map_or(Value::Null, Value::from));
        o.insert(
            "cover_type".into(),
            info.map_or(Value::Null, |i| Value::String(i.mime.to_string())),
        );
        let social = info.and_then(|i| {
            let s = i.variants.last()?;
            (i.mime != "image/svg+xml")
                .then(|| json!({"url": s.url, "width": s.width, "height": s.height}))
        });
        o.insert("cover_social".into(), social.unwrap_or(Value::Null));
        v
    }
}

/// Why a cover could not be read or resized.
struct Problem(String);

/// The file a cover URL comes from: a bundle file of the page, a loose content file, or a
/// static file.
fn source_of(url: &str, p: &Page, content: &Content, assets: &Assets) -> Option<PathBuf> {
    let out = url.trim_start_matches('/');
    if let Some((src, _)) = p.assets.iter().find(|(_, o)| o == out) {
        return Some(src.clone());
    }
    if let Some(f) = content.loose_files.iter().find(|f| f.output == out) {
        return Some(f.source.clone());
    }
    match assets.files.get(out).map(|f| &f.payload) {
        Some(Payload::File(p)) => Some(p.clone()),
        _ => None,
    }
}

fn mime_of(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    if lower.ends_with(".svg") {
        "image/svg+xml"
    } else if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else if lower.ends_with(".webp") {
        "image/webp"
    } else if lower.ends_with(".gif") {
        "image/gif"
    } else if lower.ends_with(".avif") {
        "image/avif"
    } else {
        "application/octet-stream"
    }
}

/// Variant files to add to the output: (width, output path, bytes).
type Made = Vec<(u32, String, Vec<u8>)>;

/// Reads one cover's size and makes its variants: (info, files to add to the output, a cache
/// write problem worth a warning).
fn process(
    url: &str,
    source: &Path,
    cache: &Path,
) -> Result<(CoverInfo, Made, Option<String>), Problem> {
    let mime = mime_of(url);
    let bytes = std::fs::read(source).map_err(|e| Problem(format!("cannot read: {e}")))?;
    if mime == "image/svg+xml" {
        let size = svg_size(&String::from_utf8_lossy(&bytes));
        let variants = size
            .map(|(width, height)| {
                vec![Variant {
                    width,
                    height,
                    url: url.to_string(),
                }]
            })
            .unwrap_or_default();
        return Ok((
            CoverInfo {
                url: url.to_string(),
                mime,
                size,
                variants,
            },
            vec![],
            None,
        ));
    }
    let format = match mime {
        "image/png" => image::ImageFormat::Png,
        "image/jpeg" => image::ImageFormat::Jpeg,
        _ => {
            // Other formats pass through: the browser can show them, folio cannot resize them.
            return Ok((
                CoverInfo {
                    url: url.to_string(),
                    mime,
                    size: None,
                    variants: vec![],
                },
                vec![],
                None,
            ));
        }
    };
    let (w0, h0) = image::ImageReader::with_format(Cursor::new(&bytes), format)
        .into_dimensions()
        .map_err(|e| Problem(format!("not a readable {mime} file: {e}")))?;
    let source_hash = blake3::hash(&bytes);
    let (dir, file) = url.rsplit_once('/').unwrap_or(("", url));
    let (stem, ext) = file.rsplit_once('.').unwrap_or((file, "img"));
    let mut variants = Vec::new();
    let mut made = Vec::new();
    let mut decoded: Option<image::DynamicImage> = None;
    let mut cache_problem = None;
    for &w in WIDTHS.iter().filter(|&&w| w < w0) {
        let h = ((u64::from(h0) * u64::from(w) + u64::from(w0) / 2) / u64::from(w0)).max(1) as u32;
        let key = {
            let mut k = blake3::Hasher::new();
            k.update(CODEC_VERSION);
            k.update(source_hash.as_bytes());
            k.update(&w.to_le_bytes());
            k.update(&[JPEG_QUALITY]);
            k.finalize().to_hex()
        };
        let cached = cache.join(format!("{key}.{ext}"));
        let out_bytes = match std::fs::read(&cached) {
            Ok(b) => b,
            Err(_) => {
                if decoded.is_none() {
                    decoded = Some(
                        image::load_from_memory_with_format(&bytes, format)
                            .map_err(|e| Problem(format!("cannot decode: {e}")))?,
                    );
                }
                let img = decoded.as_ref().expect("decoded above");
                let b = encode(img, w, h, format)?;
                if let Err(e) =
                    std::fs::create_dir_all(cache).and_then(|()| write_atomic(&cached, &b))
                {
                    cache_problem = Some(format!("{}: {e}", cached.display()));
                }
                b
            }
        };
        let out = format!("{dir}/{stem}.{w}w.{}.{ext}", &key.as_str()[..10]);
        variants.push(Variant {
            width: w,
            height: h,
            url: out.clone(),
        });
        made.push((w, out.trim_start_matches('/').to_string(), out_bytes));
    }
    if w0 <= *WIDTHS.last().expect("widths") {
        variants.push(Variant {
            width: w0,
            height: h0,
            url: url.to_string(),
        });
    }
    Ok((
        CoverInfo {
            url: url.to_string(),
            mime,
            size: Some((w0, h0)),
            variants,
        },
        made,
        cache_problem,
    ))
}

fn encode(
    img: &image::DynamicImage,
    w: u32,
    h: u32,
    format: image::ImageFormat,
) -> Result<Vec<u8>, Problem> {
    let small = img.resize_exact(w, h, image::imageops::FilterType::Lanczos3);
    let mut out = Vec::new();
    let r = match format {
        image::ImageFormat::Jpeg => {
            let rgb = small.to_rgb8();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&rgb)
        }
        _ => small.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png),
    };
    r.map_err(|e| Problem(format!("cannot encode a {w}px copy: {e}")))?;
    Ok(out)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The intrinsic size an SVG states: its `width`/`height` attributes in pixels, else its
/// `viewBox`.
pub(crate) fn svg_size(svg: &str) -> Option<(u32, u32)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_size_from_attributes_or_viewbox() {
        assert_eq!(
            svg_size(r#"<svg xmlns="x" viewBox="0 0 320 180" width="640" height="360">"#),
            Some((640, 360))
        );
        assert_eq!(
            svg_size(r#"<?xml?><svg viewBox="0 0 320 180" stroke-width="2">"#),
            Some((320, 180))
        );
        assert_eq!(svg_size(r#"<svg width="100%" height="50%">"#), None);
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn raster_covers_get_capped_variants_and_a_warm_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("cover.png");
        std::fs::write(&src, png(1000, 500)).unwrap();
        let cache = tmp.path().join("cache");
        let (info, made, warn) =
            process("/projects/x/cover.png", &src, &cache).unwrap_or_else(|_| panic!("process"));
        assert!(warn.is_none());
        let widths: Vec<u32> = info.variants.iter().map(|v| v.width).collect();
        assert_eq!(widths, vec![360, 720, 1000]);
        assert_eq!(info.size, Some((1000, 500)));
        assert_eq!(info.variants[0].height, 180);
        assert_eq!(made.len(), 2);
        for (_, out, bytes) in &made {
            assert!(
                out.starts_with("projects/x/cover.") && out.ends_with(".png"),
                "{out}"
            );
            let (w, _) =
                image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png)
                    .into_dimensions()
                    .unwrap();
            assert!(out.contains(&format!(".{w}w.")), "{out} is {w} wide");
        }
        assert_eq!(info.variants.last().unwrap().url, "/projects/x/cover.png");
        let srcset = info.srcset().unwrap();
        assert!(srcset.ends_with("/projects/x/cover.png 1000w"), "{srcset}");
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);

        // Warm: the cached files are used as they are (a marker proves it), same names.
        let first = std::fs::read_dir(&cache)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&first, b"cached").unwrap();
        let (again, made2, _) =
            process("/projects/x/cover.png", &src, &cache).unwrap_or_else(|_| panic!("process"));
        assert_eq!(again, info);
        assert!(made2.iter().any(|(_, _, b)| b == b"cached"));
    }

    #[test]
    fn a_broken_raster_cover_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("cover.jpg");
        std::fs::write(&src, b"not a jpeg").unwrap();
        match process("/c.jpg", &src, &tmp.path().join("c")) {
            Err(Problem(m)) => assert!(m.contains("image/jpeg"), "{m}"),
            Ok(_) => panic!("expected an image error"),
        }
    }
}
