//! Bytes kept in an unnamed temporary file instead of in memory, read back when needed.
//!
//! What a build makes early and reads late need not be held in between: the entries the disk
//! caches gain (kept until they are saved, `crate::cache::BlobCache`) and every page's
//! rendered body (read by its page template, then the search index and the feed): at 10,000
//! pages some 300 MB and 250 MB. Written once and read back by offset, they cost a sequential
//! write to the page cache instead (the file has no name: it is gone when the build's process
//! is, however it ends).

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// An unnamed file that byte strings are appended to, from any thread.
pub(crate) struct Spill {
    file: File,
    /// Where the next text goes (each writer reserves its range first).
    end: AtomicU64,
}

/// Where one byte string was written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    at: u64,
    len: u32,
}

impl Span {
    /// How many bytes.
    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }
}

impl Spill {
    /// A spill file in `dir` (created if missing): on the site's disk, not in `/tmp`, which
    /// is often memory itself.
    pub(crate) fn new_in(dir: &Path) -> io::Result<Spill> {
        std::fs::create_dir_all(dir)?;
        Ok(Spill {
            file: tempfile::tempfile_in(dir)?,
            end: AtomicU64::new(0),
        })
    }

    /// Appends `bytes`; where they went, to read them back.
    pub(crate) fn put(&self, bytes: &[u8]) -> io::Result<Span> {
        let len = u32::try_from(bytes.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "over 4 GiB"))?;
        let at = self.end.fetch_add(u64::from(len), Ordering::Relaxed);
        self.file.write_all_at(bytes, at)?;
        Ok(Span { at, len })
    }

    /// Reads what was written at `span` into `buf` (resized to fit).
    pub(crate) fn read_into(&self, span: Span, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.resize(span.len(), 0);
        self.file.read_exact_at(buf, span.at)
    }

    /// The bytes written at `span`.
    pub(crate) fn get(&self, span: Span) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_into(span, &mut buf)?;
        Ok(buf)
    }

    /// The text written at `span` (by [`Spill::put`] of a `str`'s bytes).
    pub(crate) fn get_text(&self, span: Span) -> io::Result<String> {
        String::from_utf8(self.get(span)?)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// A text either still in memory or written to a [`Spill`]: what reads a page's body
/// takes, so it works the same either way.
#[derive(Clone, Copy)]
pub(crate) enum Text<'a> {
    /// Held in memory.
    Memory(&'a str),
    /// Written out.
    Spilled(&'a Spill, Span),
}

impl<'a> Text<'a> {
    /// The text (read from the file when spilled).
    pub(crate) fn read(&self) -> io::Result<Cow<'a, str>> {
        match *self {
            Text::Memory(s) => Ok(Cow::Borrowed(s)),
            Text::Spilled(spill, span) => spill.get_text(span).map(Cow::Owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn texts_written_from_many_threads_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let spill = Arc::new(Spill::new_in(&dir.path().join("a/b")).unwrap());
        let texts: Vec<String> = (0..200)
            .map(|i| format!("<p>page {i} — ünïcode {}</p>", "x".repeat(i * 37)))
            .collect();
        let spans: Vec<Span> = std::thread::scope(|s| {
            let handles: Vec<_> = texts
                .chunks(50)
                .map(|chunk| {
                    let spill = spill.clone();
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|t| spill.put(t.as_bytes()).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for (t, span) in texts.iter().zip(spans) {
            assert_eq!(Text::Spilled(&spill, span).read().unwrap(), t.as_str());
        }
        assert_eq!(Text::Memory("kept").read().unwrap(), "kept");
        // The file has no name: nothing is left in the folder.
        assert_eq!(
            std::fs::read_dir(dir.path().join("a/b")).unwrap().count(),
            0
        );
    }
}
