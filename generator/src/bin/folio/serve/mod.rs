//! `folio serve`: the site built in memory, served on 127.0.0.1, rebuilt when its sources
//! change, with open tabs reloaded and the dynamic parts (`/api/*`, `/terminal/*`)
//! answered locally with the Worker's own rules.
//!
//! One module per concern:
//! * [`http`]: static files with the production security headers, 404 page, the reload
//!   script injected into HTML at serve time (never into the built files);
//! * [`watch`]: the file watcher, debounced, driving [`folio::live::LiveSite`];
//! * [`reload`]: the WebSocket that tells tabs to reload or show the error overlay, and
//!   the script (`reload.js`) doing it in the browser;
//! * [`api`]: `/api/*` wired like the Worker's glue, over [`views`] (the embedded counter
//!   store under `.folio/state`);
//! * [`relay`]: `/terminal/<demo>` relayed to a local `folio-pty`.

mod api;
mod contact;
mod http;
mod relay;
mod reload;
mod request;
mod views;
mod watch;

pub(crate) use relay::find_folio_pty;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use folio_edge::config::{EdgeManifest, Settings, MANIFEST_FILE};

use crate::ui::Output;
use folio::live::LiveSite;
use folio::site::BuildOptions;

/// What `folio serve` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    /// The site folder (holds `folio.toml`).
    pub root: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Open the site in a browser once it is up.
    pub open: bool,
    /// Publish drafts.
    pub drafts: bool,
    /// Start a local `folio-pty` for `/terminal/<demo>`.
    pub terminal: bool,
    /// A terminal origin that is already running (`http://127.0.0.1:7681`).
    pub terminal_origin: Option<String>,
    /// The secret shared with `terminal_origin` (its `--secret-file`).
    pub terminal_secret_file: Option<PathBuf>,
}

/// Why `folio serve` could not start. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// The port is taken by another program (or another `folio serve`).
    #[error("port {port} on 127.0.0.1 is already in use; stop the program using it, or pick another port: `folio serve --port {alt}` (or `--port 0` for any free port)", alt = port.wrapping_add(1).max(1024))]
    PortInUse {
        /// The port asked for.
        port: u16,
    },
    /// Binding failed for another reason (permissions on ports below 1024, …).
    #[error("cannot listen on 127.0.0.1:{port}: {source}; try `--port 0` for any free port")]
    Bind {
        /// The port asked for.
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// The site folder cannot be read.
    #[error("cannot read the site folder {path}: {source}")]
    Unreadable {
        /// The folder or file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// No `folio.toml` in the site folder.
    #[error("{0} has no folio.toml: run `folio serve --root DIR` with the site's folder, or `folio new DIR` to start one")]
    NotASite(PathBuf),
    /// inotify ran out of watches (ENOSPC) or instances.
    #[error("the file watcher hit the system's inotify limit ({what}); raise it with `sudo sysctl fs.inotify.max_user_watches=524288` (and max_user_instances=512), or persist it in /etc/sysctl.d/, then run folio serve again")]
    WatchLimit {
        /// Which limit.
        what: &'static str,
    },
    /// Any other watcher failure.
    #[error("cannot watch {path}: {message}")]
    Watch {
        /// What could not be watched.
        path: PathBuf,
        /// notify's error.
        message: String,
    },
    /// The state folder (`.folio/state`) could not be set up.
    #[error("cannot set up the local state in {path}: {message}")]
    State {
        /// The folder or file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The terminal origin could not be started or configured.
    #[error("terminal: {0}")]
    Terminal(String),
    /// The async runtime or the server failed.
    #[error("server: {0}")]
    Server(String),
}

/// The last good build, as served: files plus what the edge needs from them.
pub(crate) struct Snapshot {
    /// Output path → bytes, exactly [`LiveSite::files`].
    pub files: BTreeMap<String, Arc<[u8]>>,
    /// The parsed `_folio/edge.json` of this build (the security headers, pages, demos).
    pub manifest: Option<Arc<EdgeManifest>>,
}

impl Snapshot {
    /// The snapshot of `files`, with the manifest of `prev` when it is made of the same bytes
    /// (most edits leave it as it was; parsing it again would be on every edit's way).
    fn of_files(files: BTreeMap<String, Arc<[u8]>>, prev: Option<&Snapshot>) -> Snapshot {
        let bytes = files.get(MANIFEST_FILE);
        if let Some(prev) = prev {
            if prev.files.get(MANIFEST_FILE) == bytes {
                let manifest = prev.manifest.clone();
                return Snapshot { files, manifest };
            }
        }
        let manifest = bytes
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| match EdgeManifest::parse(s) {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    eprintln!("warning: {e}");
                    None
                }
            });
        Snapshot { files, manifest }
    }
}

