//! `folio new`'s deploy side, `folio edge init` and `folio deploy`'s checks.
//!
//! `folio deploy` talks to Cloudflare only through wrangler. Here wrangler is replaced by a
//! recording stand-in (`FOLIO_WRANGLER`) that answers like a logged-in or logged-out account,
//! so what is tested is folio's side: every missing piece named with its fix, nothing
//! uploaded while anything is missing, the right wrangler command once all is set. The real
//! wrangler runs `folio deploy --dry-run` on a real `folio new` site in
//! tests/worker/site.test.mjs, which also runs that site's own Worker.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::stderr;

fn folio(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_folio"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run folio")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A new site in a temporary folder, its Worker pointed at this checkout.
fn new_site(tmp: &Path) -> PathBuf {
    let site = tmp.join("ada-site");
    let worker = repo().join("crates/worker");
    let o = Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("new")
        .arg(&site)
        .env("FOLIO_WORKER_PATH", &worker)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    site
}

/// A wrangler stand-in: records every call in `calls.log` beside it and answers `whoami`
/// as logged in when `logged-in` exists there, `secret list` with `secrets.json`.
fn fake_wrangler(dir: &Path) -> PathBuf {
    let bin = dir.join("wrangler");
    std::fs::write(
        &bin,
        r#"#!/bin/sh
here=$(dirname "$0")
echo "$*" >> "$here/calls.log"
case "$1 $2" in
  "whoami --json") [ -e "$here/logged-in" ] && echo '{"loggedIn":true}' && exit 0; echo 'not authenticated' >&2; exit 1 ;;
  "secret list") cat "$here/secrets.json"; exit 0 ;;
  "deployments status") echo '{"versions":[{"version_id":"0ld-v3rsion","percentage":100}]}'; exit 0 ;;
  "versions upload") echo "Worker Version ID: 9e1-preview"; echo "Version Preview URL: https://9e1-ada-site.ada.workers.dev"; exit 0 ;;
  "deploy --message"*) echo "Current Version ID: n3w-v3rsion"; exit 0 ;;
  "deploy --dry-run"*) exit 0 ;;
esac
echo "unexpected: $*" >&2
exit 2
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("secrets.json"), "[]").unwrap();
    bin
}

fn calls(fake: &Path) -> String {
    std::fs::read_to_string(fake.parent().unwrap().join("calls.log")).unwrap_or_default()
}

