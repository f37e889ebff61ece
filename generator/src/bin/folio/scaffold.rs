//! `folio new`: a starter site that builds as it is, with the built-in theme.

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
        (".gitignore", "/public/\n/.folio/\n".into()),
    ];
    for (rel, text) in &files {
        let path = dir.join(rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)
                .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(files.len())
}
