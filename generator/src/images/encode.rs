//! Reading one image, and making (or reading back from the cache) its resized and WebP copies.

use std::io::Cursor;
use std::path::Path;

use super::{mime_of, size, ImageInfo, Variant, WIDTHS};

/// JPEG quality of the fallback copies of JPEG originals.
const JPEG_QUALITY: u8 = 78;

/// WebP quality of the lossy copies (about JPEG 78's look at a third of its size, see
/// docs/images.md). A PNG original's copy is lossless instead when that is no bigger.
const WEBP_QUALITY: f32 = 74.0;

/// Bumped when the encoding changes, so copies made the old way are not reused.
const CODEC_VERSION: &[u8] = b"folio-images-3";

/// What processing one image gave.
pub(super) struct Output {
    pub(super) info: ImageInfo,
    /// Files to add to the output: (output path without the leading `/`, bytes).
    pub(super) made: Vec<(String, Vec<u8>)>,
    /// A cache write that failed, worth a warning.
    pub(super) cache_problem: Option<String>,
    /// Copies encoded now / read from the cache.
    pub(super) encoded: usize,
    pub(super) cached: usize,
}

/// One copy to make: its width and format.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The original's format.
    Fallback(image::ImageFormat),
    /// WebP.
    Webp,
}

/// Measures the image at `source` (shown at `url`) and makes its copies, reading each from
/// `cache` when an earlier build made it.
pub(super) fn process(url: &str, source: &Path, cache: &Path) -> Result<Output, String> {
    let mime = mime_of(url);
    let bytes = std::fs::read(source).map_err(|e| format!("cannot read: {e}"))?;
    let pass = |size: Option<(u32, u32)>| Output {
        info: ImageInfo {
            url: url.to_string(),
            mime,
            size,
            variants: vec![],
            webp: vec![],
        },
        made: vec![],
        cache_problem: None,
        encoded: 0,
        cached: 0,
    };
    let format = match mime {
        "image/png" => image::ImageFormat::Png,
        "image/jpeg" => image::ImageFormat::Jpeg,
        "image/svg+xml" => {
            let size = size::svg(&String::from_utf8_lossy(&bytes));
            return Ok(pass(size));
        }
        "image/gif" => {
            let size = size::gif(&bytes).ok_or("not a readable GIF file")?;
            return Ok(pass(Some(size)));
        }
        "image/webp" => {
            let size = webp::BitstreamFeatures::new(&bytes)
                .map(|f| (f.width(), f.height()))
                .ok_or("not a readable WebP file")?;
            return Ok(pass(Some(size)));
        }
        // Other formats pass through: the browser can show them, folio cannot measure them.
        _ => return Ok(pass(None)),
    };
    let (w0, h0) = image::ImageReader::with_format(Cursor::new(&bytes), format)
        .into_dimensions()
        .map_err(|e| format!("not a readable {mime} file: {e}"))?;
    let source_hash = blake3::hash(&bytes);
    let (dir, file) = url.rsplit_once('/').unwrap_or(("", url));
    let (stem, ext) = file.rsplit_once('.').unwrap_or((file, "img"));
    let mut out = Output {
        info: ImageInfo {
            url: url.to_string(),
            mime,
            size: Some((w0, h0)),
            variants: vec![],
            webp: vec![],
        },
        made: vec![],
        cache_problem: None,
        encoded: 0,
        cached: 0,
    };
    let mut decoded: Option<image::DynamicImage> = None;
    let max = *WIDTHS.last().expect("widths");
    let mut widths: Vec<u32> = WIDTHS.iter().copied().filter(|&w| w < w0).collect();
    // The WebP copies include the original's own width (when within the widths): a browser
    // that takes WebP never needs the original.
    let webp_widths: Vec<u32> = widths
        .iter()
        .copied()
        .chain((w0 <= max).then_some(w0))
        .collect();
    let jobs = widths
        .drain(..)
        .map(|w| (w, Kind::Fallback(format)))
        .chain(webp_widths.into_iter().map(|w| (w, Kind::Webp)));
    for (w, kind) in jobs {
        let h = ((u64::from(h0) * u64::from(w) + u64::from(w0) / 2) / u64::from(w0)).max(1) as u32;
        let out_ext = match kind {
            Kind::Webp => "webp",
            Kind::Fallback(_) => ext,
        };
        let key = {
            let mut k = blake3::Hasher::new();
            k.update(CODEC_VERSION);
            k.update(source_hash.as_bytes());
            k.update(&w.to_le_bytes());
            k.update(out_ext.as_bytes());
            k.update(&[JPEG_QUALITY]);
            k.update(&WEBP_QUALITY.to_le_bytes());
            k.finalize().to_hex()
        };
        let cached = cache.join(format!("{key}.{out_ext}"));
        let out_bytes = match std::fs::read(&cached) {
            Ok(b) => {
                out.cached += 1;
                b
            }
            Err(_) => {
                if decoded.is_none() {
                    decoded = Some(
                        image::load_from_memory_with_format(&bytes, format)
                            .map_err(|e| format!("cannot decode: {e}"))?,
                    );
                }
                let img = decoded.as_ref().expect("decoded above");
                let b = encode(img, format, w, h, kind)?;
                out.encoded += 1;
                if let Err(e) =
                    std::fs::create_dir_all(cache).and_then(|()| write_atomic(&cached, &b))
                {
                    out.cache_problem = Some(format!("{}: {e}", cached.display()));
                }
                b
            }
        };
        // A fallback copy bigger than the original (a resized pixel-art PNG) is not worth
        // it: browsers without WebP take the original.
        if matches!(kind, Kind::Fallback(_)) && out_bytes.len() >= bytes.len() && w0 <= max {
            continue;
        }
        let path = format!("{dir}/{stem}.{w}w.{}.{out_ext}", &key.as_str()[..10]);
        let v = Variant {
            width: w,
            height: h,
            url: path.clone(),
        };
        match kind {
            Kind::Webp => out.info.webp.push(v),
            Kind::Fallback(_) => out.info.variants.push(v),
        }
        out.made
            .push((path.trim_start_matches('/').to_string(), out_bytes));
    }
    if w0 <= max {
        out.info.variants.push(Variant {
            width: w0,
            height: h0,
            url: url.to_string(),
        });
    }
    Ok(out)
}

