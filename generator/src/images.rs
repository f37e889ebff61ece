//! The site's images, measured, resized and re-encoded once for every place that shows them:
//! covers (see [`crate::covers`]), markdown images and the `figure` shortcode.
//!
//! A raster image (PNG or JPEG) gets copies at [`WIDTHS`] narrower than itself in its own
//! format (the fallback) and WebP copies at the same widths and its own (the modern format,
//! offered first through `<picture>`); nothing is ever upscaled. SVG and GIF pass through
//! with the size their file states; WebP and AVIF originals pass through, measured when
//! their header allows.
//!
//! Encoding is the slow part of a build that has images, so every copy is kept under
//! `.folio/cache/images/`, named by a hash of the source bytes, the width and the encoder
//! settings: a warm build reads the files back and encodes nothing (the counts are in
//! [`Stats`], and in the build summary).
//!
//! Images are processed on demand and at most once per build, from any thread: the markdown
//! phase asks for the images its bodies name, the cover phase for the covers; at the end the
//! copies made are added to the build's static files ([`Images::add_to`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::assets::{Assets, Payload, StaticFile};
use folio_content::content::Content;
use folio_content::diagnostics::{display_path, Diagnostics};

mod encode;
pub(crate) mod markup;
pub(crate) mod size;

/// Widths of the copies, in CSS pixels at 1×; capped at the original's width.
pub(crate) const WIDTHS: &[u32] = &[360, 720, 1080, 1440];

/// The folder of the encoded-copy cache of a site.
pub(crate) fn cache_dir(root: &Path) -> PathBuf {
    root.join(".folio/cache/images")
}

/// One width of an image, in one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variant {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// URL path (root-relative).
    pub url: String,
}

/// What a page needs to show an image well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageInfo {
    /// URL path of the original (root-relative).
    pub url: String,
    /// MIME type of the original.
    pub mime: &'static str,
    /// Intrinsic size of the original, when known.
    pub size: Option<(u32, u32)>,
    /// Copies in the original's format, narrowest first, the original included when it is
    /// within [`WIDTHS`]; empty when the image is not resized (SVG, GIF, …).
    pub variants: Vec<Variant>,
    /// WebP copies, narrowest first (the original's width included); empty when not made.
    pub webp: Vec<Variant>,
}

impl ImageInfo {
    /// The `srcset` of the original format, or `None` when there is nothing to choose from.
    pub(crate) fn srcset(&self) -> Option<String> {
        (self.variants.len() > 1).then(|| srcset_of(&self.variants))
    }

    /// The `srcset` of the WebP copies, or `None` when there are none.
    pub(crate) fn webp_srcset(&self) -> Option<String> {
        (!self.webp.is_empty()).then(|| srcset_of(&self.webp))
    }

    /// A good default `src`: the copy closest to 720 pixels wide, else the original.
    pub(crate) fn src(&self) -> &str {
        self.variants
            .iter()
            .min_by_key(|v| v.width.abs_diff(720))
            .map_or(self.url.as_str(), |v| v.url.as_str())
    }

    /// A digest of everything a page shows of the image (its URLs and sizes): a page
    /// rendered with an image is reused only while the digest is the same.
    pub(crate) fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(format!("{self:?}").as_bytes());
        *h.finalize().as_bytes()
    }
}

fn srcset_of(v: &[Variant]) -> String {
    v.iter()
        .map(|v| format!("{} {}w", v.url, v.width))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many copies a build encoded and how many it read back from the cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Copies encoded by this build.
    pub encoded: usize,
    /// Copies read back from `.folio/cache/images/`.
    pub cached: usize,
}

/// The result of processing one image: its info, or why it cannot be shown.
pub(crate) type Processed = Result<Arc<ImageInfo>, String>;

/// Every image file of a site, and those processed so far in this build.
pub(crate) struct Images {
    root: PathBuf,
    cache: PathBuf,
    /// Site path without the leading `/` → source file, for files that look like images.
    index: HashMap<String, PathBuf>,
    done: Mutex<HashMap<String, Arc<OnceLock<Processed>>>>,
    /// Copies made: output path → (bytes, source shown in messages).
    made: Mutex<BTreeMap<String, (Vec<u8>, PathBuf)>>,
    cache_problems: Mutex<Vec<String>>,
    encoded: AtomicUsize,
    cached: AtomicUsize,
}

