//! Resource limits of a session: what one visitor's demo may consume, and the kernel
//! mechanisms that enforce it.
//!
//! Two layers, both always on when available:
//! - **cgroups** (per session): `pids.max` caps the processes of the whole session however
//!   they are spawned (fork bombs), `memory.max`/`memory.limit_in_bytes` caps its total
//!   memory including its tmpfs pages (memory bombs, disk fill), and the `cpu` controller
//!   gives the session as a whole one share of the CPU and at most one CPU's worth of time
//!   (`cpu.max` / `cpu.cfs_quota_us`), however many processes it forks: a CPU hog of many
//!   processes competes as one (per-process `RLIMIT_CPU` does not stop sixty busy loops, and
//!   the scheduler's autogroups are escaped with `setsid`). cgroup v2 is used when the
//!   origin has a delegated subtree (systemd `Delegate=pids memory cpu`), otherwise cgroup
//!   v1's `pids`, `memory` and `cpu` hierarchies if writable (root on a v1 host). A session's
//!   cgroup is also how every last process of it is killed.
//! - Without a writable `cpu` controller, each session runs at `SCHED_IDLE` instead: the
//!   host and the origin always come first, though sessions then share the CPU per process.
//! - **rlimits** (per process), set by the sandbox's init inside the session's own user
//!   namespace: `RLIMIT_NPROC` (counted per user namespace, so per session), `RLIMIT_CPU`,
//!   `RLIMIT_FSIZE`, `RLIMIT_NOFILE`, `RLIMIT_CORE=0`, and `RLIMIT_AS` when no memory cgroup
//!   is available.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use folio_content::demo::TerminalConfig;

const MIB: u64 = 1024 * 1024;

/// Per-session limits, in the units the kernel wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total memory of the session (cgroup), or per process (`RLIMIT_AS`) without cgroups.
    pub memory_bytes: u64,
    /// Processes (and threads) the session may have at once.
    pub max_processes: u64,
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Size of each of the session's writable tmpfs mounts (home and /tmp).
    pub disk_bytes: u64,
}

impl From<&TerminalConfig> for Limits {
    fn from(t: &TerminalConfig) -> Self {
        Limits {
            memory_bytes: t.memory_mb.saturating_mul(MIB),
            max_processes: t.max_processes,
            cpu_seconds: t.cpu_seconds,
            file_size_bytes: t.file_size_mb.saturating_mul(MIB),
            open_files: t.open_files,
            disk_bytes: t.disk_mb.saturating_mul(MIB),
        }
    }
}

/// CPU bandwidth of one session: `SESSION_CPU_QUOTA_US` of CPU time per
/// `SESSION_CPU_PERIOD_US`, i.e. at most one CPU's worth, whatever it forks.
pub const SESSION_CPU_QUOTA_US: u64 = 100_000;
/// The period of [`SESSION_CPU_QUOTA_US`].
pub const SESSION_CPU_PERIOD_US: u64 = 100_000;

/// Which cgroup mechanism this origin uses.
#[derive(Debug, Clone)]
pub enum CgroupMode {
    /// A delegated cgroup v2 subtree; sessions are children of `base`.
    V2 {
        /// The directory under which session cgroups are created.
        base: PathBuf,
        /// Whether the `cpu` controller is enabled for the sessions (else: `SCHED_IDLE`).
        cpu: bool,
    },
    /// cgroup v1 `pids` (and, if writable, `memory` and `cpu`) hierarchies.
    V1 {
        /// Directory under the pids hierarchy for this origin's sessions.
        pids: PathBuf,
        /// Directory under the memory hierarchy, if that one is writable too.
        memory: Option<PathBuf>,
        /// The origin's own cgroup in the cpu hierarchy, if writable: session cgroups are
        /// created directly in it (`folio-pty-<pid>-<session>`), so that each session weighs
        /// as much as one ordinary process of the host, not a share of one.
        cpu: Option<PathBuf>,
    },
    /// No writable cgroups: rlimits only (the reason is logged at start).
    Unavailable(String),
}

impl CgroupMode {
    /// Whether session memory is capped as a whole (otherwise per process via RLIMIT_AS).
    pub fn caps_memory(&self) -> bool {
        matches!(
            self,
            CgroupMode::V2 { .. }
                | CgroupMode::V1 {
                    memory: Some(_),
                    ..
                }
        )
    }