fn encode(
    img: &image::DynamicImage,
    source_format: image::ImageFormat,
    w: u32,
    h: u32,
    kind: Kind,
) -> Result<Vec<u8>, String> {
    let small = if (w, h) == (img.width(), img.height()) {
        img.clone()
    } else {
        img.resize_exact(w, h, image::imageops::FilterType::Lanczos3)
    };
    let problem = |e: &dyn std::fmt::Display| format!("cannot encode a {w}px copy: {e}");
    let mut out = Vec::new();
    match kind {
        Kind::Fallback(image::ImageFormat::Jpeg) => {
            let rgb = small.to_rgb8();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                .encode_image(&rgb)
                .map_err(|e| problem(&e))?;
        }
        Kind::Fallback(_) => small
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .map_err(|e| problem(&e))?,
        Kind::Webp => {
            let rgba;
            let rgb;
            let enc = if small.color().has_alpha() {
                rgba = small.to_rgba8();
                webp::Encoder::from_rgba(&rgba, w, h)
            } else {
                rgb = small.to_rgb8();
                webp::Encoder::from_rgb(&rgb, w, h)
            };
            let webp_problem = |e: webp::WebPEncodingError| problem(&format!("{e:?}"));
            let lossy = enc
                .encode_simple(false, WEBP_QUALITY)
                .map_err(webp_problem)?;
            // PNG originals (screenshots, diagrams) stay exact when that is not bigger.
            if source_format == image::ImageFormat::Png {
                let exact = enc.encode_simple(true, 100.0).map_err(webp_problem)?;
                if exact.len() <= lossy.len() {
                    out.extend_from_slice(&exact);
                    return Ok(out);
                }
            }
            out.extend_from_slice(&lossy);
        }
    }
    Ok(out)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn raster_images_get_capped_copies_in_both_formats_and_a_warm_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("cover.png");
        std::fs::write(&src, png(1000, 500)).unwrap();
        let cache = tmp.path().join("cache");
        let out = process("/projects/x/cover.png", &src, &cache).unwrap();
        assert!(out.cache_problem.is_none());
        let widths: Vec<u32> = out.info.variants.iter().map(|v| v.width).collect();
        assert_eq!(widths, vec![360, 720, 1000]);
        let webp: Vec<u32> = out.info.webp.iter().map(|v| v.width).collect();
        assert_eq!(webp, vec![360, 720, 1000]);
        assert_eq!(out.info.size, Some((1000, 500)));
        assert_eq!(out.info.variants[0].height, 180);
        assert_eq!((out.made.len(), out.encoded, out.cached), (5, 5, 0));
        for (path, bytes) in &out.made {
            assert!(path.starts_with("projects/x/cover."), "{path}");
            let w = if path.ends_with(".webp") {
                webp::BitstreamFeatures::new(bytes).unwrap().width()
            } else {
                image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png)
                    .into_dimensions()
                    .unwrap()
                    .0
            };
            assert!(path.contains(&format!(".{w}w.")), "{path} is {w} wide");
        }
        assert_eq!(
            out.info.variants.last().unwrap().url,
            "/projects/x/cover.png"
        );
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 5);

        // Warm: the cached files are used as they are (a marker proves it), same names.
        let first = std::fs::read_dir(&cache)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&first, b"cached").unwrap();
        let again = process("/projects/x/cover.png", &src, &cache).unwrap();
        assert_eq!(again.info, out.info);
        assert_eq!((again.encoded, again.cached), (0, 5));
        assert!(again.made.iter().any(|(_, b)| b == b"cached"));
    }

    #[test]
    fn a_broken_raster_image_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("cover.jpg");
        std::fs::write(&src, b"not a jpeg").unwrap();
        let e = process("/c.jpg", &src, &tmp.path().join("c"))
            .err()
            .unwrap();
        assert!(e.contains("image/jpeg"), "{e}");
    }
}
