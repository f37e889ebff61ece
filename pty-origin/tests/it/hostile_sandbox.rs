//! A hostile visitor against the sandbox, one test per threat of issue 11 that the sandbox,
//! the limits and the origin's start-up close: nested user namespaces and the kernel attack
//! surface behind them (1), a CPU hog of many processes (3), a planted runtime directory (4),
//! running unsandboxed in production (7), and what the sandbox's mounts show (9).
//!
//! Markers the tests look for are computed by the shell (`U''NS`, `$((6*7))`) or come out of a
//! program whose source is typed base64-encoded, so the echo of the typed command never
//! contains them.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::common::{fixture_site, Origin, Term, SECS};

/// The C program that tries each refused call (see the file's header).
const BATTERY: &str = include_str!("battery.c");

const EPERM: &str = "1";
const ENOSYS: &str = "38";

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Types `source` into the session as /tmp/battery.c (base64, in short chunks), compiles and
/// runs it; returns the `R: name result` lines as pairs, and the shell's `RC=` line.
async fn run_battery(t: &mut Term) -> (Vec<(String, String)>, String) {
    t.run("rm -f /tmp/b64", SECS(10)).await;
    for chunk in base64(BATTERY.as_bytes()).as_bytes().chunks(400) {
        let chunk = std::str::from_utf8(chunk).unwrap();
        t.run(&format!("printf %s '{chunk}' >> /tmp/b64"), SECS(10))
            .await;
    }
    let out = t
        .run(
            "base64 -d /tmp/b64 > /tmp/battery.c && cc -pthread -o /tmp/battery /tmp/battery.c \
             && /tmp/battery; echo R''C=$?",
            SECS(90),
        )
        .await;
    // (A line may start with the shell's bracketed-paste escape: look inside lines.)
    let after = |l: &str, tag: &str| l.find(tag).map(|i| l[i + tag.len()..].trim().to_owned());
    let results = out
        .lines()
        .filter_map(|l| after(l, "R: "))
        .filter_map(|l| {
            l.split_once(' ')
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        })
        .collect();
    let rc = out
        .lines()
        .find_map(|l| after(l, "RC="))
        .unwrap_or_else(|| panic!("the battery did not run: {out}"));
    (results, rc)
}

/// Checks the battery's results: every dangerous call refused with EPERM, clone3 with ENOSYS
/// (so libc falls back to clone), ordinary calls allowed, a 32-bit syscall fatal.
fn assert_battery(results: &[(String, String)], rc: &str) {
    let get = |name: &str| {
        results
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no result for {name}: {results:?}"))
    };
    for name in ["fork", "thread", "tiocgwinsz"] {
        assert_eq!(get(name), "ok", "{name} must still work: {results:?}");
    }
    assert_eq!(get("clone3"), ENOSYS, "clone3: {results:?}");
    let denied = [
        "unshare",
        "clone",
        "setns",
        "keyctl",
        "add_key",
        "request_key",
        "bpf",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "perf_event_open",
        "kexec_load",
        "kexec_file_load",
        "mount",
        "umount2",
        "pivot_root",
        "fsopen",
        "fsconfig",
        "fsmount",
        "fspick",
        "open_tree",
        "move_mount",
        "mount_setattr",
        "open_by_handle_at",
        "ptrace",
        "process_vm_readv",
        "tiocsti",
        "tiocsti_high",
        "tioclinux",
    ];
    let wrong: Vec<_> = denied
        .iter()
        .filter(|n| get(n) != EPERM)
        .map(|n| format!("{n}={}", get(n)))
        .collect();
    assert!(wrong.is_empty(), "not refused with EPERM: {wrong:?}");
    if cfg!(target_arch = "x86_64") {
        assert!(
            results.iter().all(|(k, v)| k != "int80" || v == "start"),
            "a 32-bit syscall came back: {results:?}"
        );
        assert_eq!(rc, "159", "a 32-bit syscall must kill the process (SIGSYS)");
    } else {
        assert_eq!(rc, "0");
    }
}

