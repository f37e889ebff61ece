//! The security boundary: every session (and every build step) runs under bubblewrap.
//!
//! What a sandboxed process gets:
//! - new user, pid, network, ipc, uts and cgroup namespaces (`--unshare-all` with
//!   `--unshare-user` required): no network interface but a down loopback, no view of host
//!   processes; when the session's init dies the kernel kills everything in its pid
//!   namespace, so nothing outlives the session (`nohup`, `setsid`, double forks);
//! - uid/gid 1000 (`demo`) inside, no capabilities (`--cap-drop ALL`), `no_new_privs`;
//!   outside, an unprivileged host uid (the origin's own, or one per session from a pool
//!   when the origin runs as root);
//! - read-only `/usr` (and the `/bin`, `/lib*` links), a handful of read-only `/etc` files
//!   (not `/etc` itself: no shadow, no host secrets), a fresh `/proc`, bubblewrap's minimal
//!   `/dev`, a read-only root;
//! - writable only: `/home/demo` and `/tmp`, each a tmpfs with a size cap, the former
//!   filled with a private copy of the demo's built folder;
//! - `--new-session` (no TIOCSTI into any terminal but its own), `--die-with-parent`;
//! - no nested user namespaces (`--disable-userns`) and the seccomp filters of
//!   [`crate::seccomp`] (no new user namespaces, keyrings, bpf, userfaultfd, io_uring, perf,
//!   kexec, mounts, ptrace, TIOCSTI/TIOCLINUX), installed by bubblewrap before the sandbox's
//!   init starts;
//! - the limits of [`crate::limits`], including a CPU share per session.
//!
//! The runtime directory (init binary copy, generated `/etc` files, built demos) is created
//! fresh for each start and never reused: mode 0700, or, when the origin is root, 0750 with
//! the sandbox group (the one group every session's bubblewrap runs with, so it can reach the
//! binds while no other user can).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use crate::limits::{self, CgroupMode, Limits, SessionCgroup};

/// Home of the demo user inside the sandbox; the session's private copy lives here.
pub const HOME: &str = "/home/demo";
const MIB: u64 = 1024 * 1024;
/// Where the origin's own binary is mounted inside the sandbox, to act as its init.
const INIT_PATH: &str = "/opt/folio/init";
/// Where the demo's prepared (built) folder is mounted read-only inside the sandbox.
const SRC_PATH: &str = "/opt/folio/src";
/// The demo user's uid and gid inside the sandbox: not root, not the host's.
pub const SANDBOX_UID: u32 = 1000;
/// Environment of every sandboxed process (nothing is inherited from the origin).
const ENV: &[(&str, &str)] = &[
    ("HOME", HOME),
    ("USER", "demo"),
    ("LOGNAME", "demo"),
    ("SHELL", "/bin/bash"),
    ("TERM", "xterm-256color"),
    ("LANG", "C.UTF-8"),
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
];
/// Host `/etc` entries a shell and a compiler need; everything else in `/etc` stays hidden.
/// Not `profile.d`: it is where hosts drop proxy settings (with credentials) and other local
/// configuration, and no demo needs it (`/etc/profile` skips it when it is absent).
const ETC_ALLOW: &[&str] = &[
    "alternatives",
    "bash.bashrc",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "nsswitch.conf",
    "profile",
    "terminfo",
    "debian_version",
    "os-release",
    "protocols",
    "services",
    "mime.types",
];