    /// Whether each session's CPU time is shared and capped as a whole (the `cpu`
    /// controller); otherwise sessions run at `SCHED_IDLE`.
    pub fn caps_cpu(&self) -> bool {
        matches!(
            self,
            CgroupMode::V2 { cpu: true, .. } | CgroupMode::V1 { cpu: Some(_), .. }
        )
    }

    /// How CPU is shared between sessions, for logs.
    pub fn cpu_name(&self) -> &'static str {
        match self {
            CgroupMode::V2 { cpu: true, .. } => "cgroup2 cpu.max/cpu.weight per session",
            CgroupMode::V1 { cpu: Some(_), .. } => "cgroup1 cpu quota/shares per session",
            _ => "SCHED_IDLE per session (no writable cpu controller)",
        }
    }

    /// Short name for logs and `/healthz`.
    pub fn name(&self) -> &'static str {
        match self {
            CgroupMode::V2 { .. } => "cgroup2",
            CgroupMode::V1 {
                memory: Some(_), ..
            } => "cgroup1(pids,memory)",
            CgroupMode::V1 { memory: None, .. } => "cgroup1(pids)",
            CgroupMode::Unavailable(_) => "rlimits-only",
        }
    }

    /// Finds a writable cgroup hierarchy for this process, creating this origin's own
    /// directory (`folio-pty-<pid>`) inside it.
    pub fn detect() -> CgroupMode {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        match try_v2(&own) {
            Ok(mode) => mode,
            Err(v2_err) => match try_v1(&own) {
                Ok(mode) => mode,
                Err(v1_err) => {
                    CgroupMode::Unavailable(format!("cgroup v2: {v2_err}; cgroup v1: {v1_err}"))
                }
            },
        }
    }

    /// Creates the cgroup of one session (or build) named `name`, with `limits` applied.
    pub fn create(&self, name: &str, limits: &Limits) -> io::Result<Option<SessionCgroup>> {
        let pids_max = (limits.max_processes + SANDBOX_OVERHEAD_PROCS).to_string();
        let mem = limits.memory_bytes.to_string();
        match self {
            CgroupMode::Unavailable(_) => Ok(None),
            CgroupMode::V2 { base, cpu } => {
                let d = base.join(name);
                fs::create_dir(&d)?;
                let cg = SessionCgroup {
                    dirs: vec![d.clone()],
                    memory_v1: None,
                    v2: true,
                };
                write(&d.join("pids.max"), &pids_max)?;
                write(&d.join("memory.max"), &mem)?;
                // No swap: a memory bomb must hit the cap, not the host's swap.
                let _ = write(&d.join("memory.swap.max"), "0");
                if *cpu {
                    write(
                        &d.join("cpu.max"),
                        &format!("{SESSION_CPU_QUOTA_US} {SESSION_CPU_PERIOD_US}"),
                    )?;
                    write(&d.join("cpu.weight"), "100")?;
                }
                Ok(Some(cg))
            }
            CgroupMode::V1 { pids, memory, cpu } => {
                // Dropping `cg` on an error below removes what was created so far.
                let mut cg = SessionCgroup {
                    dirs: vec![],
                    memory_v1: None,
                    v2: false,
                };
                let p = pids.join(name);
                fs::create_dir(&p)?;
                cg.dirs.push(p.clone());
                write(&p.join("pids.max"), &pids_max)?;
                if let Some(m) = memory {
                    let d = m.join(name);
                    fs::create_dir(&d)?;
                    cg.dirs.push(d.clone());
                    cg.memory_v1 = Some(d.clone());
                    write(&d.join("memory.limit_in_bytes"), &mem)?;
                    let _ = write(&d.join("memory.memsw.limit_in_bytes"), &mem);
                    let _ = write(&d.join("memory.swappiness"), "0");
                }
                if let Some(c) = cpu {
                    let d = c.join(format!("folio-pty-{}-{name}", std::process::id()));
                    fs::create_dir(&d)?;
                    cg.dirs.push(d.clone());
                    write(
                        &d.join("cpu.cfs_period_us"),
                        &SESSION_CPU_PERIOD_US.to_string(),
                    )?;
                    write(
                        &d.join("cpu.cfs_quota_us"),
                        &SESSION_CPU_QUOTA_US.to_string(),
                    )?;
                    write(&d.join("cpu.shares"), "1024")?;
                }
                Ok(Some(cg))
            }
        }
    }
}

/// Processes bubblewrap itself keeps in a session (its outer monitor and the namespace's
/// init), added to `pids.max` so the demo gets its full `max_processes`.
pub const SANDBOX_OVERHEAD_PROCS: u64 = 2;

