//! Demo recordings (`[demo] recording`): each is read and checked at build time (a missing
//! file is an error at the front matter's `recording` key, a bad line of the cast at its own
//! line and column), published as a content-hashed static file for the player, and turned
//! into the page's poster frame ([`crate::poster`]). The build needs no sandbox: the
//! author commits the `.cast` that `folio record` made.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::assets::{Assets, Payload};
use folio_content::asciicast::Cast;
use folio_content::content::Content;
use folio_content::diagnostics::{Diagnostic, Diagnostics};

/// Per page index: its `page.demo.recording` template value
/// (`{url, cols, rows, duration, poster_time, poster_html}`).
pub(crate) type RecordingValues = HashMap<usize, Value>;

/// Reads, checks and publishes every page's recording.
pub(crate) fn add(
    content: &Content,
    assets: &mut Assets,
    diags: &mut Diagnostics,
) -> RecordingValues {
    let mut out = HashMap::new();
    for (i, page) in content.pages.iter().enumerate() {
        let Some(rec) = page.demo.as_ref().and_then(|d| d.recording.as_ref()) else {
            continue;
        };
        let shown_page = &page.file.shown;
        let shown_cast: PathBuf = shown_page
            .parent()
            .map_or_else(|| PathBuf::from(&rec.name), |p| p.join(&rec.name));
        let text = match std::fs::read_to_string(&rec.path) {
            Ok(t) => t,
            Err(e) => {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "demo recording {:?} does not exist beside the write-up: make it with `folio record {}`",
                        rec.name,
                        shown_page.display()
                    )
                } else {
                    format!("cannot read demo recording {:?}: {e}", rec.name)
                };
                diags.push(Diagnostic::error(shown_page, rec.pos, why));
                continue;
            }
        };
        let cast = match Cast::parse(&text) {
            Ok(c) => c,
            Err(e) => {
                diags.push(Diagnostic::error(
                    &shown_cast,
                    Some((e.line, e.column)),
                    format!("not an asciicast v2 recording: {}", e.message),
                ));
                continue;
            }
        };
        let duration = cast.duration();
        let at = rec.poster.map(|d| d.as_secs_f64());
        if let Some(t) = at.filter(|t| *t > duration) {
            diags.push(Diagnostic::warning(
                shown_page,
                rec.pos,
                format!("demo poster {t} s is after the recording's end ({duration:.1} s): the poster shows its end"),
            ));
        }
        let screen = crate::poster::screen_at(&cast, at);
        let (rows, cols) = screen.size();
        let logical = format!("recordings/{}.cast", page.slug);
        assets.add(
            &logical,
            Payload::Bytes(Cow::Owned(text.into_bytes())),
            shown_cast,
            diags,
        );
        out.insert(
            i,
            json!({
                "url": assets.url(&logical).unwrap_or_default(),
                "cols": cols.get(),
                "rows": rows.get(),
                "duration": duration,
                "poster_time": at.unwrap_or(duration).min(duration),
                "poster_html": crate::poster::to_html(&screen),
            }),
        );
    }
    out
}
