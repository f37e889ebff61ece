//! A throwaway site in a temporary folder, and the real `folio` binary to run on it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) struct Site {
    pub dir: tempfile::TempDir,
}

pub(crate) const CONFIG: &str =
    "title = \"Test site\"\nbase_url = \"https://test.example\"\nauthor = \"Tess\"\n";

impl Site {
    /// A small valid site: home, about, a projects section with two projects, one bundle.
    pub(crate) fn new() -> Site {
        let s = Site {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        s.write("folio.toml", CONFIG);
        s.write(
            "content/_index.md",
            "+++\ntitle = \"Home\"\n+++\nWelcome. See [alpha](@/projects/alpha.md#intro).\n",
        );
        s.write(
            "content/about.md",
            "+++\ntitle = \"About\"\n+++\n## Me\n\nHello.\n",
        );
        s.write(
            "content/projects/_index.md",
            "+++\ntitle = \"Projects\"\nsort_by = \"date\"\n+++\n",
        );
        s.write(
            "content/projects/alpha.md",
            "+++\ntitle = \"Alpha\"\ndate = 2024-01-02\ntags = [\"rust\", \"cli\"]\ndescription = \"The first\"\n+++\nSummary here.\n\n<!-- more -->\n\n## Intro\n\nBody with `code`.\n\n```rust\nfn main() {}\n```\n",
        );
        s.write("content/projects/beta/index.md", "+++\ntitle = \"Beta\"\ndate = 2024-03-04\ntags = [\"rust\"]\ncover = \"cover.svg\"\n+++\n## Intro\n\nSee [alpha](@/projects/alpha.md).\n");
        s.write(
            "content/projects/beta/cover.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
        );
        s
    }

    /// The least a site needs besides its own sections: the configuration, a home page and
    /// the (empty) projects section the default theme's home lists.
    pub(crate) fn minimal() -> Site {
        let s = Site {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        s.write("folio.toml", CONFIG);
        s.write("content/_index.md", "+++\ntitle = \"Home\"\n+++\nHi.\n");
        s.write(
            "content/projects/_index.md",
            "+++\ntitle = \"Projects\"\n+++\n",
        );
        s
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        self.write_bytes(rel, text.as_bytes());
    }

    pub(crate) fn write_bytes(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    pub(crate) fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path(rel)).unwrap();
    }

    /// Runs `folio <args…> --root <site>` (the root flag is added to build and check).
    pub(crate) fn folio(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_folio"));
        cmd.args(args);
        if matches!(args.first(), Some(&"build") | Some(&"check")) {
            cmd.arg("--root").arg(self.root());
        }
        cmd.current_dir(self.root());
        cmd.output().expect("run folio")
    }

    pub(crate) fn build_ok(&self) -> String {
        let out = self.folio(&["build"]);
        assert!(
            out.status.success(),
            "build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Every file under `public/`, path → bytes.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        snapshot(&self.path("public"))
    }
}

pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            m.insert(
                e.path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                std::fs::read(e.path()).unwrap(),
            );
        }
    }
    m
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
