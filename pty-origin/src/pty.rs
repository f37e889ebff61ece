//! Pseudo-terminals: one per session, opened race-free with close-on-exec set atomically
//! (so a session spawned concurrently never inherits another session's terminal), with a
//! non-blocking master driven by tokio.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use terminal_protocol::WindowSize;
use tokio::io::unix::AsyncFd;

/// The master side of a session's PTY. Reads and writes may run concurrently from two
/// tasks (tokio's `AsyncFd` tracks read and write readiness separately).
pub struct PtyMaster {
    fd: AsyncFd<OwnedFd>,
}

/// Opens a PTY pair sized `size`: the master (non-blocking) and the slave the demo gets as
/// its stdin, stdout and stderr. Both are close-on-exec.
pub fn open(size: WindowSize) -> io::Result<(PtyMaster, OwnedFd)> {
    let master = unsafe {
        libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if master < 0 {
        return Err(io::Error::last_os_error());
    }
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let unlock: libc::c_int = 0;
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // TIOCGPTPEER opens the slave through the master, without a path lookup in /dev/pts.
    let slave = cvt(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    set_size(master.as_raw_fd(), size)?;
    set_utf8(slave.as_raw_fd())?;
    // SAFETY: `master` is an owned, open descriptor; the AsyncFd owns it until the
    // PtyMaster is dropped, so it is never closed while registered.
    let fd = unsafe { AsyncFd::register(master) }.map_err(io::Error::from)?;
    Ok((PtyMaster { fd }, slave))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn set_size(fd: RawFd, size: WindowSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(drop)
}

/// IUTF8 makes the line discipline erase whole UTF-8 characters on backspace.
fn set_utf8(fd: RawFd) -> io::Result<()> {
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::tcgetattr(fd, &mut t) })?;
    t.c_iflag |= libc::IUTF8;
    cvt(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) }).map(drop)
}

/// Duplicates `fd` with close-on-exec (for the three stdio handles of the child).
pub fn dup(fd: &OwnedFd) -> io::Result<OwnedFd> {
    fd.as_fd().try_clone_to_owned()
}

impl PtyMaster {
    /// Resizes the terminal; the kernel sends SIGWINCH to the foreground process group.
    pub fn resize(&self, size: WindowSize) -> io::Result<()> {
        set_size(self.fd.get_ref().as_raw_fd(), size)
    }

    /// Reads what the demo wrote. `Ok(0)` means every slave handle is closed (EIO on Linux
    /// is mapped to it): the session's processes are all gone.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| raw_read(fd.get_ref().as_raw_fd(), buf)) {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads without waiting: `Ok(None)` if nothing is buffered right now. Used to batch
    /// several small PTY reads into one WebSocket frame.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match raw_read(self.fd.get_ref().as_raw_fd(), buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(Some(0)),
            Err(e) => Err(e),
        }
    }

    /// Writes all of `data` (the visitor's keystrokes), waiting while the PTY's input
    /// buffer is full, which in turn stops reading the WebSocket: backpressure both ways.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| raw_write(fd.get_ref().as_raw_fd(), data)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}

fn raw_read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn raw_write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_through_line_discipline() {
        let (master, slave) = open(WindowSize::new(80, 24).unwrap()).unwrap();
        master.write_all(b"hi\n").await.unwrap();
        // Echo is on by default: the master reads back what it wrote.
        let mut buf = [0u8; 64];
        let n = master.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"hi"));
        drop(slave);
    }

    #[tokio::test]
    async fn closed_slave_reads_as_eof() {
        let (master, slave) = open(WindowSize::new(80, 24).unwrap()).unwrap();
        drop(slave);
        let mut buf = [0u8; 64];
        assert_eq!(master.read(&mut buf).await.unwrap(), 0);
    }
}