/// Threat 1: nested user namespaces (and the kernel attack surface they open: keyctl, bpf,
/// userfaultfd, io_uring, perf, kexec, mounts, ptrace, TIOCSTI…) are refused in a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat1_nested_user_namespaces_and_kernel_attack_surface_are_refused() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    let out = t
        .run(
            "unshare -Urn true 2>/dev/null && echo U''NS=escaped || echo U''NS=denied; \
             unshare -U true 2>/dev/null && echo U''NS1=escaped || echo U''NS1=denied; \
             echo S''C=$(awk '/^Seccomp:/{print $2}' /proc/self/status)",
            SECS(20),
        )
        .await;
    assert!(out.contains("UNS=denied"), "unshare -Urn: {out}");
    assert!(out.contains("UNS1=denied"), "unshare -U: {out}");
    assert!(
        out.contains("SC=2"),
        "no seccomp filter on the session: {out}"
    );
    let (results, rc) = run_battery(&mut t).await;
    assert_battery(&results, &rc);
    // The session lives on.
    let out = t.run("echo alive-$((6*7))", SECS(10)).await;
    assert!(out.contains("alive-42"), "{out}");
}

/// How long the session takes to answer a small command that needs some CPU (a 3000-step
/// shell loop, some tens of milliseconds): the time from typing it to seeing its output.
/// (A bare keystroke echo is no measure: the scheduler runs a waking shell at once, however
/// many busy loops there are; what a CPU hog takes from other sessions is their CPU time.)
async fn response_time(t: &mut Term) -> Duration {
    let start = Instant::now();
    let out = t
        .run(
            "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; echo n-$i",
            SECS(60),
        )
        .await;
    assert!(out.contains("n-3000"), "{out}");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn signal_all(pids: &[u32], sig: i32) {
    for p in pids {
        unsafe { libc::kill(*p as i32, sig) };
    }
}

/// Threat 3: CPU is shared per session, not per process. While one session runs a CPU hog of
/// many processes — each in its own session (`setsid`), so that the scheduler's per-session
/// autogroups do not hold them together — another session's response time stays within 2×
/// of its quiet value. The hog is paused and resumed from the host (SIGSTOP/SIGCONT) so that
/// quiet and busy samples alternate: the machine's other load weighs on both alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat3_cpu_hog_of_many_processes_leaves_other_sessions_responsive() {
    const HOGS: usize = 24;
    let origin = Origin::start(&fixture_site());
    let mut victim = origin.connect("shell").await;
    victim.run("echo ready-$((1+1))", SECS(20)).await;
    let mut hog = origin.connect("shell").await;
    hog.run(
        &format!(
            "for i in $(seq {HOGS}); do setsid -f sh -c 'exec sh -c \"while :; do :; done\" busy-loop-{}'; done",
            origin.pid()
        ),
        SECS(20),
    )
    .await;
    let needle = format!("busy-loop-{}", origin.pid());
    let deadline = Instant::now() + SECS(10);
    let mut hogs = crate::common::host_processes_matching(&needle);
    while hogs.len() < HOGS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        hogs = crate::common::host_processes_matching(&needle);
    }
    assert_eq!(hogs.len(), HOGS, "the hog did not start: {}", hog.tail());
    let (mut quiet, mut busy) = (vec![], vec![]);
    for _ in 0..5 {
        signal_all(&hogs, libc::SIGSTOP);
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..3 {
            quiet.push(response_time(&mut victim).await);
        }
        signal_all(&hogs, libc::SIGCONT);
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..3 {
            busy.push(response_time(&mut victim).await);
        }
    }
    // The hogs really ran: they used CPU time while running.
    let used: u64 = hogs
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .map(|stat| {
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split(' ').collect();
            f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
        })
        .sum();
    signal_all(&hogs, libc::SIGKILL);
    drop(hog);
    let (quiet, busy) = (median(quiet), median(busy));
    eprintln!("response time: quiet {quiet:?}, under the hog {busy:?}; hog CPU {used} ticks");
    assert!(used > 0, "the hogs never ran");
    assert!(
        busy <= quiet * 2,
        "response time {busy:?} under another session's CPU hog, {quiet:?} quiet"
    );
}