#[test]
fn new_site_has_the_whole_deploy_side() {
    let tmp = tempfile::tempdir().unwrap();
    let site = new_site(tmp.path());
    for f in [
        "wrangler.toml",
        "worker/Cargo.toml",
        "worker/src/lib.rs",
        ".dev.vars.example",
        "package.json",
        ".github/workflows/deploy.yml",
        "README.md",
    ] {
        assert!(site.join(f).is_file(), "{f} missing");
    }
    // The site's Worker is folio's own thin wiring, byte for byte: no copy to fall behind.
    assert_eq!(
        std::fs::read_to_string(site.join("worker/src/lib.rs")).unwrap(),
        std::fs::read_to_string(repo().join("edge-worker/src/lib.rs")).unwrap()
    );
    let cargo = std::fs::read_to_string(site.join("worker/Cargo.toml")).unwrap();
    assert!(
        cargo.contains(&format!(
            "folio-worker = {{ path = {:?} }}",
            repo().join("crates/worker").display().to_string()
        )),
        "{cargo}"
    );
    let wrangler = std::fs::read_to_string(site.join("wrangler.toml")).unwrap();
    assert!(wrangler.contains("name = \"ada-site\""), "{wrangler}");
    assert!(wrangler.contains("main = \"worker/build/index.js\""));
    // The versions the site pins are the ones folio is tested with.
    let ours: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("package.json")).unwrap())
            .unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("package.json")).unwrap()).unwrap();
    assert_eq!(
        theirs["devDependencies"]["wrangler"],
        ours["devDependencies"]["wrangler"]
    );
    // Without the override, the Worker is pinned to this folio's release.
    let plain = tmp.path().join("plain");
    let o = Command::new(env!("CARGO_BIN_EXE_folio"))
        .arg("new")
        .arg(&plain)
        .env_remove("FOLIO_WORKER_PATH")
        .output()
        .unwrap();
    assert!(o.status.success());
    let cargo = std::fs::read_to_string(plain.join("worker/Cargo.toml")).unwrap();
    assert!(
        cargo.contains(&format!("tag = \"v{}\"", env!("CARGO_PKG_VERSION"))),
        "{cargo}"
    );
    // And the site builds as it is.
    let o = folio(&site, &["build", "--quiet"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn edge_init_adds_the_deploy_side_and_overwrites_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("blog");
    std::fs::create_dir_all(site.join("content")).unwrap();
    std::fs::write(
        site.join("folio.toml"),
        "title = \"A blog\"\nbase_url = \"https://blog.example\"\n",
    )
    .unwrap();
    std::fs::write(
        site.join("content/_index.md"),
        "+++\ntitle = \"Home\"\n+++\n",
    )
    .unwrap();
    std::fs::write(site.join("wrangler.toml"), "# mine\n").unwrap();
    std::fs::write(site.join("README.md"), "# My blog\n").unwrap();
    let o = folio(&site, &["edge", "init"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("kept  wrangler.toml"), "{said}");
    assert_eq!(
        std::fs::read_to_string(site.join("wrangler.toml")).unwrap(),
        "# mine\n"
    );
    assert!(site.join("worker/src/lib.rs").is_file());
    let readme = std::fs::read_to_string(site.join("README.md")).unwrap();
    assert!(readme.starts_with("# My blog\n") && readme.contains("## Deploying"));
    // Run again: nothing more is written.
    let o = folio(&site, &["edge", "init"], &[]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).contains("wrote"));
    // Outside a site it says where it must run.
    let o = folio(tmp.path(), &["edge", "init"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("folio.toml"), "{}", stderr(&o));
}

#[test]
fn deploy_names_every_missing_piece_and_uploads_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let site = new_site(tmp.path());
    // A page with a live demo: the Worker then needs TERMINAL_SECRET.
    std::fs::create_dir_all(site.join("content/projects/shell")).unwrap();
    std::fs::write(
        site.join("content/projects/shell/index.md"),
        "+++\ntitle = \"Shell\"\ndate = 2025-01-01\n[demo]\ncommand = \"/bin/sh\"\n+++\nA shell.\n",
    )
    .unwrap();
    let tools = tempfile::tempdir().unwrap();
    let fake = fake_wrangler(tools.path());
    let env = [("FOLIO_WRANGLER", fake.to_str().unwrap())];

    // Logged out, placeholder KV id, base_url not the Worker's host: all three at once.
    let o = folio(&site, &["deploy"], &env);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("KV namespace id is still the placeholder"),
        "{err}"
    );
    assert!(
        err.contains("base_url https://example.com is not where this Worker is deployed"),
        "{err}"
    );
    assert!(
        err.contains("ada-site.<your-subdomain>.workers.dev"),
        "{err}"
    );
    assert!(err.contains("not logged in"), "{err}");
    assert!(err.contains("nothing was built or uploaded"), "{err}");
    assert!(
        !site.join("public").exists(),
        "built although the set-up is incomplete"
    );

    // Fix the files and log in: the secret is what is left.
    let wt = std::fs::read_to_string(site.join("wrangler.toml")).unwrap();
    std::fs::write(
        site.join("wrangler.toml"),
        wt.replace(
            "00000000000000000000000000000000",
            "4d1a2b3c4d5e6f708192a3b4c5d6e7f8",
        ),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(site.join("folio.toml")).unwrap();
    std::fs::write(
        site.join("folio.toml"),
        cfg.replace("https://example.com", "https://ada-site.ada.workers.dev"),
    )
    .unwrap();
    std::fs::write(tools.path().join("logged-in"), "").unwrap();
    let o = folio(&site, &["deploy"], &env);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("TERMINAL_SECRET is not set"), "{err}");
    assert!(
        !err.contains("placeholder") && !err.contains("base_url"),
        "{err}"
    );
    assert!(
        !calls(&fake).contains("deploy --message"),
        "uploaded anyway"
    );

    // Everything set: it builds, deploys, and records what to roll back to.
    std::fs::write(
        tools.path().join("secrets.json"),
        r#"[{"name":"TERMINAL_SECRET","type":"secret_text"}]"#,
    )
    .unwrap();
    let o = folio(&site, &["deploy"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(said.contains("Deployed version n3w-v3rsion"), "{said}");
    assert!(said.contains("npx wrangler rollback 0ld-v3rsion"), "{said}");
    assert!(site.join("public/index.html").is_file());
    let log = std::fs::read_to_string(site.join(".folio/deploys.log")).unwrap();
    assert!(
        log.contains("deployed=n3w-v3rsion previous=0ld-v3rsion"),
        "{log}"
    );
    assert!(
        calls(&fake).contains("deploy --message folio "),
        "{}",
        calls(&fake)
    );

    // A preview: a version upload, its URL said.
    let o = folio(&site, &["deploy", "--preview"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("https://9e1-ada-site.ada.workers.dev"));
    assert!(calls(&fake).contains("versions upload --message"));
}

#[test]
fn dry_run_needs_no_account_and_only_warns_about_it() {
    let tmp = tempfile::tempdir().unwrap();
    let site = new_site(tmp.path());
    let tools = tempfile::tempdir().unwrap();
    let fake = fake_wrangler(tools.path());
    let o = folio(
        &site,
        &["deploy", "--dry-run"],
        &[("FOLIO_WRANGLER", fake.to_str().unwrap())],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: wrangler.toml: the VIEWS KV namespace id"),
        "{err}"
    );
    let log = calls(&fake);
    assert!(
        !log.contains("whoami"),
        "a dry run asked for the account: {log}"
    );
    assert!(log.contains("deploy --dry-run --outdir"), "{log}");
    // Without wrangler at all, even a dry run cannot go on, and says why.
    let o = folio(&site, &["deploy", "--dry-run"], &[("FOLIO_WRANGLER", "")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("wrangler is not installed"),
        "{}",
        stderr(&o)
    );
}

/// A site under a subpath: `folio deploy` names the `wrangler.toml` lines it needs (and
/// builds nothing until they are there), then builds the site one level down in `public/`,
/// moves `_headers`/`_redirects` up, drops what an earlier build at the root left, and deploys.
#[test]
fn a_subpath_site_is_deployed_one_level_down() {
    let tmp = tempfile::tempdir().unwrap();
    let site = new_site(tmp.path());
    let tools = tempfile::tempdir().unwrap();
    let fake = fake_wrangler(tools.path());
    std::fs::write(tools.path().join("logged-in"), "").unwrap();
    let env = [("FOLIO_WRANGLER", fake.to_str().unwrap())];
    let cfg = std::fs::read_to_string(site.join("folio.toml")).unwrap();
    std::fs::write(
        site.join("folio.toml"),
        cfg.replace(
            "https://example.com",
            "https://ada-site.ada.workers.dev/notes",
        ),
    )
    .unwrap();
    let wt = std::fs::read_to_string(site.join("wrangler.toml"))
        .unwrap()
        .replace(
            "00000000000000000000000000000000",
            "4d1a2b3c4d5e6f708192a3b4c5d6e7f8",
        );
    std::fs::write(site.join("wrangler.toml"), &wt).unwrap();
    // An earlier build at the root, as an author previewing the site would have.
    let o = folio(
        &site,
        &["build", "--base-url", "https://ada-site.ada.workers.dev"],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(site.join("public/index.html").is_file());

    let o = folio(&site, &["deploy"], &env);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("not set up for a site under /notes/"), "{err}");
    assert!(err.contains("BASE_PATH = \"/notes\" under [vars]"), "{err}");
    assert!(
        err.contains("\"/notes/api/*\", \"/notes/terminal/*\""),
        "{err}"
    );
    assert!(
        !calls(&fake).contains("deploy --message"),
        "uploaded anyway"
    );
    assert!(!site.join("public/notes").exists(), "built anyway");

    let first = wt
        .lines()
        .find(|l| l.starts_with("run_worker_first"))
        .expect("folio new's wrangler.toml has run_worker_first");
    let wt = wt
        .replace(
            first,
            "run_worker_first = [\"/notes/api/*\", \"/notes/terminal/*\", \"/notes/contact/\"]",
        )
        .replace("[vars]\n", "[vars]\nBASE_PATH = \"/notes\"\n");
    std::fs::write(site.join("wrangler.toml"), &wt).unwrap();
    let o = folio(&site, &["deploy"], &env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(calls(&fake).contains("deploy --message folio "));
    let public = site.join("public");
    assert!(public.join("notes/index.html").is_file());
    let headers = std::fs::read_to_string(public.join("_headers")).unwrap();
    assert!(headers.contains("/notes/*"), "{headers}");
    assert!(!public.join("notes/_headers").exists());
    let top: Vec<String> = std::fs::read_dir(&public)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in &top {
        assert!(
            ["notes", "_headers", "_redirects"].contains(&name.as_str()),
            "public/{name} would be uploaded beside the site: {top:?}"
        );
    }
    let home = std::fs::read_to_string(public.join("notes/index.html")).unwrap();
    assert!(home.contains("/notes/css/"), "assets not under the subpath");
}

/// More files than Cloudflare's Free plan takes in one version (20,000): `folio build` and
/// `folio deploy` warn, naming the count and the limit, and still build (the files here are
/// static files, not 20,000 pages: the count is of the output, whatever made it).
#[test]
fn an_output_of_more_than_20000_files_is_a_warning_in_build_and_deploy() {
    let tmp = tempfile::tempdir().unwrap();
    let site = new_site(tmp.path());
    let tools = tempfile::tempdir().unwrap();
    let fake = fake_wrangler(tools.path());
    let env = [("FOLIO_WRANGLER", fake.to_str().unwrap())];
    let o = folio(&site, &["build"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Free plan"), "{}", stderr(&o));
    let before = folio::file_limit::count_files(&site.join("public"));
    // Enough static files, in a few folders, to pass the limit by a handful.
    let extra = folio::file_limit::FREE_PLAN_FILES + 5 - before;
    for i in 0..extra {
        let p = site.join(format!("static/bulk/{}/f{i}.txt", i % 20));
        if i < 20 {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        std::fs::write(p, "x").unwrap();
    }
    let o = folio(&site, &["build"], &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "a warning, not an error: {err}");
    let count = folio::file_limit::count_files(&site.join("public"));
    assert!(count > folio::file_limit::FREE_PLAN_FILES);
    let shown = |n: usize| {
        let s = n.to_string();
        format!("{},{}", &s[..s.len() - 3], &s[s.len() - 3..])
    };
    assert!(
        err.contains(&format!("warning: public/ holds {} files", shown(count)))
            && err.contains("at most 20,000 files per version on the Free plan"),
        "{err}"
    );
    let o = folio(&site, &["deploy", "--dry-run"], &env);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("holds") && err.contains("at most 20,000 files per version on the Free plan"),
        "{err}"
    );
}
