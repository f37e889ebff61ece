//! The `token` and `check` subcommands (`serve` is [`crate::server::serve`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use terminal_protocol::{is_valid_demo_id, MAX_TOKEN_TTL_SECS};

use crate::limits::Limits;
use crate::sandbox::{find_bwrap, Sandbox};
use crate::secret::{now_unix, random, read_secret};
use crate::server::ServeOptions;

/// Arguments of `folio-pty serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The site's root (the folder with folio.toml).
    #[arg(long)]
    pub site: PathBuf,
    /// Address to listen on (keep it on loopback behind cloudflared).
    #[arg(long, default_value = "127.0.0.1:7681")]
    pub listen: SocketAddr,
    /// File holding the HMAC secret shared with the Worker (>= 32 bytes).
    /// Default: $CREDENTIALS_DIRECTORY/folio-pty-secret (systemd LoadCredential).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// INSECURE: run demos WITHOUT the sandbox, as this user, with rlimits only. For
    /// development on loopback: refuses other listen addresses and any request that came
    /// through a Cloudflare tunnel, and warns on every session. Never in production.
    #[arg(long)]
    pub insecure_no_sandbox: bool,
    /// The directory in which this origin creates its own fresh runtime directory (built
    /// demos). Default: $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=); otherwise, for an
    /// unprivileged user, a new private directory in the temp dir. Required when run as root.
    #[arg(long)]
    pub runtime_dir: Option<PathBuf>,
    /// When run as root: sessions run as host uids from this one up (one per session).
    #[arg(long, default_value_t = 200_000)]
    pub sandbox_uid_base: u32,
    /// Do not use cgroups even where writable: rlimits only (to exercise that fallback).
    #[arg(long)]
    pub no_cgroups: bool,
    /// Seconds to wait for sessions to end on SIGTERM.
    #[arg(long, default_value_t = 5)]
    pub shutdown_grace: u64,
    /// Where the nonces of used tokens are kept, so a restart does not make them usable
    /// again. Default: $STATE_DIRECTORY (systemd StateDirectory=), else
    /// $XDG_STATE_HOME/folio-pty or ~/.local/state/folio-pty.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Seconds a session whose connection dropped is kept for the visitor's page to resume
    /// it (0: not resumable; at most 600). Default: `[terminal] resume_grace` (60).
    #[arg(long)]
    pub resume_grace: Option<u64>,
}

/// The state directory when `--state-dir` is not given: systemd's `$STATE_DIRECTORY` (its
/// first entry), else the XDG state directory of the user.
pub fn default_state_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dirs) = var("STATE_DIRECTORY") {
        return std::env::split_paths(&dirs).next();
    }
    var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .map(|d| d.join("folio-pty"))
}

/// A private directory this process created in the temp dir (random name, mode 0700) and
/// removes when dropped: where an unprivileged origin without a runtime directory of its own
/// keeps its runtime directory, so no name in the shared temp dir is predictable.
#[derive(Debug)]
pub struct TempRuntimeBase(PathBuf);

impl TempRuntimeBase {
    /// Creates `<temp dir>/<prefix>-<random>` (exclusively, mode 0700).
    pub fn create(prefix: &str) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        let tmp = std::env::temp_dir();
        for _ in 0..8 {
            let name: String = random::<8>().iter().map(|b| format!("{b:02x}")).collect();
            let dir = tmp.join(format!("{prefix}-{name}"));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(TempRuntimeBase(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("creating {}", dir.display()));
                }
            }
        }
        bail!("could not create a fresh directory in {}", tmp.display())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempRuntimeBase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where `serve` creates its runtime directory: `--runtime-dir`, else `$RUNTIME_DIRECTORY`;
/// otherwise an error for root (a predictable name in a world-writable temp dir is how a local
/// user plants symlinks for root to write through), and a fresh private directory in the temp
/// dir for anyone else (returned too, to be removed at exit).
pub fn runtime_base(
    explicit: Option<PathBuf>,
) -> anyhow::Result<(PathBuf, Option<TempRuntimeBase>)> {
    if let Some(dir) = explicit.or_else(|| std::env::var_os("RUNTIME_DIRECTORY").map(PathBuf::from))
    {
        return Ok((dir, None));
    }
    if unsafe { libc::geteuid() } == 0 {
        bail!(
            "running as root needs an explicit runtime directory: pass --runtime-dir DIR (a directory only root can write to and others can search, e.g. /run/folio-pty of mode 0755), or run under systemd with RuntimeDirectory= (deploy/systemd/folio-pty.service)"
        );
    }
    let base = TempRuntimeBase::create("folio-pty")?;
    Ok((base.path().to_owned(), Some(base)))
}

