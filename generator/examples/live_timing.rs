//! Rough timings of incremental rebuilds (`folio serve`) on a site, e.g. the 1,000-page corpus
//! of `bench/build-bench --keep DIR`: a page edit and an edit of the template every project
//! page uses, against a full in-memory build. Not the benchmark (that measures to the browser);
//! a quick look at the engine alone.
//!
//! `cargo run --release -p folio --example live_timing -- SITE [PAGE.md] [TEMPLATE]`
//! (paths relative to SITE; defaults: the first page under content/projects, the site's
//! templates/page.html, else the theme's). The files are edited and restored. `PHASES=N`
//! prints the time of each build phase for N no-op rebuilds and one page edit instead.

use std::path::{Path, PathBuf};
use std::time::Instant;

use folio::live::LiveSite;
use folio::site::{self, BuildOptions, Mode};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(
        args.first()
            .expect("usage: live_timing SITE [PAGE] [TEMPLATE]"),
    );
    let page = args.get(1).map(PathBuf::from).unwrap_or_else(|| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("content/projects"))
            .expect("content/projects")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "md") && !p.ends_with("_index.md"))
            .collect();
        v.sort();
        v[0].strip_prefix(&root).unwrap().to_path_buf()
    });
    // The site's override when there is one: the theme may be a link to the repo's own.
    let template = args.get(2).map(PathBuf::from).unwrap_or_else(|| {
        let own = PathBuf::from("templates/page.html");
        if root.join(&own).is_file() {
            own
        } else {
            PathBuf::from("themes/folio/templates/page.html")
        }
    });

    if std::env::var_os("PHASES").is_some() {
        phases(&root);
        return;
    }
    let mut opts = BuildOptions::new(&root);
    opts.mode = Mode::Memory;
    for i in 0..2 {
        let t = Instant::now();
        site::build(&opts).expect("full build");
        println!("full in-memory build {i}: {:?}", t.elapsed());
    }
    let mut live = LiveSite::new(opts.clone());
    let t = Instant::now();
    let r = live.build_all().expect("first live build");
    println!(
        "live first build: {:?} ({} rendered)",
        t.elapsed(),
        r.rendered
    );
    let t = Instant::now();
    let r = live.rebuild(&[]).expect("no-op");
    println!(
        "no-op rebuild: {:?} ({} rendered, {} changed)",
        t.elapsed(),
        r.rendered,
        r.changed.len()
    );

    let edit = |rel: &Path, f: &dyn Fn(&str) -> String, live: &mut LiveSite, what: &str| {
        let p = root.join(rel);
        let old = std::fs::read_to_string(&p).expect("read");
        for (i, text) in [f(&old), old.clone()].into_iter().enumerate() {
            std::fs::write(&p, text).expect("write");
            let t = Instant::now();
            let r = live.rebuild(std::slice::from_ref(&p)).expect("rebuild");
            println!(
                "{what}{}: {:?} ({} rendered, {} reused, {} changed)",
                if i == 0 { "" } else { " (restore)" },
                t.elapsed(),
                r.rendered,
                r.reused,
                r.changed.len()
            );
        }
    };
    for _ in 0..3 {
        edit(
            &page,
            &|s| format!("{s}\n\nOne more paragraph.\n"),
            &mut live,
            "page body edit",
        );
    }
    for _ in 0..2 {
        edit(
            &template,
            &|s| s.replacen("</article>", "<!-- x --><p>edited</p></article>", 1),
            &mut live,
            "template edit",
        );
    }
}

/// Phases of a no-op incremental build, for profiling.
#[allow(dead_code)]
pub fn phases(root: &Path) {
    let mut opts = BuildOptions::new(root);
    opts.mode = Mode::Memory;
    let (_, mut memo) = site::build_incremental(&opts, &site::Memo::default(), &[]).unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let (c, _) = folio_content::content::load(
            root,
            folio_content::content::LoadOptions { drafts: false },
        );
        println!(
            "content::load alone: {:?} ({} pages)",
            t.elapsed(),
            c.pages.len()
        );
    }
    let opts_c = folio_content::content::LoadOptions { drafts: false };
    let (_, _, mut cache) =
        folio_content::content::load_cached(root, opts_c, &Default::default(), &[]);
    for _ in 0..3 {
        let t = Instant::now();
        let (c, _, next) = folio_content::content::load_cached(root, opts_c, &cache, &[]);
        let next_read = next.files_read();
        cache = next;
        let loaded = t.elapsed();
        let t = Instant::now();
        let n: usize = walkdir::WalkDir::new(root.join("content"))
            .follow_links(true)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| std::fs::read(e.path()).map_or(0, |b| b.len()))
            .sum();
        println!(
            "content::load_cached: {loaded:?} ({} pages, {} files read); walk + read alone, one thread: {:?} ({n} bytes)",
            c.pages.len(),
            next_read,
            t.elapsed()
        );
    }
    let n: usize = std::env::var("PHASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for _ in 0..n {
        let (r, m) = site::build_incremental(&opts, &memo, &[]).unwrap();
        memo = m;
        println!("no-op phases: {:?} total {:?}", r.phases, r.elapsed);
    }
    // One page body edit (appended, then restored), as the serve benchmark makes.
    let page = std::fs::read_dir(root.join("content/projects"))
        .expect("content/projects")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "md") && !p.ends_with("_index.md"))
        .expect("a project page");
    let old = std::fs::read_to_string(&page).expect("read");
    for (i, text) in [format!("{old}\nEdited.\n"), old.clone()]
        .into_iter()
        .enumerate()
    {
        std::fs::write(&page, text).expect("write");
        let (r, m) = site::build_incremental(&opts, &memo, std::slice::from_ref(&page)).unwrap();
        memo = m;
        println!(
            "page edit{} phases: {:?} total {:?} ({} rendered)",
            if i == 0 { "" } else { " (restore)" },
            r.phases,
            r.elapsed,
            r.rendered
        );
    }
}
