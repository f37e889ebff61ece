//! Sandbox escapes, each its own test, against the real bubblewrap sandbox. Every one of
//! them must fail inside the session, and the host must show no trace of it.

use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crate::common::{fixture_site, host_processes_matching, Origin, SECS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_network_not_even_loopback() {
    let origin = Origin::start(&fixture_site());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut t = origin.connect("shell").await;
    let out = t
        .run(
            &format!(
                "for target in 127.0.0.1/{port} 127.0.0.1/{} localhost/{port} 1.1.1.1/53; do \
                 (exec 3<>/dev/tcp/$target) 2>/dev/null && echo CONN''ECTED-$target || echo blo''cked-$target; done; \
                 cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\\n' ,; echo",
                origin.addr.port()
            ),
            SECS(20),
        )
        .await;
    assert!(!out.contains("CONNECTED"), "a connection got out: {out}");
    assert_eq!(out.matches("blocked-").count(), 4, "{out}");
    assert!(
        out.contains("\r\nlo,\r\n"),
        "interfaces other than lo: {out}"
    );
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host listener saw a connection: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_write_outside_the_private_copy() {
    let origin = Origin::start(&fixture_site());
    let site_file = fixture_site().join("content/projects/shell/files/hello.txt");
    let before = std::fs::read(&site_file).unwrap();
    let mut t = origin.connect("shell").await;
    let targets = [
        "/usr/bin/pwned",
        "/etc/pwned",
        "/pwned",
        "/opt/folio/src/pwned",
        "/opt/folio/src/hello.txt",
        "/opt/folio/init",
        "/proc/sys/kernel/hostname",
        "/proc/sysrq-trigger",
        "/dev/pwned",
        "/home/pwned",
        "/bin/sh",
        "/var/pwned",
    ];
    let out = t
        .run(
            &format!(
                "for p in {}; do (echo pwned >> $p) 2>/dev/null && echo WRO''TE-$p; done; \
                 mkdir /pwned-dir 2>/dev/null && echo WRO''TE-mkdir; echo changed-$((6*7)) > ~/hello.txt; cat ~/hello.txt",
                targets.join(" ")
            ),
            SECS(20),
        )
        .await;
    assert!(
        !out.contains("WROTE-/") && !out.contains("WROTE-mkdir"),
        "{out}"
    );
    assert!(
        out.contains("changed-42"),
        "the private copy must be writable: {out}"
    );
    // The host's files are untouched, and the next session starts from the original.
    assert_eq!(std::fs::read(&site_file).unwrap(), before);
    let demo_copy = origin
        .dir
        .read_dir()
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("folio-pty-"))
        .unwrap()
        .path();
    assert_eq!(
        std::fs::read(demo_copy.join("demos/shell/hello.txt")).unwrap(),
        before
    );
    let mut t2 = origin.connect("shell").await;
    let out = t2.run("cat hello.txt", SECS(10)).await;
    assert!(out.contains("hello from the site"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_read_shadow_or_the_secret() {
    let origin = Origin::start(&fixture_site());
    let secret = String::from_utf8(origin.secret.clone()).unwrap();
    let mut t = origin.connect("shell").await;
    let cmd = format!(
        "cat /etc/shadow; cat {secret_path}; ls {dir}; ls /proc/{pid}/; cat /proc/1/environ | tr '\\0' ' '; ls /root; echo procs=$(ls -d /proc/[0-9]* | wc -l)",
        secret_path = origin.secret_path.display(),
        dir = origin.dir.display(),
        pid = origin.pid(),
    );
    let out = t.run(&cmd, SECS(20)).await;
    assert!(!out.contains(&secret), "the secret leaked: {out}");
    assert!(out.contains("/etc/shadow: No such file"), "{out}");
    assert!(
        out.contains(&format!("{}: No such file", origin.secret_path.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("/proc/{}/': No such file", origin.pid()))
            || out.contains(&format!("/proc/{}/: No such file", origin.pid())),
        "{out}"
    );
    // Only the session's own processes are visible (its pid namespace).
    let procs: usize = out.rsplit("procs=").next().unwrap().trim().parse().unwrap();
    assert!(procs < 10, "sees {procs} processes: {out}");
    // The host's shadow file is really there, so "No such file" is the sandbox at work.
    assert!(std::path::Path::new("/etc/shadow").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_is_contained_and_ends_the_session() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    t.run("echo ready", SECS(10)).await;
    t.send("bomb() { bomb | bomb & }; bomb\r").await;
    // The host stays responsive while the bomb goes off.
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    while !t.closed && started.elapsed() < SECS(30) {
        let probe = Instant::now();
        let (code, _) = origin.get("/healthz");
        assert_eq!(code, 200);
        std::process::Command::new("true").status().unwrap();
        worst = worst.max(probe.elapsed());
        t.pump(Duration::from_millis(200)).await;
    }
    assert!(t.closed, "the session was not ended");
    assert!(
        t.notices
            .iter()
            .any(|n| n.contains("limit of 32 processes")),
        "{:?}",
        t.notices
    );
    assert!(worst < SECS(2), "host probe took {worst:?}");
    assert!(
        origin.descendants().is_empty(),
        "left over: {:?}",
        origin.descendants()
    );
    assert_eq!(
        origin.metric("folio_pty_session_exits_total{reason=\"process_limit\"}"),
        Some(1)
    );
}

/// The memory-limit mechanism the origin reports in `/healthz`.
fn limits_mode(origin: &Origin) -> String {
    let (_, body) = origin.get("/healthz");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["limits"].as_str().unwrap_or_default().to_owned()
}

/// With a memory cgroup, the session's memory is capped as a whole and the kernel kills
/// the process that goes over (SIGKILL, status 137). This test needs such a cgroup: without
/// one (the host gives the origin no writable memory cgroup) it fails and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_killed_at_the_cap() {
    let origin = Origin::start(&fixture_site());
    let mode = limits_mode(&origin);
    assert!(
        mode == "cgroup2" || mode == "cgroup1(pids,memory)",
        "the origin has no memory cgroup here (limits: {mode:?}), so the cgroup memory cap \
         cannot be tested: run as root on a cgroup v1 host or with a delegated cgroup v2 \
         subtree (deploy/systemd/folio-pty.service); the rlimits-only fallback is \
         memory_bomb_is_stopped_with_rlimits_only. Logs:\n{}",
        origin.logs()
    );
    let mut t = origin.connect("shell").await;
    // 400 MiB against a 96 MiB session cap.
    let out = t
        .run(
            "perl -e '$x = q(a) x (400*1024*1024); print qq(SUR), qq(VIVED\\n)'; echo rc=$?",
            SECS(60),
        )
        .await;
    assert!(!out.contains("SURVIVED"), "{out}");
    // Killed by the cgroup's OOM killer, not refused memory by an rlimit.
    assert!(
        out.contains("rc=137") && !out.contains("Out of memory"),
        "{out}"
    );
    // The session itself lives on.
    let out = t.run("echo still-$((1+1))", SECS(10)).await;
    assert!(out.contains("still-2"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiocsti_cannot_reach_the_origins_terminal() {
    crate::common::require_bwrap();
    // The origin runs with a terminal of ours as its stdin (as when started by hand), and
    // inherits both ends of it as extra descriptors too (openpty's are not close-on-exec).
    let (mut master, mut slave) = (0, 0);
    assert_eq!(
        unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        },
        0
    );
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let stdin = std::process::Stdio::from(slave.try_clone().unwrap());
    let origin = Origin::start_full(&fixture_site(), &[], None, stdin).unwrap();
    let mut t = origin.connect("shell").await;
    // Push a command into every open descriptor and into /dev/tty, and report, per target,
    // what the ioctl returned ("ok" or the errno): computed by perl, never in the echo.
    let perl = r#"perl -e 'my @r; my $in = $ARGV[0] . "\n"; my $sti = sub { my ($h, $name) = @_; for (split //, $in) { ioctl($h, 0x5412, $_) or return push @r, "$name=" . ($!+0); } push @r, "$name=ok"; }; for my $fd (0..255) { open(my $h, "+<&=", $fd) or next; $sti->($h, "fd$fd"); } if (open(my $t, "+<", "/dev/tty")) { $sti->($t, "tty"); } else { push @r, "tty=open" . ($!+0); } print join(" ", "sti:", @r), "\n"' 'echo injected-$((6*7))'"#;
    let out = t.run(perl, SECS(20)).await;
    let report = out
        .lines()
        .find_map(|l| l.strip_prefix("sti: "))
        .unwrap_or_else(|| panic!("no report from the TIOCSTI attempt: {out:?}"))
        .trim()
        .to_owned();
    // The sandbox's seccomp filter refuses TIOCSTI outright (EPERM = 1) on every descriptor,
    // whatever the kernel's `dev.tty.legacy_tiocsti` says: not even the session's own
    // terminal can be pushed into, so nothing typed by the ioctl ever runs.
    assert_eq!(report, "fd0=1 fd1=1 fd2=1 tty=1", "{out}");
    t.run("true", SECS(10)).await;
    assert_eq!(t.text().matches("injected-42").count(), 0, "{}", t.tail());
    // The shell holds nothing but its own terminal: no descriptor reaches the host's.
    let out = t
        .run(
            "for f in /proc/$$/fd/*; do echo fd:$(readlink $f); done",
            SECS(10),
        )
        .await;
    let fds: Vec<&str> = out.lines().filter(|l| l.starts_with("fd:")).collect();
    assert!(!fds.is_empty(), "{out}");
    let own = fds[0];
    assert!(own.starts_with("fd:/dev/pts/"), "{out}");
    // (the pipe is the command substitution's own, to readlink)
    assert!(
        fds.iter().all(|f| *f == own || f.starts_with("fd:pipe:")),
        "unexpected descriptors: {fds:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut pending: libc::c_int = 0;
    assert_eq!(
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::FIONREAD, &mut pending) },
        0
    );
    assert_eq!(pending, 0, "input was injected into the origin's terminal");
    drop(master);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_processes_die_with_the_session() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    t.run(
        "nohup sleep 5151 >/dev/null 2>&1 & setsid sleep 5152 & (sleep 5153 &); (setsid nohup sleep 5154 >/dev/null 2>&1 &); disown -a; true",
        SECS(10),
    )
    .await;
    // Background jobs may still be between fork and exec when the prompt returns.
    for n in 5151..=5154 {
        let deadline = Instant::now() + SECS(5);
        while host_processes_matching(&format!("sleep {n}")).is_empty() {
            assert!(Instant::now() < deadline, "sleep {n} did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The visitor closes the tab.
    drop(t);
    let deadline = Instant::now() + SECS(5);
    loop {
        let left: Vec<u32> = (5151..=5154)
            .flat_map(|n| host_processes_matching(&format!("sleep {n}")))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes outlived the session: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(origin.descendants().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fill_stops_at_the_cap() {
    let origin = Origin::start(&fixture_site());
    let mut t = origin.connect("shell").await;
    let out = t
        .run(
            "dd if=/dev/zero of=~/fill bs=1M count=64 2>&1 | grep -o 'No space left'; dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1 | grep -o 'No space left'; du -k ~/fill /tmp/fill",
            SECS(30),
        )
        .await;
    assert_eq!(out.matches("No space left\r\n").count(), 2, "{out}");
    for line in out
        .lines()
        .filter(|l| l.contains("fill") && !l.contains("dd ") && !l.contains("du "))
    {
        let kb: u64 = line.split_whitespace().next().unwrap().parse().unwrap_or(0);
        assert!(kb <= 8 * 1024, "{line}");
    }
    // Freed space is usable again; the session is fine.
    let out = t
        .run(
            "rm ~/fill && echo sm''all-ok > ~/small && cat ~/small",
            SECS(10),
        )
        .await;
    assert!(out.contains("small-ok"), "{out}");
}

#[allow(dead_code)]
fn read_all(mut f: std::fs::File) -> String {
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    s
}

/// The fallback where no cgroup is writable: `RLIMIT_NPROC` (counted in the session's own
/// user namespace) still holds a fork bomb to the session's process cap; it lasts until the
/// session ends, which kills all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_is_contained_with_rlimits_only() {
    crate::common::require_bwrap();
    let origin = Origin::start_with(&fixture_site(), &["--no-cgroups"], None).unwrap();
    assert_eq!(limits_mode(&origin), "rlimits-only");
    let mut t = origin.connect("shell").await;
    t.run("echo ready", SECS(10)).await;
    t.send("bomb() { bomb | bomb & }; bomb\r").await;
    let started = Instant::now();
    let mut most = 0;
    while started.elapsed() < SECS(4) {
        let probe = Instant::now();
        assert_eq!(origin.get("/healthz").0, 200);
        assert!(
            probe.elapsed() < SECS(2),
            "host probe took {:?}",
            probe.elapsed()
        );
        most = most.max(origin.descendants().len());
        t.pump(Duration::from_millis(100)).await;
    }
    // The bomb went off: the host saw the session's processes pile up to about the cap
    // (32), and bash inside said fork failed (the rlimit, EAGAIN).
    assert!(
        most >= 24,
        "the bomb never took off: at most {most} processes"
    );
    assert!(
        t.text()
            .contains("fork: retry: Resource temporarily unavailable")
            || t.text().contains("fork: Resource temporarily unavailable"),
        "no fork ever failed: {}",
        t.tail()
    );
    // And it was contained: 32 processes in the sandbox, plus bubblewrap's two and forks
    // caught mid-way.
    assert!(most <= 40, "{most} processes");
    drop(t);
    let deadline = Instant::now() + SECS(10);
    while !origin.descendants().is_empty() {
        assert!(Instant::now() < deadline, "bomb outlived its session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_stopped_with_rlimits_only() {
    crate::common::require_bwrap();
    let origin = Origin::start_with(&fixture_site(), &["--no-cgroups"], None).unwrap();
    assert_eq!(limits_mode(&origin), "rlimits-only");
    let mut t = origin.connect("shell").await;
    let out = t
        .run(
            "perl -e '$x = q(a) x (400*1024*1024); print qq(SUR), qq(VIVED\\n)'; echo rc=$?",
            SECS(60),
        )
        .await;
    assert!(!out.contains("SURVIVED"), "{out}");
    // Refused memory by RLIMIT_AS (perl says so and exits), not killed.
    assert!(
        out.contains("Out of memory") && !out.contains("rc=0") && !out.contains("rc=137"),
        "{out}"
    );
    let out = t.run("echo still-$((1+1))", SECS(10)).await;
    assert!(out.contains("still-2"), "{out}");
}