fn write(path: &Path, value: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn try_v2(own: &str) -> Result<CgroupMode, String> {
    let root = Path::new("/sys/fs/cgroup");
    let rel = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("not in a cgroup v2 hierarchy")?;
    // A pure v2 host mounts it at /sys/fs/cgroup; hybrid hosts at /sys/fs/cgroup/unified.
    let mount = if root.join("cgroup.controllers").exists() {
        root.to_path_buf()
    } else {
        root.join("unified")
    };
    let ours = mount.join(rel.trim_start_matches('/'));
    let available =
        fs::read_to_string(ours.join("cgroup.controllers")).map_err(|e| e.to_string())?;
    let has = |c: &str| available.split_whitespace().any(|x| x == c);
    for c in ["pids", "memory"] {
        if !has(c) {
            return Err(format!(
                "controller {c} not available in {}",
                ours.display()
            ));
        }
    }
    // The "no internal processes" rule: move this process into a leaf before enabling
    // controllers for the children.
    let leaf = ours.join("origin");
    if !leaf.exists() {
        fs::create_dir(&leaf).map_err(|e| format!("{}: {e}", leaf.display()))?;
    }
    write(&leaf.join("cgroup.procs"), &std::process::id().to_string())
        .map_err(|e| e.to_string())?;
    write(&ours.join("cgroup.subtree_control"), "+pids +memory").map_err(|e| e.to_string())?;
    // The cpu controller is optional (an older unit may delegate only pids and memory):
    // without it, sessions fall back to SCHED_IDLE.
    let cpu = has("cpu") && write(&ours.join("cgroup.subtree_control"), "+cpu").is_ok();
    Ok(CgroupMode::V2 { base: ours, cpu })
}

fn try_v1(own: &str) -> Result<CgroupMode, String> {
    let find = |ctrl: &str| -> Option<PathBuf> {
        own.lines().find_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
            ctrls.split(',').any(|c| c == ctrl).then(|| {
                Path::new("/sys/fs/cgroup")
                    .join(ctrl)
                    .join(path.trim_start_matches('/'))
            })
        })
    };
    let name = format!("folio-pty-{}", std::process::id());
    let pids_root = find("pids").ok_or("no pids hierarchy")?;
    remove_stale(&pids_root);
    if let Some(m) = find("memory") {
        remove_stale(&m);
    }
    let cpu = find("cpu").filter(|c| {
        remove_stale(c);
        // Writable for us: a probe cgroup can be created, limited and removed.
        let probe = c.join(format!("folio-pty-{}-probe", std::process::id()));
        let ok = fs::create_dir(&probe).is_ok()
            && write(
                &probe.join("cpu.cfs_quota_us"),
                &SESSION_CPU_QUOTA_US.to_string(),
            )
            .is_ok();
        let _ = fs::remove_dir(&probe);
        ok
    });
    let pids = pids_root.join(&name);
    fs::create_dir_all(&pids).map_err(|e| format!("{}: {e}", pids.display()))?;
    if !pids.join("pids.max").exists() {
        return Err("pids controller missing".into());
    }
    let memory = find("memory")
        .map(|m| m.join(&name))
        .filter(|m| fs::create_dir_all(m).is_ok() && m.join("memory.limit_in_bytes").exists());
    Ok(CgroupMode::V1 { pids, memory, cpu })
}

/// Removes the empty cgroup directories of origins that died without cleaning up
/// (`folio-pty-<pid>` or, in the cpu hierarchy, `folio-pty-<pid>-<session>`, whose process
/// is gone).
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("folio-pty-")
            .map(|p| p.split('-').next().unwrap_or_default())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        if let Ok(children) = fs::read_dir(e.path()) {
            for c in children.flatten().filter(|c| c.path().is_dir()) {
                let _ = fs::remove_dir(c.path());
            }
        }
        let _ = fs::remove_dir(e.path());
    }
}

/// One session's cgroup(s). Dropping it kills whatever is left inside and removes it.
#[derive(Debug)]
pub struct SessionCgroup {
    /// The v2 cgroup, or the v1 pids cgroup first, then the v1 memory and cpu ones.
    dirs: Vec<PathBuf>,
    /// The v1 memory cgroup (its failure counter).
    memory_v1: Option<PathBuf>,
    v2: bool,
}

/// Open `cgroup.procs` files a child writes its own pid to, between fork and exec.
pub struct JoinFds(Vec<File>);