/// A `folio-pty serve` started by hand (not through the harness): for wrappers (`setpriv`,
/// `sh -c … exec`) and environments the harness does not offer.
struct Manual {
    child: Child,
    /// Everything it wrote to stderr so far (filled by a thread).
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    addr: Option<SocketAddr>,
}

impl Manual {
    /// Spawns `cmd` (stderr piped) and waits until it listens or exits.
    fn start(mut cmd: Command) -> Manual {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn folio-pty");
        let stderr = child.stderr.take().unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("\"event\":\"listening\"") {
                        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                        let _ = tx.send(v["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                return Manual {
                    child,
                    logs,
                    addr: Some(addr),
                };
            }
            if child.try_wait().unwrap().is_some() {
                std::thread::sleep(Duration::from_millis(100));
                return Manual {
                    child,
                    logs,
                    addr: None,
                };
            }
            assert!(
                Instant::now() < deadline,
                "folio-pty neither listened nor exited"
            );
        }
    }

    fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    fn terminate(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + SECS(15);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "folio-pty did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Manual {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A scratch directory, removed when dropped (also when the test fails).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies a directory tree (files readable by everyone, directories searchable).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// A fresh scratch directory for one test (mode 0755, so other uids can reach into it).
fn scratch(tag: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!(
        "folio-pty-hostile-{}-{tag}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    Scratch(d)
}

fn write_secret(path: &Path) -> Vec<u8> {
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    let secret: Vec<u8> = b
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<String>()
        .into_bytes();
    std::fs::write(path, &secret).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    secret
}

fn folio_pty() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_folio-pty"));
    cmd.env_remove("RUNTIME_DIRECTORY")
        .env_remove("CREDENTIALS_DIRECTORY");
    cmd
}

/// Connects to `demo` on an origin the harness did not start.
async fn connect(addr: SocketAddr, secret: &[u8], demo: &str) -> Term {
    let mut nonce = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut nonce)
        .unwrap();
    let token = terminal_protocol::mint(
        secret,
        demo,
        crate::common::now() + 30,
        nonce,
        &crate::common::CLIENT,
    );
    let mut req = format!("ws://{addr}/terminal/{demo}")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut t = Term::new(ws);
    t.hello(80, 24).await;
    t
}

/// Threat 4: the runtime directory is created fresh and private; one that already exists (a
/// local user's plant, with `etc -> <somewhere>`) is refused, not reused; as root there is no
/// default in the shared temp dir. Unprivileged, the default is a fresh random directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat4_runtime_dir_is_fresh_private_and_never_reused() {
    crate::common::require_bwrap();
    let base = scratch("rt");
    let secret = base.join("secret");
    write_secret(&secret);