/// Headers that Cloudflare puts on every request it forwards (through a tunnel to this
/// origin, or from a Worker): such a request came from the internet.
const TUNNEL_HEADERS: &[&str] = &[
    "cf-connecting-ip",
    "cf-ray",
    "cf-visitor",
    "cf-ipcountry",
    "cf-warp-tag-id",
    "cf-worker",
];

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// bubblewrap is not installed. (The message deliberately offers no way to run without
    /// it: that switch exists for loopback development and is documented there, not here.)
    #[error(
        "bubblewrap (bwrap) was not found in PATH; it is the security boundary of every session.\n\
         Install it: `apt-get install bubblewrap` (Debian/Ubuntu), `dnf install bubblewrap` (Fedora)."
    )]
    Missing,
    /// bubblewrap is installed but cannot create namespaces here.
    #[error("bubblewrap cannot create a sandbox here ({0}); user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces)")]
    Unusable(String),
    /// bubblewrap cannot load seccomp filters from descriptors.
    #[error("this bubblewrap is too old: it has no --add-seccomp-fd (bubblewrap 0.5 or later is needed; 0.8 or later also disables nested user namespaces)")]
    TooOld,
    /// The runtime directory already exists.
    #[error("the runtime directory {0} already exists: refusing to reuse it (a crashed origin's leftover, or someone's plant); remove it or choose another --runtime-dir")]
    RuntimeExists(PathBuf),
    /// The runtime directory's parent is not safe to create it in.
    #[error("{0}")]
    UnsafeParent(String),
    /// The seccomp filter could not be built.
    #[error(transparent)]
    Filter(#[from] crate::seccomp::FilterError),
    /// Filesystem or process error while preparing.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// How sessions are confined.
pub struct Sandbox {
    /// Path of `bwrap`; `None` only with `--insecure-no-sandbox`.
    bwrap: Option<PathBuf>,
    /// The origin's runtime directory (init binary copy, generated /etc files, demos).
    runtime: PathBuf,
    /// cgroup mechanism in use.
    pub cgroups: CgroupMode,
    /// Per-session limits.
    pub limits: Limits,
    /// When the origin runs as root: first host uid of the per-session pool.
    uid_base: Option<u32>,
    slots: Arc<Mutex<Vec<bool>>>,
    /// The seccomp programs (`struct sock_filter` arrays) every sandbox gets.
    seccomp: Vec<Vec<u8>>,
    /// Whether this bubblewrap has `--disable-userns` (0.8+); the seccomp filter refuses new
    /// user namespaces either way.
    disable_userns: bool,
    /// Unsandboxed only: refuse requests that came through a Cloudflare tunnel.
    refuse_tunnel: bool,
}

/// Finds `bwrap` in `PATH`.
pub fn find_bwrap() -> Result<PathBuf, SandboxError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
        .ok_or(SandboxError::Missing)
}

/// A running sandboxed process and what must be released when it ends.
pub struct Spawned {
    /// The `bwrap` (or, unsandboxed, the demo) process.
    pub child: tokio::process::Child,
    /// The session's cgroup, if cgroups are available; dropping it kills leftovers.
    pub cgroup: Option<SessionCgroup>,
    _slot: Option<SlotGuard>,
}

struct SlotGuard {
    slots: Arc<Mutex<Vec<bool>>>,
    index: usize,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())[self.index] = false;
    }
}

