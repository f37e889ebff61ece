//! The seccomp filters every sandboxed process runs under, built with `seccompiler` (BPF from
//! declared rules, not hand-written bytes) and handed to bubblewrap as file descriptors
//! (`--add-seccomp-fd`), which installs them just before it executes the sandbox's init.
//!
//! A session already has no capabilities and its own user namespace; what is left is the kernel
//! code an unprivileged user can still reach, where most escalations of the last years were.
//! Refused with `EPERM`:
//! - new user namespaces: `unshare` and `clone` with `CLONE_NEWUSER`, and `setns` (the nested
//!   user namespace is the door to nf_tables, io_uring and other root-in-a-namespace bugs;
//!   bubblewrap's `--disable-userns` closes it too, where available);
//! - `keyctl`, `add_key`, `request_key` (the kernel keyring), `bpf`, `userfaultfd` (the usual
//!   race-widening tool), `io_uring_setup`/`_enter`/`_register`, `perf_event_open`,
//!   `kexec_load`, `kexec_file_load`;
//! - `mount`, `umount2`, `pivot_root` and the new mount API (`fsopen`, `fsconfig`, `fsmount`,
//!   `fspick`, `open_tree`, `move_mount`, `mount_setattr`), `open_by_handle_at`;
//! - `ptrace` and `process_vm_readv`/`writev`: within a session's pid namespace they could only
//!   reach the session's own processes, but the simplest safe rule is none (demos do not
//!   debug);
//! - `ioctl` `TIOCSTI` (typing into a terminal) and `TIOCLINUX`, compared on the low 32 bits
//!   that the kernel reads, so high bits set cannot slip past.
//!
//! `clone3` gets `ENOSYS` instead: its flags are in memory, where a filter cannot look, so it is
//! refused whole, and `ENOSYS` is what makes the C library fall back to `clone`, whose flags
//! the filter does see. Both filters kill a process that makes a syscall of another
//! architecture (a 32-bit `int 0x80` on x86_64), and on x86_64 the x32 numbers of every refused
//! call are refused as well.

use std::collections::BTreeMap;
use std::io::{self, Seek as _, Write as _};
use std::os::fd::{FromRawFd as _, OwnedFd};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Syscalls refused outright with `EPERM`.
const DENIED: &[i64] = &[
    libc::SYS_setns,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_mount_setattr,
    libc::SYS_open_by_handle_at,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
];

/// x32 system calls on x86_64 are the same numbers with this bit set (plus a few of their
/// own, below); a filter keyed on numbers must list them too.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: i64 = 0x4000_0000;
/// x32's own numbers for `ioctl`, `ptrace`, `kexec_load`, `process_vm_readv`/`writev`.
#[cfg(target_arch = "x86_64")]
const X32_IOCTL: i64 = 514;
#[cfg(target_arch = "x86_64")]
const X32_ONLY_DENIED: &[i64] = &[521, 528, 539, 540];

/// Why a filter could not be built (only on an architecture `seccompiler` does not know).
#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter: {0}")]
pub struct FilterError(String);

fn err(e: impl std::fmt::Display) -> FilterError {
    FilterError(e.to_string())
}

fn arch() -> Result<TargetArch, FilterError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(err)
}

/// `arg` of the syscall, 64 bits, has every bit of `flag` set.
fn has_flag(arg: u8, flag: u64) -> Result<SeccompRule, FilterError> {
    SeccompRule::new(vec![SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(flag),
        flag,
    )
    .map_err(err)?])
    .map_err(err)
}

/// `arg` of the syscall, its low 32 bits (what the kernel reads of an `unsigned int`), is `v`.
fn low32_is(arg: u8, v: u64) -> Result<SeccompRule, FilterError> {
    SeccompRule::new(vec![SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        v,
    )
    .map_err(err)?])
    .map_err(err)
}

