//! Callouts in GitHub's alert syntax (`> [!NOTE]`, `[!TIP]`, `[!IMPORTANT]`, `[!WARNING]`,
//! `[!CAUTION]`), which pulldown-cmark parses with `ENABLE_GFM`.
//!
//! The markup is a contract shared with the `note` shortcode:
//! `<div class="callout callout-KIND" role="note"><p class="callout-title">TITLE</p>…</div>`,
//! KIND one of note, tip, important, warning, caution and TITLE the kind as a visible word, so
//! the kind is never told by colour alone.

use pulldown_cmark::BlockQuoteKind;

/// The kind's class suffix and title.
fn kind(k: BlockQuoteKind) -> (&'static str, &'static str) {
    match k {
        BlockQuoteKind::Note => ("note", "Note"),
        BlockQuoteKind::Tip => ("tip", "Tip"),
        BlockQuoteKind::Important => ("important", "Important"),
        BlockQuoteKind::Warning => ("warning", "Warning"),
        BlockQuoteKind::Caution => ("caution", "Caution"),
    }
}

/// The HTML that opens a callout of this kind, its title included.
pub(crate) fn open(k: BlockQuoteKind) -> String {
    let (class, title) = kind(k);
    format!(
        "<div class=\"callout callout-{class}\" role=\"note\"><p class=\"callout-title\">{title}</p>\n"
    )
}

/// The HTML that closes a callout.
pub(crate) const CLOSE: &str = "</div>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_class_and_a_visible_title() {
        assert_eq!(
            open(BlockQuoteKind::Warning),
            "<div class=\"callout callout-warning\" role=\"note\"><p class=\"callout-title\">Warning</p>\n"
        );
        assert!(open(BlockQuoteKind::Tip).contains("callout-tip"));
    }
}
