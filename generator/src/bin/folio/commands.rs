//! The commands behind the `folio` binary: run the library, print what a person needs to see
//! (progress on long builds, every diagnostic, a one-line summary).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::ui::{thousands, Output};
use folio::site::{self, BuildOptions, BuildReport, Mode};

fn progress(out: &Output) -> Option<Arc<site::ProgressFn>> {
    if out.quiet || !out.tty {
        return None;
    }
    let start = Instant::now();
    let last = AtomicU64::new(0);
    Some(Arc::new(move |done: usize, total: usize| {
        let ms = start.elapsed().as_millis() as u64;
        // Only long builds get a progress line, refreshed at most every 100 ms.
        if ms < 300 || (done < total && ms < last.load(Ordering::Relaxed) + 100) {
            return;
        }
        last.store(ms, Ordering::Relaxed);
        let mut e = std::io::stderr().lock();
        if done >= total {
            let _ = write!(e, "\r\x1b[2K");
        } else {
            let _ = write!(
                e,
                "\r\x1b[2KRendering {} / {} files…",
                thousands(done),
                thousands(total)
            );
        }
        let _ = e.flush();
    }))
}

fn summary(verb: &str, r: &BuildReport) -> String {
    let plural =
        |n: usize, w: &str| format!("{} {w}{}", thousands(n), if n == 1 { "" } else { "s" });
    let search = if r.search_bytes > 0 {
        format!(", search index {:.1} KB", r.search_bytes as f64 / 1024.0)
    } else {
        String::new()
    };
    format!(
        "{verb} {}, {}{search} in {} ms",
        plural(r.pages, "page"),
        plural(r.tags, "tag"),
        r.elapsed.as_millis()
    )
}

fn verbose_report(out: &Output, r: &BuildReport) {
    if !out.verbose {
        return;
    }
    let phases: Vec<String> = r
        .phases
        .iter()
        .map(|(n, d)| format!("{n} {} ms", d.as_millis()))
        .collect();
    eprintln!("  phases: {}", phases.join(", "));
    if !r.peak_memory.is_empty() {
        let peaks: Vec<String> = r
            .peak_memory
            .iter()
            .map(|(n, b)| format!("{n} {} MB", b / 1_000_000))
            .collect();
        eprintln!("  peak memory after: {}", peaks.join(", "));
    }
    eprintln!(
        "  {} sections, {} output files; highlighted {} code blocks, {} from cache",
        r.sections,
        thousands(r.files),
        r.highlight.misses,
        r.highlight.hits
    );
    if r.code_lines.0 > 0 {
        eprintln!(
            "  parsed {} lines of code, {} of them reusing a parse of the same line",
            thousands(r.code_lines.0),
            thousands(r.code_lines.1)
        );
    }
    eprintln!(
        "  rendered {} markdown bodies, {} reused",
        r.markdown.misses, r.markdown.hits
    );
    eprintln!(
        "  rendered {} templates, {} from cache",
        r.page_cache.misses, r.page_cache.hits
    );
    if r.images.encoded + r.images.cached > 0 {
        eprintln!(
            "  image copies: {} encoded, {} from cache",
            r.images.encoded, r.images.cached
        );
    }
}

/// `folio build`: returns whether it succeeded.
pub(crate) fn build(
    out: &Output,
    root: PathBuf,
    output: Option<PathBuf>,
    drafts: bool,
    base_url: Option<String>,
    minify: bool,
) -> bool {
    let opts = BuildOptions {
        root,
        output,
        drafts,
        base_url,
        minify,
        mode: Mode::Write,
        progress: progress(out),
    };
    match site::build(&opts) {
        Ok(r) => {
            out.diagnostics(&r.warnings);
            if !out.quiet {
                let dest = r.output.as_deref().map(relative).unwrap_or_default();
                println!("{} → {dest}", summary("Built", &r));
            }
            verbose_report(out, &r);
            // Cloudflare's per-version file limit (`folio deploy` builds through here too).
            if let Some(dir) = r.output.as_deref() {
                let files = folio::file_limit::count_files(dir);
                let limit = folio::file_limit::FREE_PLAN_FILES;
                if let Some(w) = folio::file_limit::warning(Path::new(&relative(dir)), files, limit)
                {
                    eprintln!("{w}");
                }
            }
            true
        }
        Err(d) => {
            out.diagnostics(&d);
            let n = d.errors().len();
            let dest = opts
                .output
                .clone()
                .unwrap_or_else(|| opts.root.join("public"));
            eprintln!(
                "error: build failed with {} error{}; {} was left as it was",
                n,
                if n == 1 { "" } else { "s" },
                relative(&dest)
            );
            false
        }
    }
}

