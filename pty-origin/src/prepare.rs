//! Preparing demos at origin start: each demo's folder is copied from the site into the
//! origin's runtime directory and its `build` step run there once, in the sandbox; every
//! session then starts from a private copy of that built folder.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use folio_content::demo::DemoSpec;

use crate::sandbox::Sandbox;

/// Longest a build step may run.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// A demo ready to serve: its spec and its built folder.
#[derive(Debug, Clone)]
pub struct PreparedDemo {
    /// What the site declared.
    pub spec: DemoSpec,
    /// The built copy of the demo's workdir, mounted read-only into every session.
    pub dir: PathBuf,
}

/// Why a demo could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Copying the demo's folder failed.
    #[error("demo {demo}: copying {workdir}: {source}")]
    Copy {
        /// Demo id.
        demo: String,
        /// The site folder being copied.
        workdir: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The build step could not run.
    #[error("demo {demo}: build step could not run: {source}")]
    BuildSpawn {
        /// Demo id.
        demo: String,
        /// Cause.
        source: io::Error,
    },
    /// The build step failed.
    #[error("demo {demo}: build step `{script}` failed ({status}):\n{output}")]
    BuildFailed {
        /// Demo id.
        demo: String,
        /// The build command.
        script: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its combined output.
        output: String,
    },
}

/// Copies and builds one demo under `sandbox.runtime()/demos/<id>`.
pub async fn prepare(sandbox: &Sandbox, spec: &DemoSpec) -> Result<PreparedDemo, PrepareError> {
    let copy_err = |source| PrepareError::Copy {
        demo: spec.id.clone(),
        workdir: spec.workdir.clone(),
        source,
    };
    let dir = sandbox.runtime().join("demos").join(&spec.id);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(copy_err)?;
    }
    fs::create_dir_all(&dir).map_err(copy_err)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(copy_err)?;
    crate::tree::copy_tree(&spec.workdir, &dir, true).map_err(copy_err)?;
    if let Some(script) = &spec.build {
        let build_uid = sandbox.build_uid().filter(|_| sandbox.is_enabled());
        if let Some(uid) = build_uid {
            crate::tree::chown_tree(&dir, uid, uid).map_err(copy_err)?;
        }
        let started = Instant::now();
        let name = format!("build-{}-{}", spec.id, std::process::id());
        let (status, output) = sandbox
            .run_build(&dir, script, BUILD_TIMEOUT, &name)
            .await
            .map_err(|source| PrepareError::BuildSpawn {
                demo: spec.id.clone(),
                source,
            })?;
        if let Some(_uid) = build_uid {
            crate::tree::chown_tree(&dir, 0, 0).map_err(copy_err)?;
        }
        make_readable(&dir).map_err(copy_err)?;
        crate::info!(
            "build",
            None,
            {"demo": spec.id, "status": status.code(), "ms": started.elapsed().as_millis() as u64, "output_tail": tail(&output, 2000)}
        );
        if !status.success() {
            return Err(PrepareError::BuildFailed {
                demo: spec.id.clone(),
                script: script.clone(),
                status,
                output,
            });
        }
    }
    Ok(PreparedDemo {
        spec: spec.clone(),
        dir,
    })
}

/// Adds read (and, for directories and executables, search) permission for everyone, so
/// every session's unprivileged user can copy the build's outputs.
fn make_readable(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode();
    let add = if meta.is_dir() || mode & 0o111 != 0 {
        0o555
    } else {
        0o444
    };
    fs::set_permissions(
        path,
        fs::Permissions::from_mode((mode | add) & 0o7777 & !0o022),
    )?;
    if meta.is_dir() {
        for e in fs::read_dir(path)? {
            make_readable(&e?.path())?;
        }
    }
    Ok(())
}

fn tail(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
