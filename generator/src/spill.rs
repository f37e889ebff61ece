//! Text kept in an unnamed temporary file instead of in memory, read back when needed.
//!
//! A one-off build renders every page's markdown first and reads each body twice later (its
//! page template, then the search index, and the feed for the newest): at 10,000 pages the
//! bodies are about 250 MB, the largest thing a build would otherwise hold from the markdown
//! phase to the end. Written once and read back by offset, they cost a sequential write to
//! the page cache instead (the file has no name: it is gone when the build's process is,
//! however it ends).

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// An unnamed file that texts are appended to, from any thread.
pub(crate) struct TextSpill {
    file: File,
    /// Where the next text goes (each writer reserves its range first).
    end: AtomicU64,
}

/// Where one text was written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    at: u64,
    len: u32,
}

impl TextSpill {
    /// A spill file in `dir` (created if missing): on the site's disk, not in `/tmp`, which
    /// is often memory itself.
    pub(crate) fn new_in(dir: &Path) -> io::Result<TextSpill> {
        std::fs::create_dir_all(dir)?;
        Ok(TextSpill {
            file: tempfile::tempfile_in(dir)?,
            end: AtomicU64::new(0),
        })
    }

    /// Appends `text`; where it went, to read it back.
    pub(crate) fn put(&self, text: &str) -> io::Result<Span> {
        let len = u32::try_from(text.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "text over 4 GiB"))?;
        let at = self.end.fetch_add(u64::from(len), Ordering::Relaxed);
        self.file.write_all_at(text.as_bytes(), at)?;
        Ok(Span { at, len })
    }

    /// The text written at `span`.
    pub(crate) fn get(&self, span: Span) -> io::Result<String> {
        let mut buf = vec![0; span.len as usize];
        self.file.read_exact_at(&mut buf, span.at)?;
        String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// A text either still in memory or written to a [`TextSpill`]: what reads a page's body
/// takes, so it works the same either way.
#[derive(Clone, Copy)]
pub(crate) enum Text<'a> {
    /// Held in memory.
    Memory(&'a str),
    /// Written out.
    Spilled(&'a TextSpill, Span),
}

impl<'a> Text<'a> {
    /// The text (read from the file when spilled).
    pub(crate) fn read(&self) -> io::Result<Cow<'a, str>> {
        match *self {
            Text::Memory(s) => Ok(Cow::Borrowed(s)),
            Text::Spilled(spill, span) => spill.get(span).map(Cow::Owned),
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
        let spill = Arc::new(TextSpill::new_in(&dir.path().join("a/b")).unwrap());
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
                            .map(|t| spill.put(t).unwrap())
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