    // A plant at the very name the origin will use (its pid is the shell's, after exec).
    let victim = base.join("victim");
    std::fs::create_dir(&victim).unwrap();
    let mut planted = Command::new("/bin/sh");
    planted
        .arg("-c")
        .arg(
            "mkdir \"$1/folio-pty-$$\" && ln -s \"$2\" \"$1/folio-pty-$$/etc\" && \
             exec \"$0\" serve --site \"$3\" --secret-file \"$4\" --listen 127.0.0.1:0 --runtime-dir \"$1\"",
        )
        .arg(env!("CARGO_BIN_EXE_folio-pty"))
        .arg(&base)
        .arg(&victim)
        .arg(fixture_site())
        .arg(&secret)
        .env_remove("RUNTIME_DIRECTORY");
    let mut m = Manual::start(planted);
    let listened = m.addr.is_some();
    if listened {
        m.terminate();
    }
    let planted_files: Vec<_> = std::fs::read_dir(&victim)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        planted_files.is_empty(),
        "the origin wrote through a planted runtime directory: {planted_files:?}"
    );
    assert!(!listened, "the origin reused an existing runtime directory");
    assert!(m.logs().contains("exists"), "{}", m.logs());
    drop(m);

    // An ordinary start: the runtime directory is new and closed to other users.
    let origin = Origin::start(&fixture_site());
    let runtime = std::fs::read_dir(&origin.dir)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("folio-pty-"))
        .expect("no runtime directory")
        .path();
    let meta = std::fs::symlink_metadata(&runtime).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.uid(), unsafe { libc::geteuid() });
    assert_eq!(
        meta.mode() & 0o027,
        0,
        "runtime directory mode {:o}: group-writable or open to others",
        meta.mode() & 0o7777
    );
    drop(origin);

    if is_root() {
        // Root, and neither --runtime-dir nor $RUNTIME_DIRECTORY: refused, nothing created.
        let tmp = scratch("tmp");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let mut cmd = folio_pty();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--site"])
            .arg(fixture_site())
            .arg("--secret-file")
            .arg(&secret)
            .env("TMPDIR", &tmp);
        let m = Manual::start(cmd);
        assert!(m.addr.is_none(), "root started without a runtime directory");
        assert!(m.logs().contains("--runtime-dir"), "{}", m.logs());
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        drop(m);

        // Unprivileged (nobody), no runtime directory given: a fresh random 0700 directory in
        // the temp dir, removed at exit; and the sandbox holds there too (threat 1 as well).
        // The binary and the site, where nobody can reach them whatever the checkout's path.
        let copies = scratch("nobody");
        let bin = copies.join("folio-pty");
        std::fs::copy(env!("CARGO_BIN_EXE_folio-pty"), &bin).unwrap();
        let site = copies.join("site");
        copy_tree(&fixture_site(), &site);
        let nobody_secret = tmp.join("secret");
        let secret_bytes = write_secret(&nobody_secret);
        std::os::unix::fs::chown(&nobody_secret, Some(65534), Some(65534)).unwrap();
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["serve", "--listen", "127.0.0.1:0", "--site"])
            .arg(&site)
            .arg("--secret-file")
            .arg(&nobody_secret)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("TMPDIR", &tmp);
        let mut m = Manual::start(cmd);
        let addr = m
            .addr
            .unwrap_or_else(|| panic!("folio-pty as nobody did not start: {}", m.logs()));
        let made: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name() != "secret")
            .collect();
        assert_eq!(made.len(), 1, "{made:?}");
        let meta = std::fs::symlink_metadata(made[0].path()).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (65534, 0o700));
        let name = made[0].file_name().to_string_lossy().into_owned();
        assert!(
            name.starts_with("folio-pty-") && name != format!("folio-pty-{}", m.child.id()),
            "predictable name {name}"
        );
        let mut t = connect(addr, &secret_bytes, "shell").await;
        let out = t
            .run(
                "echo uid-$(id -u); unshare -Ur true 2>/dev/null && echo U''NS=escaped || echo U''NS=denied; \
                 echo S''C=$(awk '/^Seccomp:/{print $2}' /proc/self/status); chrt -p $$",
                SECS(30),
            )
            .await;
        assert!(out.contains("uid-1000"), "{out}");
        assert!(out.contains("UNS=denied"), "{out}");
        assert!(out.contains("SC=2"), "{out}");
        assert!(
            out.contains("SCHED_IDLE"),
            "without cgroups a session must run at idle priority: {out}"
        );
        drop(t);
        m.terminate();
        assert_eq!(
            std::fs::read_dir(&tmp)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name() != "secret")
                .count(),
            0,
            "the runtime directory was left behind"
        );
    }
}