/// Resolves `serve`'s options: the secret file defaults to systemd's credential
/// (`$CREDENTIALS_DIRECTORY/folio-pty-secret`), the runtime directory as [`runtime_base`]
/// says (keep the returned guard until the server has stopped).
pub fn serve_options(args: ServeArgs) -> anyhow::Result<(ServeOptions, Option<TempRuntimeBase>)> {
    if args.insecure_no_sandbox && !args.listen.ip().is_loopback() {
        bail!(
            "--insecure-no-sandbox is for loopback development only; refusing to listen on {}",
            args.listen
        );
    }
    let secret_file = args
        .secret_file
        .or_else(|| {
            std::env::var_os("CREDENTIALS_DIRECTORY")
                .map(|d| PathBuf::from(d).join("folio-pty-secret"))
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--secret-file is required (or run under systemd with LoadCredential=folio-pty-secret:...)"
            )
        })?;
    let secret = read_secret(&secret_file)?;
    let (runtime_base, guard) = runtime_base(args.runtime_dir)?;
    Ok((
        ServeOptions {
            site: args.site,
            listen: args.listen,
            secret,
            no_sandbox: args.insecure_no_sandbox,
            runtime_base,
            uid_base: args.sandbox_uid_base,
            no_cgroups: args.no_cgroups,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            state_dir: args.state_dir.or_else(default_state_dir),
            resume_grace: args.resume_grace.map(Duration::from_secs),
        },
        guard,
    ))
}

/// Mints a token for `demo` valid `ttl` seconds, as the Worker would (for local use,
/// tests and debugging a deployment with `websocat`).
pub fn token(demo: &str, secret_file: &Path, ttl: u64) -> anyhow::Result<String> {
    if !is_valid_demo_id(demo) {
        bail!("{demo:?} is not a valid demo id (a page slug: a-z, 0-9, '-', '_')");
    }
    if ttl == 0 || ttl > MAX_TOKEN_TTL_SECS {
        bail!("--ttl must be between 1 and {MAX_TOKEN_TTL_SECS} seconds");
    }
    let secret = read_secret(secret_file)?;
    Ok(terminal_protocol::mint(
        &secret,
        demo,
        now_unix() + ttl,
        random(),
        // A client of its own (the Worker signs in the visitor's address key).
        &random(),
    ))
}

/// Validates a site's demos: they load, their folders exist, and their build steps succeed
/// in the sandbox (`insecure_no_sandbox`: unconfined, for development). Prints one line per
/// demo; fails if any demo fails. Builds in a fresh runtime directory under `runtime_dir`,
/// `$RUNTIME_DIRECTORY`, or a fresh private directory in the temp dir (a short-lived,
/// unpredictable name, so root may use it too).
pub async fn check(
    site_root: &Path,
    insecure_no_sandbox: bool,
    runtime_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let site = folio_content::demo::load(site_root)
        .map_err(|d| anyhow::anyhow!("{d}"))
        .with_context(|| format!("loading demos of {}", site_root.display()))?;
    if site.demos.is_empty() {
        println!("no demos declared in {}", site_root.display());
        return Ok(());
    }
    let bwrap = if insecure_no_sandbox {
        None
    } else {
        Some(find_bwrap()?)
    };
    let (sandbox, runtime, temp) =
        one_shot_sandbox(bwrap, runtime_dir, "folio-pty-check", &site.terminal)?;
    let mut failed = 0;
    for spec in &site.demos {
        if !spec.workdir.is_dir() {
            println!(
                "FAIL {}: workdir {} does not exist",
                spec.id,
                spec.workdir.display()
            );
            failed += 1;
            continue;
        }
        match crate::prepare::prepare(&sandbox, spec).await {
            Ok(_) => println!(
                "ok   {}: {} (command {:?}{})",
                spec.id,
                spec.page.display(),
                spec.command,
                spec.build
                    .as_deref()
                    .map(|b| format!(", build `{b}`"))
                    .unwrap_or_default()
            ),
            Err(e) => {
                println!("FAIL {e}");
                failed += 1;
            }
        }
    }
    crate::limits::cleanup(&sandbox.cgroups);
    let _ = std::fs::remove_dir_all(&runtime);
    drop(temp);
    if failed > 0 {
        bail!("{failed} of {} demos failed", site.demos.len());
    }
    Ok(())
}

/// A sandbox for one command run (`check`, `record`): its runtime directory goes under
/// `runtime_dir` (or `$RUNTIME_DIRECTORY`, else a fresh private temp directory, returned so
/// the caller removes it after the run).
pub(crate) fn one_shot_sandbox(
    bwrap: Option<PathBuf>,
    runtime_dir: Option<PathBuf>,
    prefix: &str,
    terminal: &folio_content::demo::TerminalConfig,
) -> anyhow::Result<(Sandbox, PathBuf, Option<TempRuntimeBase>)> {
    let explicit = runtime_dir.or_else(|| std::env::var_os("RUNTIME_DIRECTORY").map(PathBuf::from));
    // Root's per-session uids must reach into the base: 0755 (the runtime inside is private).
    let temp = match explicit {
        Some(_) => None,
        None => {
            let t = TempRuntimeBase::create(prefix)?;
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755))?;
            Some(t)
        }
    };
    let base = explicit.unwrap_or_else(|| temp.as_ref().expect("set").path().to_owned());
    let runtime = base.join(format!("{prefix}-{}", std::process::id()));
    let sandbox = Sandbox::new(
        bwrap,
        runtime.clone(),
        Limits::from(terminal),
        1,
        200_000,
        true,
    )
    .context("setting up the sandbox")?;
    Ok((sandbox, runtime, temp))
}