/// `folio check [--external]`: returns whether the site is valid (and, with a timeout given,
/// whether every external link answered).
pub(crate) fn check(
    out: &Output,
    root: PathBuf,
    drafts: bool,
    external: Option<std::time::Duration>,
) -> bool {
    let opts_root = root.clone();
    let opts = BuildOptions {
        root,
        output: None,
        drafts,
        base_url: None,
        minify: false,
        mode: Mode::Check,
        progress: progress(out),
    };
    match site::build(&opts) {
        Ok(r) => {
            out.diagnostics(&r.warnings);
            if !out.quiet {
                println!("{}: no errors", summary("Checked", &r));
            }
            verbose_report(out, &r);
            let Some(timeout) = external else {
                return true;
            };
            let opts = folio::linkcheck::CheckOptions {
                timeout,
                ..Default::default()
            };
            let d = folio::linkcheck::check(&opts_root, &r.external_links, &opts);
            out.diagnostics(&d);
            let n = d.errors().len();
            if n > 0 {
                eprintln!(
                    "error: {n} broken external link{}",
                    if n == 1 { "" } else { "s" }
                );
                return false;
            }
            if !out.quiet {
                println!(
                    "Checked {} external links: all answer",
                    r.external_links.len()
                );
            }
            true
        }
        Err(d) => {
            out.diagnostics(&d);
            let n = d.errors().len();
            eprintln!("error: {} error{} found", n, if n == 1 { "" } else { "s" });
            false
        }
    }
}

/// `folio serve`: runs until Ctrl-C; returns false when it could not start.
pub(crate) fn serve(out: &Output, opts: crate::serve::ServeOptions) -> bool {
    match crate::serve::run(opts, out.clone()) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// `folio new DIR`.
pub(crate) fn new_site(out: &Output, dir: &Path) -> bool {
    match crate::scaffold::create(dir) {
        Ok(files) => {
            if !out.quiet {
                println!("Created a new site in {} ({} files).", dir.display(), files);
                println!(
                    "Next: cd {} && folio serve   (then folio build; README.md says how to deploy)",
                    shell_quote(&dir.display().to_string())
                );
            }
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// `folio import zola|hugo DIR`.
pub(crate) fn import(out: &Output, from: folio::import::Origin, dir: &Path) -> bool {
    match folio::import::import(from, dir) {
        Ok(r) => {
            let source = r.source.file_name().unwrap_or_default().to_string_lossy();
            for s in &r.skipped {
                let at = match s.line {
                    Some(l) => format!("{source}:{l}"),
                    None => source.to_string(),
                };
                eprintln!("{at}: warning: `{}` not carried over: {}", s.key, s.why);
            }
            if !out.quiet {
                println!(
                    "Wrote {} from {source} ({} setting{} not carried over).",
                    r.written.display(),
                    r.skipped.len(),
                    if r.skipped.len() == 1 { "" } else { "s" }
                );
                println!(
                    "Next: folio build --root {}   (docs/migrating.md walks the rest)",
                    shell_quote(&dir.display().to_string())
                );
            }
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// `folio edge init`.
pub(crate) fn edge_init(out: &Output, root: &Path) -> bool {
    match crate::scaffold::edge_init(root) {
        Ok((written, kept)) => {
            if !out.quiet {
                for f in &written {
                    println!("  wrote {f}");
                }
                for f in &kept {
                    println!("  kept  {f} (already there)");
                }
                println!(
                    "Next: see the Deploying section of README.md, then folio deploy --dry-run"
                );
            }
            true
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

/// `s` as one word for a POSIX shell: as it is when it is plainly safe, else single-quoted.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./+:@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A folder as the user would type it from here: `public/` rather than an absolute path.
fn relative(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    let abs = cwd.join(p);
    let p = abs.canonicalize().unwrap_or(abs);
    p.strip_prefix(&cwd)
        .map(|r| format!("{}/", r.display()))
        .unwrap_or_else(|_| p.display().to_string())
}