/// What every request handler shares.
pub(crate) struct Shared {
    /// The last good build (`None` until the first build succeeds).
    pub snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// The tabs' WebSocket hub.
    pub hub: Arc<reload::Hub>,
    /// The counter store.
    pub views: views::Store,
    /// The terminal origin, when one is configured.
    pub terminal: Option<relay::TerminalOrigin>,
    /// The Worker's settings (defaults: there is no `wrangler.toml [vars]` here).
    pub settings: Settings,
    /// Open terminal sessions: lease id → client address key, hex (the session caps).
    pub leases: Mutex<BTreeMap<String, String>>,
    /// Sessions started in the last minute (the start cap), as the Worker's limiter keeps them.
    pub starts: Mutex<folio_edge::limits::StartLog>,
    /// The port the server listens on (which `Host` headers may name).
    pub port: u16,
    /// The contact form's token secret, limits and `.folio/outbox`.
    pub contact: contact::Local,
    /// The last terminal status answer and when it was probed (reused for 30 s, as the
    /// Worker's cache does).
    pub terminal_status: Mutex<
        Option<(
            std::time::Instant,
            folio_edge::terminal_status::TerminalStatus,
        )>,
    >,
}

impl Shared {
    /// The current snapshot.
    pub(crate) fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.read().expect("snapshot lock").clone()
    }

    fn publish(&self, site: &LiveSite) {
        self.publish_files(site.files().clone());
    }

    /// Serves `files` (a site whose pages are ready while its build goes on).
    fn publish_files(&self, files: BTreeMap<String, Arc<[u8]>>) {
        let next = Snapshot::of_files(files, self.snapshot().as_deref());
        *self.snapshot.write().expect("snapshot lock") = Some(Arc::new(next));
    }
}

/// The URL a server on `addr` is reached at.
fn local_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

fn check_root(root: &Path) -> Result<(), ServeError> {
    std::fs::read_dir(root).map_err(|source| ServeError::Unreadable {
        path: root.to_path_buf(),
        source,
    })?;
    let config = root.join("folio.toml");
    match std::fs::File::open(&config) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ServeError::NotASite(root.to_path_buf()))
        }
        Err(source) => Err(ServeError::Unreadable {
            path: config,
            source,
        }),
    }
}

fn bind(port: u16) -> Result<TcpListener, ServeError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ServeError::PortInUse { port }
        } else {
            ServeError::Bind { port, source }
        }
    })
}

/// The state folder: `<root>/.folio/state`.
pub(crate) fn state_dir(root: &Path) -> PathBuf {
    root.join(".folio/state")
}

/// Runs `folio serve` until Ctrl-C. Startup failures are returned; build failures are not
/// (they are shown in the terminal and the browser while the server keeps running).
pub(crate) fn run(mut opts: ServeOptions, out: Output) -> Result<(), ServeError> {
    check_root(&opts.root)?;
    // Absolute, so the watcher's event paths (always absolute) compare with it.
    opts.root = opts
        .root
        .canonicalize()
        .map_err(|source| ServeError::Unreadable {
            path: opts.root.clone(),
            source,
        })?;
    let listener = bind(opts.port)?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Server(e.to_string()))?;
    let url = local_url(addr);
    let state = state_dir(&opts.root);
    std::fs::create_dir_all(&state).map_err(|e| ServeError::State {
        path: state.clone(),
        message: e.to_string(),
    })?;
    let views = views::Store::open(&state)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServeError::Server(e.to_string()))?;

    // The terminal origin is spawned from this thread, which lives as long as the server
    // (its parent-death signal is tied to the spawning thread).
    let terminal = if opts.terminal {
        Some(relay::TerminalOrigin::start_local(&opts.root, &state)?)
    } else if let Some(origin) = &opts.terminal_origin {
        let file = opts.terminal_secret_file.as_deref().ok_or_else(|| {
            ServeError::Terminal(
                "--terminal-origin needs --terminal-secret-file (the secret that origin was started with)"
                    .into(),
            )
        })?;
        Some(relay::TerminalOrigin::remote(origin, file)?)
    } else {
        None
    };

    let shared = Arc::new(Shared {
        snapshot: RwLock::new(None),
        hub: Arc::new(reload::Hub::new()),
        views,
        terminal,
        settings: Settings::default(),
        leases: Mutex::new(BTreeMap::new()),
        starts: Mutex::new(folio_edge::limits::StartLog::default()),
        terminal_status: Mutex::new(None),
        port: addr.port(),
        contact: contact::Local::new(&opts.root),
    });

    let build = BuildOptions {
        drafts: opts.drafts,
        base_url: Some(url.clone()),
        progress: None,
        ..BuildOptions::new(&opts.root)
    };
    let site = LiveSite::new(build);
    // Watch before the first build, so an edit made during it is not missed.
    watch::start(site, shared.clone(), out.clone())?;

    if !out.is_quiet() {
        println!("Serving {url}/ (Ctrl-C to stop)");
    }
    if opts.open {
        open_browser(&format!("{url}/"));
    }

    let result = runtime.block_on(async {
        let listener = {
            listener
                .set_nonblocking(true)
                .map_err(|e| ServeError::Server(e.to_string()))?;
            tokio::net::TcpListener::from_std(listener)
                .map_err(|e| ServeError::Server(e.to_string()))?
        };
        let app = http::router(shared.clone()).into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| ServeError::Server(e.to_string()))
    });
    if let Some(t) = &shared.terminal {
        t.stop();
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// Opens `url` with `xdg-open` when there is one; otherwise says where to go.
fn open_browser(url: &str) {
    let opener = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("xdg-open"))
            .find(|f| f.is_file())
    });
    let started = opener.is_some_and(|o| {
        std::process::Command::new(o)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    });
    if !started {
        println!("Open {url} in your browser (no xdg-open found).");
    }
}
