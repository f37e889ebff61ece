//! Responsive cover images: the fields templates get for a page's cover (`cover_src`,
//! `cover_srcset`, `cover_webp_srcset`, `cover_width`, …), from the site's images as
//! [`crate::images`] processed them (smaller copies at a few widths, WebP beside the
//! original's format, cached by content hash), so a card on a phone downloads a 360-pixel
//! WebP and not the author's 1440-pixel original. SVG covers pass through untouched, with
//! their intrinsic size when the file states one.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::{json, Value};

use crate::images::{mime_of, ImageInfo, Images};
use folio_content::content::{Content, Page};
use folio_content::diagnostics::{display_path, Diagnostic, Diagnostics};

/// The covers of a build, by page path.
#[derive(Debug, Default)]
pub(crate) struct Covers {
    by_page: HashMap<String, Arc<ImageInfo>>,
}

impl Covers {
    /// Finds every published page's cover and processes it (or reads its copies from the
    /// cache). A cover that is not a file of the site is left to the link check.
    pub(crate) fn build(
        root: &std::path::Path,
        content: &Content,
        images: &Images,
        diags: &mut Diagnostics,
    ) -> Covers {
        let jobs: Vec<(&Page, &str)> = content
            .pages
            .iter()
            .filter_map(|p| Some((p, p.cover.as_deref()?)))
            .filter(|(_, url)| !url.starts_with("http://") && !url.starts_with("https://"))
            .collect();
        let results: Vec<_> = jobs
            .par_iter()
            .map(|(p, url)| (p, url, images.get(url)))
            .collect();
        let mut covers = Covers::default();
        for (p, url, r) in results {
            let info = match r {
                Some(Ok(info)) => info,
                Some(Err(msg)) => {
                    let shown = images
                        .source(url)
                        .map(|s| display_path(root, s))
                        .unwrap_or_else(|| p.file.shown.clone());
                    diags.push(Diagnostic::error(
                        shown,
                        None,
                        format!("cover image of {}: {msg}", p.file.shown.display()),
                    ));
                    continue;
                }
                None => Arc::new(ImageInfo {
                    url: url.to_string(),
                    mime: mime_of(url),
                    size: None,
                    variants: vec![],
                    webp: vec![],
                }),
            };
            covers.by_page.insert(p.path.clone(), info);
        }
        covers
    }

    /// The cover of a page, by its path.
    pub(crate) fn get(&self, page_path: &str) -> Option<&ImageInfo> {
        self.by_page.get(page_path).map(|i| &**i)
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
            info.and_then(ImageInfo::srcset)
                .map_or(Value::Null, Value::String),
        );
        o.insert(
            "cover_webp_srcset".into(),
            info.and_then(ImageInfo::webp_srcset)
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