impl Sandbox {
    /// Creates the runtime directory `runtime` (fresh: one that exists is refused) and checks
    /// that bubblewrap works (unless `bwrap` is `None`, i.e. `--insecure-no-sandbox`). `pool`
    /// is how many sessions may run at once; `use_cgroups = false` forces the rlimits-only
    /// fallback (to test it).
    pub fn new(
        bwrap: Option<PathBuf>,
        runtime: PathBuf,
        limits: Limits,
        pool: usize,
        uid_base: u32,
        use_cgroups: bool,
    ) -> Result<Self, SandboxError> {
        let root = unsafe { libc::geteuid() } == 0;
        let pool_u32 = u32::try_from(pool).unwrap_or(u32::MAX);
        if root && (uid_base < 1000 || uid_base.checked_add(pool_u32.saturating_add(3)).is_none()) {
            return Err(SandboxError::UnsafeParent(format!(
                "--sandbox-uid-base {uid_base}: the per-session uids must be unused ones, from 1000 up"
            )));
        }
        // When root: the sandbox group, right after the build uid (see `sandbox_gid`).
        let group = root.then(|| uid_base + pool_u32 + 2);
        create_runtime_dir(&runtime, group)?;
        let exe = std::env::current_exe()?;
        let init = runtime.join("init");
        let _ = fs::remove_file(&init);
        fs::copy(&exe, &init)?;
        fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;
        let etc = runtime.join("etc");
        fs::create_dir_all(&etc)?;
        fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/usr/sbin/nologin\ndemo:x:1000:1000:folio demo:/home/demo:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        )?;
        fs::write(
            etc.join("group"),
            "root:x:0:\ndemo:x:1000:\nnogroup:x:65534:\n",
        )?;
        fs::write(etc.join("hostname"), "folio\n")?;
        fs::write(etc.join("hosts"), "127.0.0.1 localhost folio\n")?;
        let (seccomp, disable_userns) = match &bwrap {
            Some(b) => {
                let help = std::process::Command::new(b)
                    .arg("--help")
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| SandboxError::Unusable(e.to_string()))?;
                let help = String::from_utf8_lossy(&help.stdout);
                if !help.contains("--add-seccomp-fd") {
                    return Err(SandboxError::TooOld);
                }
                (
                    crate::seccomp::programs()?,
                    help.contains("--disable-userns"),
                )
            }
            None => (vec![], false),
        };
        let refuse_tunnel = bwrap.is_none();
        let sb = Sandbox {
            bwrap,
            runtime,
            cgroups: if use_cgroups {
                CgroupMode::detect()
            } else {
                CgroupMode::Unavailable("disabled with --no-cgroups".into())
            },
            limits,
            uid_base: root.then_some(uid_base),
            slots: Arc::new(Mutex::new(vec![false; pool + 1])),
            seccomp,
            disable_userns,
            refuse_tunnel,
        };
        if sb.bwrap.is_some() {
            sb.smoke_test()?;
            crate::info!("sandbox", None, {
                "seccomp": true, "disable_userns": sb.disable_userns,
                "cpu": sb.cgroups.cpu_name(),
                "per_session_uids": sb.uid_base.is_some(),
            });
            if !sb.disable_userns {
                crate::warn!("no_disable_userns", None, {"message": "this bubblewrap has no --disable-userns (0.8+); nested user namespaces are refused by the seccomp filter alone"});
            }
        }
        Ok(sb)
    }

    /// Whether sessions are confined (false only with `--insecure-no-sandbox`).
    pub fn is_enabled(&self) -> bool {
        self.bwrap.is_some()
    }

    /// Why a request must be refused before anything starts, if it must: an unsandboxed
    /// origin (`--insecure-no-sandbox`, loopback development) refuses every request that
    /// carries Cloudflare's headers (`Cf-Connecting-Ip`, `Cf-Ray`, … or `Cdn-Loop:
    /// cloudflare`), i.e. that came from the internet through a tunnel or a Worker: a
    /// development origin reachable through a tunnel would hand visitors an unconfined shell.
    /// A sandboxed origin refuses nothing here.
    pub fn refuse_tunnel_request(&self, headers: &axum::http::HeaderMap) -> Option<&'static str> {
        tunnel_refusal(self.refuse_tunnel, headers)
    }

    /// The origin's runtime directory.
    pub fn runtime(&self) -> &Path {
        &self.runtime
    }

    /// The host uid the build step runs as (when the origin is root), so its output
    /// directory can be handed to it.
    pub fn build_uid(&self) -> Option<u32> {
        self.uid_base
            .map(|b| b + self.slots.lock().unwrap_or_else(|e| e.into_inner()).len() as u32)
    }

    /// The host gid every sandbox's bubblewrap runs with when the origin is root: the only
    /// group (besides root) that can reach into the runtime directory.
    fn sandbox_gid(&self) -> Option<u32> {
        self.build_uid().map(|b| b + 1)
    }

    /// One fresh descriptor per seccomp program, and bubblewrap's arguments naming them.
    fn seccomp_fds(&self) -> io::Result<(Vec<OwnedFd>, Vec<OsString>)> {
        let mut fds = vec![];
        let mut args = vec![];
        for prog in &self.seccomp {
            let fd = crate::seccomp::memfd(prog)?;
            args.push("--add-seccomp-fd".into());
            args.push(fd.as_raw_fd().to_string().into());
            fds.push(fd);
        }
        Ok((fds, args))
    }

    fn smoke_test(&self) -> Result<(), SandboxError> {
        let (fds, seccomp) = self.seccomp_fds()?;
        let keep: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let mut cmd = std::process::Command::new(self.bwrap.as_ref().expect("checked"));
        cmd.args(self.base_args(None))
            .args(seccomp)
            .args(["--dir", HOME, "--chdir", HOME, "--", "/bin/true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let (Some(uid), Some(gid)) = (self.build_uid(), self.sandbox_gid()) {
            cmd.uid(uid).gid(gid);
        }
        unsafe {
            cmd.pre_exec(move || {
                close_inherited_fds();
                keep_fds(&keep)
            });
        }
        let out = cmd
            .output()
            .map_err(|e| SandboxError::Unusable(e.to_string()))?;
        drop(fds);
        if !out.status.success() {
            return Err(SandboxError::Unusable(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        Ok(())
    }

    /// bubblewrap arguments shared by sessions and builds.
    fn base_args(&self, tmp_size: Option<u64>) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push =
            |xs: &[&dyn AsRef<OsStr>]| a.extend(xs.iter().map(|x| x.as_ref().to_owned()));
        push(&[&"--unshare-all", &"--unshare-user", &"--unshare-cgroup"]);
        if self.disable_userns {
            // No user namespaces inside (user.max_user_namespaces = 0 there); the seccomp
            // filter refuses them too, this is the second lock.
            push(&[&"--disable-userns"]);
        }
        push(&[
            &"--die-with-parent",
            &"--new-session",
            &"--cap-drop",
            &"ALL",
        ]);
        push(&[
            &"--uid",
            &"1000",
            &"--gid",
            &"1000",
            &"--hostname",
            &"folio",
        ]);
        push(&[&"--clearenv"]);
        for (k, v) in ENV {
            push(&[&"--setenv", k, v]);
        }
        push(&[&"--ro-bind", &"/usr", &"/usr"]);
        for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let host = Path::new("/").join(top);
            match fs::read_link(&host) {
                Ok(target) => push(&[&"--symlink", &target, &host]),
                Err(_) if host.is_dir() => push(&[&"--ro-bind", &host, &host]),
                Err(_) => {}
            }
        }
        // bubblewrap's /dev is a tmpfs: make it read-only (the device nodes stay usable)
        // and give /dev/shm its own size-capped tmpfs.
        push(&[
            &"--proc",
            &"/proc",
            &"--dev",
            &"/dev",
            &"--remount-ro",
            &"/dev",
        ]);
        push(&[
            &"--size",
            &tmp_size.unwrap_or(MIB).to_string(),
            &"--tmpfs",
            &"/dev/shm",
        ]);
        let etc = self.runtime.join("etc");
        for f in ["passwd", "group", "hostname", "hosts"] {
            push(&[&"--ro-bind", &etc.join(f), &Path::new("/etc").join(f)]);
        }
        for f in ETC_ALLOW {
            let host = Path::new("/etc").join(f);
            if host.exists() {
                push(&[&"--ro-bind", &host, &host]);
            }
        }
        push(&[&"--ro-bind", &self.runtime.join("init"), &INIT_PATH]);
        if let Some(size) = tmp_size {
            push(&[&"--size", &size.to_string(), &"--tmpfs", &"/tmp"]);
        }
        a
    }

    fn init_args(&self, copy_from_src: bool, tty: bool) -> Vec<OsString> {
        let l = &self.limits;
        let mut a: Vec<OsString> = vec![INIT_PATH.into(), "sandbox-init".into()];
        let mut kv = |k: &str, v: u64| {
            a.push(k.into());
            a.push(v.to_string().into());
        };
        // With a pids cgroup, RLIMIT_NPROC is a backstop set just above pids.max, so that
        // a fork bomb trips the cgroup (which the session notices and ends) first.
        let nproc = if self.cgroups.name() == "rlimits-only" {
            l.max_processes
        } else {
            l.max_processes + limits::SANDBOX_OVERHEAD_PROCS + 4
        };
        kv("--nproc", nproc);
        kv("--cpu", l.cpu_seconds);
        kv("--fsize", l.file_size_bytes);
        kv("--nofile", l.open_files);
        if !self.cgroups.caps_memory() {
            kv("--as", l.memory_bytes);
        }
        if copy_from_src {
            a.push("--copy-from".into());
            a.push(SRC_PATH.into());
        }
        if tty {
            a.push("--tty".into());
        }
        a.push("--".into());
        a
    }

    fn acquire_slot(&self) -> io::Result<Option<SlotGuard>> {
        if self.uid_base.is_none() {
            return Ok(None);
        }
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let n = slots.len() - 1; // the last uid is the build's
        let index = (0..n)
            .find(|i| !slots[*i])
            .ok_or_else(|| io::Error::other("no free sandbox uid"))?;
        slots[index] = true;
        Ok(Some(SlotGuard {
            slots: self.slots.clone(),
            index,
        }))
    }

    /// Starts one session of the demo prepared in `prepared`, running `argv`, with the PTY
    /// slave as its terminal. `name` names its cgroup.
    pub fn spawn_session(
        &self,
        prepared: &Path,
        argv: &[String],
        slave: &OwnedFd,
        name: &str,
    ) -> io::Result<Spawned> {
        let cgroup = self.cgroups.create(name, &self.limits)?;
        let slot = self.acquire_slot()?;
        let (seccomp_fds, seccomp_args) = self.seccomp_fds()?;
        let keep: Vec<RawFd> = seccomp_fds.iter().map(|f| f.as_raw_fd()).collect();
        let mut cmd;
        match &self.bwrap {
            Some(bwrap) => {
                cmd = tokio::process::Command::new(bwrap);
                cmd.args(self.base_args(Some(self.limits.disk_bytes)));
                cmd.args(seccomp_args);
                cmd.args([
                    "--size",
                    &self.limits.disk_bytes.to_string(),
                    "--tmpfs",
                    HOME,
                ]);
                cmd.arg("--ro-bind").arg(prepared).arg(SRC_PATH);
                cmd.args(["--remount-ro", "/", "--chdir", HOME, "--"]);
                cmd.args(self.init_args(true, true));
                cmd.args(argv);
                if let (Some(base), Some(s), Some(gid)) = (self.uid_base, &slot, self.sandbox_gid())
                {
                    cmd.uid(base + s.index as u32).gid(gid);
                }
            }
            None => {
                cmd = tokio::process::Command::new(&argv[0]);
                cmd.args(&argv[1..]).current_dir(prepared);
                cmd.env("TERM", "xterm-256color");
            }
        }
        cmd.stdin(crate::pty::dup(slave)?)
            .stdout(crate::pty::dup(slave)?)
            .stderr(crate::pty::dup(slave)?)
            .kill_on_drop(true);
        let join = cgroup.as_ref().map(|c| c.join_fds()).transpose()?;
        let unsandboxed = self.bwrap.is_none();
        let limits = self.limits;
        let idle = !self.cgroups.caps_cpu();
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(j) = &join {
                    j.join_self()?;
                }
                if idle {
                    limits::lowest_cpu_priority()?;
                }
                close_inherited_fds();
                keep_fds(&keep)?;
                if unsandboxed {
                    // Dev mode: take the PTY as controlling terminal here (in the sandbox,
                    // the sandbox's init does it after bubblewrap's --new-session).
                    if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    limits::apply_rlimits(&limits, false)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(seccomp_fds);
        Ok(Spawned {
            child,
            cgroup,
            _slot: slot,
        })
    }

    /// Runs a demo's build step (`/bin/sh -c build`) in the sandbox, with `dir` mounted
    /// writable as the demo's home, and returns its combined output. Runs as the build uid
    /// (see [`Sandbox::build_uid`]) when the origin is root.
    pub async fn run_build(
        &self,
        dir: &Path,
        script: &str,
        timeout: std::time::Duration,
        name: &str,
    ) -> io::Result<(std::process::ExitStatus, String)> {
        let cgroup = self.cgroups.create(name, &self.limits)?;
        let (seccomp_fds, seccomp_args) = self.seccomp_fds()?;
        let keep: Vec<RawFd> = seccomp_fds.iter().map(|f| f.as_raw_fd()).collect();
        let mut cmd;
        match &self.bwrap {
            Some(bwrap) => {
                cmd = tokio::process::Command::new(bwrap);
                cmd.args(self.base_args(Some(self.limits.disk_bytes)));
                cmd.args(seccomp_args);
                cmd.arg("--bind").arg(dir).arg(HOME);
                cmd.args(["--remount-ro", "/", "--chdir", HOME, "--"]);
                cmd.args(self.init_args(false, false));
                cmd.args(["/bin/sh", "-c", script]);
                if let (Some(uid), Some(gid)) = (self.build_uid(), self.sandbox_gid()) {
                    cmd.uid(uid).gid(gid);
                }
            }
            None => {
                cmd = tokio::process::Command::new("/bin/sh");
                cmd.args(["-c", script]).current_dir(dir);
            }
        }
        let join = cgroup.as_ref().map(|c| c.join_fds()).transpose()?;
        let idle = !self.cgroups.caps_cpu();
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                if let Some(j) = &join {
                    j.join_self()?;
                }
                if idle {
                    limits::lowest_cpu_priority()?;
                }
                close_inherited_fds();
                keep_fds(&keep)
            });
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        drop(seccomp_fds);
        let out = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "build step timed out"))??;
        drop(cgroup);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok((out.status, text))
    }
}