/// The `EPERM` filter (see the module's documentation).
pub fn deny_filter() -> Result<BpfProgram, FilterError> {
    let newuser = libc::CLONE_NEWUSER as u64;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in DENIED {
        rules.insert(*nr, vec![]);
    }
    rules.insert(libc::SYS_unshare, vec![has_flag(0, newuser)?]);
    rules.insert(libc::SYS_clone, vec![has_flag(0, newuser)?]);
    // `libc::Ioctl` is `c_ulong` with glibc and `c_int` with musl: the cast is needed there.
    #[allow(clippy::unnecessary_cast)]
    let ioctls = || -> Result<Vec<SeccompRule>, FilterError> {
        Ok(vec![
            low32_is(1, libc::TIOCSTI as u64)?,
            low32_is(1, libc::TIOCLINUX as u64)?,
        ])
    };
    rules.insert(libc::SYS_ioctl, ioctls()?);
    #[cfg(target_arch = "x86_64")]
    {
        let native: Vec<(i64, Vec<SeccompRule>)> =
            rules.iter().map(|(k, v)| (*k, v.clone())).collect();
        for (nr, r) in native {
            rules.insert(nr | X32_SYSCALL_BIT, r);
        }
        rules.insert(X32_IOCTL | X32_SYSCALL_BIT, ioctls()?);
        for nr in X32_ONLY_DENIED {
            rules.insert(nr | X32_SYSCALL_BIT, vec![]);
        }
    }
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch()?,
    )
    .and_then(BpfProgram::try_from)
    .map_err(err)
}

/// The `ENOSYS` filter: `clone3` (see the module's documentation).
pub fn clone3_filter() -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(libc::SYS_clone3, vec![]);
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_clone3 | X32_SYSCALL_BIT, vec![]);
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch()?,
    )
    .and_then(BpfProgram::try_from)
    .map_err(err)
}

/// Both filters, as the bytes of `struct sock_filter` arrays (what bubblewrap reads from the
/// descriptors it is given). Built once at start.
pub fn programs() -> Result<Vec<Vec<u8>>, FilterError> {
    Ok(vec![to_bytes(&deny_filter()?), to_bytes(&clone3_filter()?)])
}

fn to_bytes(prog: &BpfProgram) -> Vec<u8> {
    let mut out = Vec::with_capacity(prog.len() * 8);
    for ins in prog {
        out.extend_from_slice(&ins.code.to_ne_bytes());
        out.push(ins.jt);
        out.push(ins.jf);
        out.extend_from_slice(&ins.k.to_ne_bytes());
    }
    out
}

/// A fresh anonymous file (close-on-exec) holding `bytes`, read from its start: one per
/// sandbox start, since bubblewrap reads each descriptor to its end.
pub fn memfd(bytes: &[u8]) -> io::Result<OwnedFd> {
    let fd = unsafe { libc::memfd_create(c"folio-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_build_for_this_architecture() {
        let progs = programs().unwrap();
        assert_eq!(progs.len(), 2);
        for p in progs {
            assert!(!p.is_empty() && p.len() % 8 == 0);
            // The kernel's limit on one filter's length.
            assert!(p.len() / 8 <= 4096);
        }
    }

    /// Installs the filters in a forked child and checks what they refuse and let through.
    #[test]
    #[allow(clippy::unnecessary_cast)] // `libc::Ioctl` is not `u64` everywhere
    fn filters_refuse_what_they_list_and_nothing_else() {
        let progs = [deny_filter().unwrap(), clone3_filter().unwrap()];
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // Child: only raw syscalls from here; the exit code says which check failed.
            let code = unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                let mut bad = 0;
                for p in &progs {
                    if seccompiler::apply_filter(p).is_err() {
                        libc::_exit(100);
                    }
                }
                let errno = || *libc::__errno_location();
                if libc::unshare(libc::CLONE_NEWUSER) != -1 || errno() != libc::EPERM {
                    bad = 1;
                } else if libc::syscall(libc::SYS_clone3, 0usize, 0usize) != -1
                    || errno() != libc::ENOSYS
                {
                    bad = 2;
                } else if libc::syscall(libc::SYS_keyctl, 0, -3, 0) != -1 || errno() != libc::EPERM
                {
                    bad = 3;
                } else if libc::syscall(
                    libc::SYS_ioctl,
                    0,
                    0xffff_ffff_0000_0000u64 | libc::TIOCSTI as u64,
                    c" ".as_ptr(),
                ) != -1
                    || errno() != libc::EPERM
                {
                    bad = 4;
                } else if libc::getpid() <= 0 {
                    bad = 5;
                } else if libc::unshare(0) != 0 {
                    // Without CLONE_NEWUSER, unshare is not the filter's business.
                    bad = 6;
                }
                bad
            };
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "check failed in the child");
    }
}
