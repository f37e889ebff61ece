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
    /// Run demos WITHOUT the sandbox. Loopback development only; warns on every session.
    #[arg(long)]
    pub no_sandbox: bool,
    /// Where to create the runtime directory (built demos).
    /// Default: $RUNTIME_DIRECTORY or the temp dir.
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

/// Resolves `serve`'s options: the secret file defaults to systemd's credential
/// (`$CREDENTIALS_DIRECTORY/folio-pty-secret`), the runtime directory to
/// `$RUNTIME_DIRECTORY` or the temp dir.
pub fn serve_options(args: ServeArgs) -> anyhow::Result<ServeOptions> {
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
    let runtime_base = args
        .runtime_dir
        .or_else(|| std::env::var_os("RUNTIME_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    Ok(ServeOptions {
        site: args.site,
        listen: args.listen,
        secret,
        no_sandbox: args.no_sandbox,
        runtime_base,
        uid_base: args.sandbox_uid_base,
        no_cgroups: args.no_cgroups,
        shutdown_grace: Duration::from_secs(args.shutdown_grace),
        state_dir: args.state_dir.or_else(default_state_dir),
    })
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
    ))
}

/// Validates a site's demos: they load, their folders exist, and their build steps succeed
/// in the sandbox. Prints one line per demo; fails if any demo fails.
pub async fn check(site_root: &Path, no_sandbox: bool) -> anyhow::Result<()> {
    let site = folio_content::demo::load(site_root)
        .map_err(|d| anyhow::anyhow!("{d}"))
        .with_context(|| format!("loading demos of {}", site_root.display()))?;
    if site.demos.is_empty() {
        println!("no demos declared in {}", site_root.display());
        return Ok(());
    }
    let bwrap = if no_sandbox {
        None
    } else {
        Some(find_bwrap()?)
    };
    let runtime = std::env::temp_dir().join(format!("folio-pty-check-{}", std::process::id()));
    let sandbox = Sandbox::new(
        bwrap,
        runtime.clone(),
        Limits::from(&site.terminal),
        1,
        200_000,
        true,
    )
    .context("setting up the sandbox")?;
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
    if failed > 0 {
        bail!("{failed} of {} demos failed", site.demos.len());
    }
    Ok(())
}