/// Clears close-on-exec on `fds` (the seccomp programs bubblewrap reads, then closes), after
/// [`close_inherited_fds`] set it on everything. Async-signal-safe (raw syscalls only).
fn keep_fds(fds: &[RawFd]) -> io::Result<()> {
    for fd in fds {
        if unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// [`Sandbox::refuse_tunnel_request`], for an origin that is (`unsandboxed`) or is not.
fn tunnel_refusal(unsandboxed: bool, headers: &axum::http::HeaderMap) -> Option<&'static str> {
    (unsandboxed && came_through_cloudflare(headers)).then_some(
        "unsandboxed origin (--insecure-no-sandbox): requests through a Cloudflare tunnel are refused",
    )
}

/// Whether `headers` carry what Cloudflare adds to every request it forwards.
fn came_through_cloudflare(headers: &axum::http::HeaderMap) -> bool {
    TUNNEL_HEADERS.iter().any(|h| headers.contains_key(*h))
        || headers.get_all("cdn-loop").iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("cloudflare"))
        })
}

/// Creates the runtime directory: exclusively (one that exists, even as a symlink, is an
/// error: never reused), mode 0700, or 0750 to `group` (the sandbox group, when the origin is
/// root). Its parent must not let anyone else rename or replace it: owned by this user or
/// root, and writable by nobody else unless sticky (like /tmp).
fn create_runtime_dir(runtime: &Path, group: Option<u32>) -> Result<(), SandboxError> {
    let parent = runtime
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let meta = fs::metadata(parent).map_err(|e| {
        SandboxError::UnsafeParent(format!(
            "runtime directory's parent {}: {e}",
            parent.display()
        ))
    })?;
    let me = unsafe { libc::geteuid() };
    let open = meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0;
    if !meta.is_dir() || (meta.uid() != me && meta.uid() != 0) || open {
        return Err(SandboxError::UnsafeParent(format!(
            "refusing to create the runtime directory in {} (owner uid {}, mode {:o}): it must be a directory owned by this user or root, writable by no one else unless sticky",
            parent.display(),
            meta.uid(),
            meta.mode() & 0o7777
        )));
    }
    if group.is_some() {
        // Root: every session's bubblewrap runs as an unprivileged uid that must reach the
        // binds inside, through every directory above.
        for dir in parent.ancestors() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let mode = fs::metadata(dir).map(|m| m.mode()).unwrap_or(0);
            if mode & 0o001 == 0 {
                return Err(SandboxError::UnsafeParent(format!(
                    "{} (mode {:o}) is not searchable by other users, and as root each session's sandbox runs as one: put the runtime directory somewhere they can reach, e.g. a directory of mode 0755 that only root can write to (/run/folio-pty)",
                    dir.display(),
                    mode & 0o7777
                )));
            }
        }
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(runtime)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => SandboxError::RuntimeExists(runtime.to_owned()),
            _ => SandboxError::Io(e),
        })?;
    fs::set_permissions(runtime, fs::Permissions::from_mode(0o700))?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(runtime, Some(0), Some(gid))?;
        fs::set_permissions(runtime, fs::Permissions::from_mode(0o750))?;
    }
    Ok(())
}

