//! Cloudflare's limit on the number of files in one deploy: Workers static assets take at most
//! 20,000 files per version on the Free plan (100,000 on a paid plan), so a site whose output
//! holds more cannot be deployed there with `folio deploy`. `folio build` (and so `folio
//! deploy`, which builds first) counts the output and warns — a warning, not an error: the
//! site is fine on a paid plan or another host.

use std::path::Path;

/// Files per version that Workers static assets take on Cloudflare's Free plan.
pub const FREE_PLAN_FILES: usize = 20_000;

/// The number of files under `dir`, at any depth (links are not followed; a folder that
/// cannot be read counts as empty: this only feeds a warning).
pub fn count_files(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| !e.file_type().is_dir())
        .count()
}

/// The warning for an output of `files` files that holds more than `limit` (pass
/// [`FREE_PLAN_FILES`]), or `None`.
pub fn warning(output: &Path, files: usize, limit: usize) -> Option<String> {
    (files > limit).then(|| {
        format!(
            "warning: {} holds {} files: Cloudflare Workers static assets take at most {} files \
             per version on the Free plan (100,000 on a paid plan), so `folio deploy` to a \
             Free-plan account will fail (docs/deploy-cloudflare.md, \"How many files\")",
            output.display(),
            thousands(files),
            thousands(limit)
        )
    })
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_at_any_depth_and_warns_only_over_the_limit() {
        let tmp = tempfile::tempdir().unwrap();
        for rel in ["a.html", "x/b.css", "x/y/c.gz", "x/y/z/d.json"] {
            let p = tmp.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "1").unwrap();
        }
        std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
        let n = count_files(tmp.path());
        assert_eq!(n, 4);
        assert_eq!(warning(tmp.path(), n, 4), None);
        let w = warning(tmp.path(), n, 3).unwrap();
        assert!(
            w.contains("holds 4 files") && w.contains("at most 3 files"),
            "{w}"
        );
        let w = warning(Path::new("public"), 23_978, FREE_PLAN_FILES).unwrap();
        assert!(
            w.contains("public holds 23,978 files")
                && w.contains("at most 20,000 files per version on the Free plan"),
            "{w}"
        );
        assert_eq!(warning(Path::new("public"), 20_000, FREE_PLAN_FILES), None);
    }
}
