/* The kernel-attack-surface battery of hostile_sandbox.rs: run inside a session, it tries each
 * call the sandbox's seccomp filter must refuse, and a few it must allow, and prints one line
 * per call: "R: <name> ok" or "R: <name> <errno>". The format string is split ('R%c') so the
 * typed source never contains a result line. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *name, long r) {
    if (r < 0)
        printf("R%c %s %d\n", ':', name, errno);
    else
        printf("R%c %s ok\n", ':', name);
    fflush(stdout);
}

static void *thread_main(void *p) { return p; }

/* A raw clone-like call: if the kernel lets it through, the child leaves at once. */
static long forkish(long r) {
    if (r == 0)
        _exit(0);
    if (r > 0)
        waitpid((pid_t)r, NULL, 0);
    return r;
}

int main(void) {
    static char buf[4096];
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    say("fork", child);
    pthread_t t;
    int e = pthread_create(&t, NULL, thread_main, NULL);
    if (e == 0) {
        pthread_join(t, NULL);
        say("thread", 0);
    } else {
        errno = e;
        say("thread", -1);
    }
    struct winsize ws;
    say("tiocgwinsz", ioctl(0, TIOCGWINSZ, &ws));

    say("unshare", unshare(CLONE_NEWUSER));
    say("clone", forkish(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)));
    /* struct clone_args with only exit_signal = SIGCHLD: a plain fork, were it allowed. */
    unsigned long long ca[11];
    memset(ca, 0, sizeof ca);
    ca[4] = SIGCHLD;
    say("clone3", forkish(syscall(SYS_clone3, ca, sizeof ca)));
    say("setns", syscall(SYS_setns, 0, 0));
    say("keyctl", syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
    say("add_key", syscall(SYS_add_key, "user", "folio", "x", 1, -3));
    say("request_key", syscall(SYS_request_key, "user", "folio", 0, 0));
    say("bpf", syscall(SYS_bpf, 0, buf, 64));
    say("userfaultfd", syscall(SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */));
    memset(buf, 0, sizeof buf);
    say("io_uring_setup", syscall(SYS_io_uring_setup, 1, buf));
    say("io_uring_enter", syscall(SYS_io_uring_enter, -1, 0, 0, 0, 0, 0));
    say("io_uring_register", syscall(SYS_io_uring_register, -1, 0, 0, 0));
    say("perf_event_open", syscall(SYS_perf_event_open, buf, 0, -1, -1, 0));
    say("kexec_load", syscall(SYS_kexec_load, 0, 0, 0, 0));
    say("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0, "", 0));
    say("mount", mount("none", "/tmp", "tmpfs", 0, NULL));
    say("umount2", umount2("/tmp", MNT_DETACH));
    say("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
    say("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    say("fsconfig", syscall(SYS_fsconfig, -1, 0, 0, 0, 0));
    say("fsmount", syscall(SYS_fsmount, -1, 0, 0));
    say("fspick", syscall(SYS_fspick, AT_FDCWD, "/tmp", 0));
    say("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/tmp", 0));
    say("move_mount", syscall(SYS_move_mount, -1, "", -1, "", 0));
    say("mount_setattr", syscall(SYS_mount_setattr, -1, "", 0, buf, 32));
    say("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, buf, 0));
    say("ptrace", syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, child, 0, 0));
    struct iovec local = {buf, 8}, remote = {buf, 8};
    say("process_vm_readv", syscall(SYS_process_vm_readv, child, &local, 1, &remote, 1, 0));
    say("tiocsti", ioctl(0, TIOCSTI, " "));
    /* The ioctl command is 32 bits: high bits set must not slip past the filter. */
    say("tiocsti_high", syscall(SYS_ioctl, 0, 0xffffffff00000000UL | TIOCSTI, " "));
    char sub = 12;
    say("tioclinux", ioctl(0, TIOCLINUX, &sub));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
#if defined(__x86_64__)
    /* A 32-bit syscall (getpid through int 0x80) has another audit arch: the filter kills. */
    printf("R%c int80 start\n", ':');
    fflush(stdout);
    long pid;
    __asm__ volatile("int $0x80" : "=a"(pid) : "a"(20) : "memory");
    say("int80", pid);
#endif
    return 0;
}