/// Threat 7: running demos unconfined needs a loudly named opt-in; `--no-sandbox` is gone, off
/// loopback it is refused, and the "bwrap missing" error no longer suggests it.
#[test]
fn threat7_running_unsandboxed_needs_the_loud_opt_in() {
    let err = Origin::start_with(&fixture_site(), &["--no-sandbox"], None)
        .err()
        .expect("--no-sandbox is still accepted");
    assert!(!err.0.success());
    let err = Origin::start_with(
        &fixture_site(),
        &["--insecure-no-sandbox", "--listen", "0.0.0.0:0"],
        None,
    )
    .err()
    .expect("--insecure-no-sandbox started on a public address");
    assert!(err.1.contains("loopback"), "{}", err.1);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_folio-pty"))
        .parent()
        .unwrap()
        .to_owned();
    let err = Origin::start_with(&fixture_site(), &[], Some(bin_dir.to_str().unwrap()))
        .err()
        .expect("started without bwrap on PATH");
    assert!(err.1.contains("apt-get install bubblewrap"), "{}", err.1);
    assert!(
        !err.1.contains("sandbox`") && !err.1.contains("no-sandbox"),
        "the missing-bwrap error suggests running unsandboxed: {}",
        err.1
    );
    // Unconfined on loopback, for development: it starts, and says so.
    let origin = Origin::start_with(&fixture_site(), &["--insecure-no-sandbox"], None)
        .expect("--insecure-no-sandbox on loopback");
    assert!(origin.get("/healthz").1.contains("\"sandbox\":\"none\""));
}

/// Threat 7, at request time: unsandboxed, a request that came through a Cloudflare tunnel
/// (`Cf-Connecting-Ip`, `Cf-Ray`, `Cdn-Loop: cloudflare`) is refused before any process starts.
/// Needs the one-line call to `Sandbox::refuse_tunnel_request` in `server.rs`'s handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat7_unsandboxed_origin_refuses_tunnel_requests() {
    let origin = Origin::start_with(&fixture_site(), &["--insecure-no-sandbox"], None).unwrap();
    for header in [
        ("cf-connecting-ip", "203.0.113.9"),
        ("cf-ray", "8a1b2c3d4e5f6789-AMS"),
        ("cdn-loop", "cloudflare"),
    ] {
        let code = origin
            .open("shell", Some(&origin.token("shell")), &[header])
            .await
            .err();
        assert_eq!(code, Some(403), "{header:?} was let through");
    }
    assert!(origin.descendants().is_empty());
    // Without them (local development), it still serves.
    let mut t = origin.connect("shell").await;
    t.expect_notice("NOT confined", SECS(10)).await;
}

/// Threat 9 (the sandbox's view of the host): no `/etc/profile.d` (it can hold proxy
/// credentials), and `/proc/self/mountinfo` names no host path but `/usr`, the allowed `/etc`
/// entries and the origin's runtime directory — not the site, not the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threat9_the_sandbox_binds_only_what_demos_need() {
    assert!(
        Path::new("/etc/profile.d").is_dir(),
        "this host has no /etc/profile.d to hide"
    );
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    let out = t
        .run(
            "ls -d /etc/profile.d >/dev/null 2>&1 && echo P''D=visible || echo P''D=hidden; \
             sed 's/^/M''I /' /proc/self/mountinfo",
            SECS(20),
        )
        .await;
    assert!(out.contains("PD=hidden"), "{out}");
    let runtime = format!("/folio-pty-{}/", origin.pid());
    let allowed_etc = [
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
    let site = fixture_site().display().to_string();
    let secret = origin.secret_path.display().to_string();
    let mut lines = 0;
    for line in out.lines().filter_map(|l| l.trim().strip_prefix("MI ")) {
        lines += 1;
        assert!(!line.contains(&site), "the site's path shows: {line}");
        assert!(!line.contains(&secret), "the secret's path shows: {line}");
        let root = line.split(' ').nth(3).unwrap();
        let fstype = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
        if matches!(fstype, Some("devpts" | "devtmpfs")) {
            // Device nodes (bubblewrap's /dev, the session's terminal as /dev/console).
            continue;
        }
        let ok = root == "/"
            // bubblewrap's own root tmpfs.
            || root == "/newroot"
            || root == "/usr"
            || root.starts_with("/usr/")
            || root.contains(&runtime)
            || root
                .strip_prefix("/etc/")
                .is_some_and(|e| allowed_etc.contains(&e))
            // /etc/localtime and /etc/alternatives are links into /usr and /etc.
            || root.starts_with("/etc/alternatives/");
        assert!(
            ok,
            "the sandbox mounts a host path it does not need: {line}"
        );
    }
    assert!(lines > 5, "no mountinfo read: {out}");
}
