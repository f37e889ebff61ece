//! Embeds the default theme (`themes/folio`) in the binary, so `folio build` works on a site
//! that has no `themes/` folder and `folio new` can start one without a download.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    // Read at run time, not with env!(): a build script compiled once is reused by every
    // checkout sharing the target dir, and must embed the theme of the checkout being built.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let theme = Path::new(&manifest_dir).join("../themes/folio");
    println!("cargo:rerun-if-changed={}", theme.display());
    let mut files = Vec::new();
    if theme.is_dir() {
        collect(&theme, &mut files);
    }
    files.sort();
    let mut out = String::from("/// The default theme's files: (path under the theme, bytes).\npub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&theme)
            .expect("inside theme")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            f.canonicalize().expect("canonical").display().to_string()
        )
        .expect("write");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("embedded_theme.rs");
    std::fs::write(dest, out).expect("write embedded theme");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read theme dir")
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        println!("cargo:rerun-if-changed={}", p.display());
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}