impl JoinFds {
    /// Moves the calling process into the cgroups. Async-signal-safe: only `write(2)`.
    ///
    /// # Safety
    /// Meant to be called from `pre_exec` (after fork, before exec).
    pub fn join_self(&self) -> io::Result<()> {
        for f in &self.0 {
            let fd: RawFd = f.as_raw_fd();
            // "0" means "the writing process" in both cgroup v1 and v2.
            let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
            if n != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

impl SessionCgroup {
    /// Opens the files [`JoinFds::join_self`] writes to (before forking).
    pub fn join_fds(&self) -> io::Result<JoinFds> {
        self.dirs
            .iter()
            .map(|d| OpenOptions::new().write(true).open(d.join("cgroup.procs")))
            .collect::<io::Result<Vec<_>>>()
            .map(JoinFds)
    }

    /// Number of processes in the session now.
    pub fn process_count(&self) -> usize {
        fs::read_to_string(self.dirs[0].join("cgroup.procs"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Whether a fork was refused because the session reached its process cap: the mark of
    /// a fork bomb, after which the session is ended (a bomb never stops by itself).
    pub fn pids_limit_hit(&self) -> bool {
        fs::read_to_string(self.dirs[0].join("pids.events"))
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("max ") && l.trim() != "max 0")
            })
            .unwrap_or(false)
    }

    /// Whether the memory cap was hit (OOM kill or failed allocation) in this cgroup.
    pub fn memory_cap_hit(&self) -> bool {
        if self.v2 {
            fs::read_to_string(self.dirs[0].join("memory.events"))
                .map(|s| {
                    s.lines().any(|l| {
                        (l.starts_with("oom_kill ") || l.starts_with("max ")) && !l.ends_with(" 0")
                    })
                })
                .unwrap_or(false)
        } else {
            self.memory_v1
                .as_ref()
                .and_then(|m| fs::read_to_string(m.join("memory.failcnt")).ok())
                .is_some_and(|s| s.trim() != "0")
        }
    }

    /// Kills every process in the session and waits (briefly) until none is left.
    pub fn kill_all(&self) {
        if self.v2 {
            let _ = write(&self.dirs[0].join("cgroup.kill"), "1");
        }
        for _ in 0..100 {
            let mut any = false;
            for d in &self.dirs {
                for pid in fs::read_to_string(d.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                {
                    if let Ok(pid) = pid.trim().parse::<libc::pid_t>() {
                        any = true;
                        unsafe { libc::kill(pid, libc::SIGKILL) };
                    }
                }
            }
            if !any {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for SessionCgroup {
    fn drop(&mut self) {
        self.kill_all();
        for d in &self.dirs {
            for _ in 0..50 {
                if fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// Removes this origin's own cgroup directories at shutdown (sessions are gone by then).
pub fn cleanup(mode: &CgroupMode) {
    if let CgroupMode::V1 { pids, memory, .. } = mode {
        let _ = fs::remove_dir(pids);
        if let Some(m) = memory {
            let _ = fs::remove_dir(m);
        }
    }
}

/// Sets one rlimit (soft = hard), for use in the sandbox's init or a `pre_exec` hook.
pub fn set_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    if unsafe { libc::setrlimit(resource, &lim) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPU fallback without a `cpu` controller: puts the calling process (and so everything
/// it will fork) in the `SCHED_IDLE` class, which runs only when nothing of normal priority
/// wants the CPU, and takes away the way back (`RLIMIT_NICE` 0: no raising of priority).
/// Async-signal-safe (raw syscalls only), for `pre_exec`.
pub fn lowest_cpu_priority() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    set_rlimit(libc::RLIMIT_NICE, 0)
}

/// Applies the per-process rlimits of `limits`; `memory_per_process` sets `RLIMIT_AS` too
/// (when no memory cgroup caps the session as a whole). `RLIMIT_NICE` is 0: no process of
/// a session can raise its priority (or leave `SCHED_IDLE`).
pub fn apply_rlimits(limits: &Limits, memory_per_process: bool) -> io::Result<()> {
    set_rlimit(libc::RLIMIT_NICE, 0)?;
    set_rlimit(libc::RLIMIT_NPROC, limits.max_processes)?;
    set_rlimit(libc::RLIMIT_CPU, limits.cpu_seconds)?;
    set_rlimit(libc::RLIMIT_FSIZE, limits.file_size_bytes)?;
    set_rlimit(libc::RLIMIT_NOFILE, limits.open_files)?;
    set_rlimit(libc::RLIMIT_CORE, 0)?;
    if memory_per_process {
        set_rlimit(libc::RLIMIT_AS, limits.memory_bytes)?;
    }
    Ok(())
}