/// The file extensions looked at.
fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["png", "jpg", "jpeg", "gif", "svg", "webp", "avif"]
        .iter()
        .any(|e| lower.rsplit_once('.').is_some_and(|(_, x)| x == *e))
}

impl Images {
    /// Indexes the image files of the site: files in page bundles, loose content files and
    /// static files.
    pub(crate) fn new(root: &Path, content: &Content, assets: &Assets) -> Images {
        let mut index = HashMap::new();
        for (out, f) in &assets.files {
            if let Payload::File(p) = &f.payload {
                if is_image_name(out) {
                    index.insert(out.clone(), p.clone());
                }
            }
        }
        for f in &content.loose_files {
            if is_image_name(&f.output) {
                index.insert(f.output.clone(), f.source.clone());
            }
        }
        for p in &content.pages {
            for (src, out) in &p.assets {
                if is_image_name(out) {
                    index.insert(out.clone(), src.clone());
                }
            }
        }
        Images {
            root: root.to_path_buf(),
            cache: cache_dir(root),
            index,
            done: Mutex::default(),
            made: Mutex::default(),
            cache_problems: Mutex::default(),
            encoded: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
        }
    }

    /// The source file of a site path (`/projects/x/shot.png`), if it is an image of the site.
    pub(crate) fn source(&self, site_path: &str) -> Option<&Path> {
        self.index
            .get(site_path.trim_start_matches('/'))
            .map(PathBuf::as_path)
    }

    /// The processed image at a site path (`/projects/x/shot.png`); `None` when no image file
    /// of the site is there (the link check reports that, see `site::links`). Processed once
    /// per build whoever asks first.
    pub(crate) fn get(&self, site_path: &str) -> Option<Processed> {
        let rel = site_path.trim_start_matches('/');
        let source = self.index.get(rel)?;
        let cell = self
            .done
            .lock()
            .expect("images lock")
            .entry(rel.to_string())
            .or_default()
            .clone();
        let r = cell.get_or_init(|| {
            let url = format!("/{rel}");
            let out = encode::process(&url, source, &self.cache)?;
            self.encoded.fetch_add(out.encoded, Ordering::Relaxed);
            self.cached.fetch_add(out.cached, Ordering::Relaxed);
            if let Some(p) = out.cache_problem {
                self.cache_problems.lock().expect("images lock").push(p);
            }
            let shown = display_path(&self.root, source);
            let mut made = self.made.lock().expect("images lock");
            for (path, bytes) in out.made {
                made.insert(path, (bytes, shown.clone()));
            }
            Ok(Arc::new(out.info))
        });
        Some(r.clone())
    }

    /// The copies made so far, added to the build's static files (named by content: cached
    /// forever by `_headers`, like hashed CSS); a cache that could not be written is a
    /// warning.
    pub(crate) fn add_to(&self, assets: &mut Assets, diags: &mut Diagnostics) {
        let made = std::mem::take(&mut *self.made.lock().expect("images lock"));
        for (out, (bytes, shown)) in made {
            assets.urls.insert(format!("{out}@copy"), format!("/{out}"));
            assets.files.insert(
                out,
                StaticFile {
                    payload: Payload::Bytes(bytes.into()),
                    shown,
                },
            );
        }
        for p in std::mem::take(&mut *self.cache_problems.lock().expect("images lock")) {
            diags.push(crate::cache::save_warning("a resized image", p));
        }
    }

    /// Copies encoded and read from the cache so far.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            encoded: self.encoded.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
        }
    }
}

/// The image a page names as `dest` (relative to the page's site path `base`, or
/// root-relative), resolved as a browser would: its site path and the processed image; `None`
/// when no image file of the site is there (the link check reports a missing one).
pub(crate) fn for_page(images: &Images, base: &str, dest: &str) -> Option<(String, Processed)> {
    let path = dest.split(['#', '?']).next().unwrap_or("");
    if path.is_empty() {
        return None;
    }
    let target = crate::site::links::site_path(base, &crate::site::links::percent_decode(path))?;
    let r = images
        .get(&target)?
        .map_err(|e| format!("image `{dest}` ({target}): {e}"));
    Some((target, r))
}

/// The MIME type of a file by its name.
pub(crate) fn mime_of(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "avif" => "image/avif",
        _ => "application/octet-stream",
    }
}
