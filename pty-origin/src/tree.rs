//! Copying a demo's folder: from the site into the origin's runtime directory (normalising
//! permissions so the sandbox's unprivileged user can read it), and from there into each
//! session's private tmpfs.

use std::fs;
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

/// Copies `src` into the existing directory `dst`, recursively. Regular files keep their
/// executable bit, symlinks are copied as symlinks (never followed), anything else (sockets,
/// devices, fifos) is skipped. With `normalise`, modes become 0755/0644 so any user can read.
pub fn copy_tree(src: &Path, dst: &Path, normalise: bool) -> io::Result<()> {
    for entry in fs::read_dir(src).map_err(|e| with_path(e, src))? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from).map_err(|e| with_path(e, &from))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            symlink(fs::read_link(&from)?, &to).map_err(|e| with_path(e, &to))?;
        } else if ft.is_dir() {
            fs::create_dir(&to).map_err(|e| with_path(e, &to))?;
            copy_tree(&from, &to, normalise)?;
            if normalise {
                fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
            }
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(|e| with_path(e, &to))?;
            let mode = meta.permissions().mode();
            let mode = if normalise {
                if mode & 0o111 != 0 {
                    0o755
                } else {
                    0o644
                }
            } else {
                mode & 0o7777
            };
            fs::set_permissions(&to, fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// Recursively changes the owner of `path` (not following symlinks), so a build running as
/// an unprivileged sandbox user can write its outputs.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|e| with_path(e, path))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

fn with_path(e: io::Error, p: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}