/// Marks every descriptor above stderr close-on-exec, between fork and exec: whatever the
/// origin itself inherited without close-on-exec (from a shell, a supervisor, a test
/// harness) must not reach a sandbox. Async-signal-safe (raw syscalls only).
fn close_inherited_fds() {
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        for fd in 3..4096 {
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// Arguments of `folio-pty sandbox-init`, the first process inside every sandbox (the
/// origin's own binary, mounted read-only). Not for humans.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// RLIMIT_NPROC: counted per user namespace, so this caps the session's processes.
    #[arg(long)]
    nproc: u64,
    /// RLIMIT_CPU, seconds.
    #[arg(long)]
    cpu: u64,
    /// RLIMIT_FSIZE, bytes.
    #[arg(long)]
    fsize: u64,
    /// RLIMIT_NOFILE.
    #[arg(long)]
    nofile: u64,
    /// RLIMIT_AS, bytes (only when no memory cgroup caps the session).
    #[arg(long = "as")]
    address_space: Option<u64>,
    /// Copy this folder into the working directory first (the session's private copy).
    #[arg(long)]
    copy_from: Option<PathBuf>,
    /// Make stdin (the session's PTY) the controlling terminal.
    #[arg(long)]
    tty: bool,
    /// The demo's argv.
    #[arg(last = true, required = true)]
    argv: Vec<OsString>,
}

/// The sandbox's init: copies the demo into the private tmpfs, takes the PTY as its
/// controlling terminal (bubblewrap's `--new-session` detached it, which is what stops
/// TIOCSTI into the origin's terminal; the demo still needs job control and Ctrl-C), sets
/// the rlimits inside the session's own user namespace, and execs the demo.
pub fn init_main(args: InitArgs) -> io::Result<std::convert::Infallible> {
    if let Some(src) = &args.copy_from {
        crate::tree::copy_tree(src, Path::new("."), false)
            .map_err(|e| io::Error::new(e.kind(), format!("copying the demo: {e}")))?;
    }
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        // bubblewrap's --new-session made its pid-1 init the session leader; start our
        // own session so the PTY can become our controlling terminal.
        if args.tty {
            libc::setsid();
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("taking the terminal: {e}"),
                ));
            }
        }
    }
    let limits = Limits {
        memory_bytes: args.address_space.unwrap_or(u64::MAX),
        max_processes: args.nproc,
        cpu_seconds: args.cpu,
        file_size_bytes: args.fsize,
        open_files: args.nofile,
        disk_bytes: 0,
    };
    limits::apply_rlimits(&limits, args.address_space.is_some())
        .map_err(|e| io::Error::new(e.kind(), format!("setting limits: {e}")))?;
    let err = std::process::Command::new(&args.argv[0])
        .args(&args.argv[1..])
        .exec();
    Err(io::Error::new(
        err.kind(),
        format!("{}: {err}", Path::new(&args.argv[0]).display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn tunnel_requests_are_refused_only_unsandboxed() {
        let tunnelled = [
            headers(&[("cf-connecting-ip", "203.0.113.9")]),
            headers(&[("CF-Ray", "8a1b2c3d4e5f6789-AMS")]),
            headers(&[("cdn-loop", "cloudflare")]),
            headers(&[("cdn-loop", "other"), ("cdn-loop", "Cloudflare; loops=1")]),
            headers(&[("cf-warp-tag-id", "x")]),
        ];
        for h in &tunnelled {
            assert!(tunnel_refusal(true, h).is_some(), "{h:?}");
            assert!(tunnel_refusal(false, h).is_none(), "{h:?}");
        }
        let local = [
            headers(&[]),
            headers(&[("cdn-loop", "fastly")]),
            headers(&[("x-folio-visitor", "ab")]),
        ];
        for h in &local {
            assert!(tunnel_refusal(true, h).is_none(), "{h:?}");
        }
    }

    #[test]
    fn runtime_dir_is_created_fresh_and_private() {
        let parent = std::env::temp_dir().join(format!(
            "folio-pty-unit-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&parent);
        fs::create_dir(&parent).unwrap();
        fs::set_permissions(&parent, fs::Permissions::from_mode(0o755)).unwrap();
        let rt = parent.join("rt");
        create_runtime_dir(&rt, None).unwrap();
        assert_eq!(fs::metadata(&rt).unwrap().mode() & 0o7777, 0o700);
        // Never reused, not even through a symlink.
        assert!(matches!(
            create_runtime_dir(&rt, None),
            Err(SandboxError::RuntimeExists(_))
        ));
        let link = parent.join("link");
        std::os::unix::fs::symlink(&rt, &link).unwrap();
        assert!(matches!(
            create_runtime_dir(&link, None),
            Err(SandboxError::RuntimeExists(_))
        ));
        // A parent others can write to (and not sticky) is refused.
        let open = parent.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            create_runtime_dir(&open.join("rt"), None),
            Err(SandboxError::UnsafeParent(_))
        ));
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        create_runtime_dir(&open.join("rt"), None).unwrap();
        fs::remove_dir_all(&parent).unwrap();
    }
}
