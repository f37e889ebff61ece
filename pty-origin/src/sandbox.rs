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
//! - the limits of [`crate::limits`].

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
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
    "profile.d",
    "terminfo",
    "debian_version",
    "os-release",
    "protocols",
    "services",
    "mime.types",
];

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// bubblewrap is not installed.
    #[error(
        "bubblewrap (bwrap) was not found in PATH; it is the security boundary of every session.\n\
         Install it: `apt-get install bubblewrap` (Debian/Ubuntu), `dnf install bubblewrap` (Fedora).\n\
         For local development on loopback only, `--no-sandbox` runs demos unconfined."
    )]
    Missing,
    /// bubblewrap is installed but cannot create namespaces here.
    #[error("bubblewrap cannot create a sandbox here ({0}); user namespaces may be disabled (sysctl kernel.unprivileged_userns_clone / user.max_user_namespaces)")]
    Unusable(String),
    /// Filesystem or process error while preparing.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// How sessions are confined.
pub struct Sandbox {
    /// Path of `bwrap`; `None` only with `--no-sandbox`.
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
    /// Sets up the runtime directory and checks that bubblewrap works (unless `bwrap` is
    /// `None`, i.e. `--no-sandbox`). `pool` is how many sessions may run at once;
    /// `use_cgroups = false` forces the rlimits-only fallback (to test it).
    pub fn new(
        bwrap: Option<PathBuf>,
        runtime: PathBuf,
        limits: Limits,
        pool: usize,
        uid_base: u32,
        use_cgroups: bool,
    ) -> Result<Self, SandboxError> {
        fs::create_dir_all(&runtime)?;
        fs::set_permissions(&runtime, fs::Permissions::from_mode(0o755))?;
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
        let root = unsafe { libc::geteuid() } == 0;
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
        };
        if sb.bwrap.is_some() {
            sb.smoke_test()?;
        }
        Ok(sb)
    }

    /// Whether sessions are confined (false only with `--no-sandbox`).
    pub fn is_enabled(&self) -> bool {
        self.bwrap.is_some()
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

    fn smoke_test(&self) -> Result<(), SandboxError> {
        let mut cmd = std::process::Command::new(self.bwrap.as_ref().expect("checked"));
        cmd.args(self.base_args(None))
            .args(["--dir", HOME, "--chdir", HOME, "--", "/bin/true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(uid) = self.build_uid() {
            cmd.uid(uid).gid(uid);
        }
        let out = cmd
            .output()
            .map_err(|e| SandboxError::Unusable(e.to_string()))?;
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
        let mut cmd;
        match &self.bwrap {
            Some(bwrap) => {
                cmd = tokio::process::Command::new(bwrap);
                cmd.args(self.base_args(Some(self.limits.disk_bytes)));
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
                if let (Some(base), Some(s)) = (self.uid_base, &slot) {
                    cmd.uid(base + s.index as u32).gid(base + s.index as u32);
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
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(j) = &join {
                    j.join_self()?;
                }
                close_inherited_fds();
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
        let mut cmd;
        match &self.bwrap {
            Some(bwrap) => {
                cmd = tokio::process::Command::new(bwrap);
                cmd.args(self.base_args(Some(self.limits.disk_bytes)));
                cmd.arg("--bind").arg(dir).arg(HOME);
                cmd.args(["--remount-ro", "/", "--chdir", HOME, "--"]);
                cmd.args(self.init_args(false, false));
                cmd.args(["/bin/sh", "-c", script]);
                if let Some(uid) = self.build_uid() {
                    cmd.uid(uid).gid(uid);
                }
            }
            None => {
                cmd = tokio::process::Command::new("/bin/sh");
                cmd.args(["-c", script]).current_dir(dir);
            }
        }
        let join = cgroup.as_ref().map(|c| c.join_fds()).transpose()?;
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                if let Some(j) = &join {
                    j.join_self()?;
                }
                close_inherited_fds();
                Ok(())
            });
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        let out = tokio::time::timeout(timeout, child.wait_with_output())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "build step timed out"))??;
        drop(cgroup);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok((out.status, text))
    }
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
