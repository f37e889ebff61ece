//! Demo identifiers: what may appear in `/terminal/<demo>` and inside a token.

/// Longest page slug (and so demo id and counter key), in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Whether `id` is a well-formed page slug, and so a demo id and a counter key:
/// `^[a-z0-9][a-z0-9_-]{0,63}$` (at most [`MAX_ID_LEN`] bytes).
///
/// One rule for all three: the build refuses a page slug that breaks it, the Worker and
/// `folio serve` refuse such a counter key or demo, and the origin such a route.
/// A demo's id is its page's slug. Both the Worker (before it mints a token or looks a demo
/// up) and the origin (before it routes) check this, so ids are safe to put in URLs, log
/// lines, metric labels, file names and the token's dot-separated form without escaping.
pub fn is_valid_demo_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    if bytes.len() > MAX_ID_LEN {
        return false;
    }
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    alnum(first) && rest.iter().all(|b| alnum(b) || *b == b'_' || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs() {
        for ok in ["a", "0", "minirt", "mini-rt", "mini_rt", "a1-b2_c3"] {
            assert!(is_valid_demo_id(ok), "{ok}");
        }
        assert!(is_valid_demo_id(&"a".repeat(64)));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "", "-a", "_a", "A", "miniRT", "a.b", "a/b", "a b", "..", "a\0", "é", "a\n",
        ] {
            assert!(!is_valid_demo_id(bad), "{bad:?}");
        }
        assert!(!is_valid_demo_id(&"a".repeat(65)));
    }
}
