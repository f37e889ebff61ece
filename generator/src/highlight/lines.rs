//! A memo of syntect's line parses, one per rendering thread and [`super::Highlighter`].
//!
//! Parsing a line is syntect's regex search, pattern by pattern, at each position: most of a
//! cold build's time on a site with code. Yet the lines of code blocks repeat — blank lines,
//! closing braces, `return this;`, `fi`, `end` — and a line parse is a pure function of the
//! parser's state before it and the line's text: the same pair gives the same scope
//! operations and the same state after. So each (grammar set, line, state) is parsed once and
//! its result reused; the state is compared whole, so a line inside a string or a heredoc is
//! never taken for the same line in code. The output is what parsing every line gives.
//!
//! Per thread, because a parser state may hold a regex match region, which cannot cross
//! threads; a thread's memo belongs to the highlighter that filled it and is emptied when
//! another one parses on that thread. Bounded: long lines are not kept, a memo forgets
//! everything once it holds [`THREAD_LINES`] lines (what recurs is soon back), and a line
//! keeps at most [`STATES_PER_LINE`] states before it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use syntect::parsing::{ParseState, ParsingError, ScopeStackOp, SyntaxSet};

/// What a line parse gives: where each scope operation applies, in bytes into the line.
pub(super) type Ops = Vec<(usize, ScopeStackOp)>;

/// Distinct lines a thread's memo holds before it is emptied: about 3 MB (a line parsed
/// from one state takes some 1.5 KB with its states and operations), so that a many-core
/// machine does not pay much per thread; on the bench corpus 2,048 reuse 47% of lines, 8,192
/// only 50%.
const THREAD_LINES: usize = 2048;
/// Longer lines are parsed every time: rarely repeated, and costly to keep.
const MAX_LINE: usize = 200;
/// States before one line worth keeping (the same `}` closes blocks at several depths).
const STATES_PER_LINE: usize = 4;

/// One line parsed from one state.
struct Parse {
    /// Which grammar set the states' context ids point into.
    set: u8,
    line: Box<str>,
    before: ParseState,
    ops: Ops,
    after: ParseState,
}

/// One thread's parses, keyed by a hash of (grammar set, line), each list holding the states
/// the line was parsed from.
struct ThreadMemo {
    /// The [`LineMemo`] these parses were made for.
    owner: u64,
    hasher: RandomState,
    parses: HashMap<u64, Vec<Parse>>,
}

thread_local! {
    static MEMO: RefCell<Option<ThreadMemo>> = const { RefCell::new(None) };
}

/// Tells highlighters apart, so one never reads parses made from another's grammars.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A highlighter's handle on its threads' memos, and their counts for `--verbose`.
pub(super) struct LineMemo {
    id: u64,
    lines: AtomicUsize,
    reused: AtomicUsize,
}

impl LineMemo {
    /// A memo of its own: no thread holds a parse for it yet.
    pub(super) fn new() -> Self {
        LineMemo {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            lines: AtomicUsize::new(0),
            reused: AtomicUsize::new(0),
        }
    }

    /// What `state.parse_line(line, syntaxes)` gives, leaving `state` as it would; `set` names
    /// `syntaxes` among the grammar sets parsed through this memo.
    pub(super) fn parse_line(
        &self,
        set: u8,
        state: &mut ParseState,
        line: &str,
        syntaxes: &SyntaxSet,
    ) -> Result<Ops, ParsingError> {
        self.lines.fetch_add(1, Ordering::Relaxed);
        if line.len() > MAX_LINE {
            return state.parse_line(line, syntaxes);
        }
        MEMO.with(|m| {
            let mut m = m.borrow_mut();
            let memo = match &mut *m {
                Some(memo) if memo.owner == self.id => memo,
                other => other.insert(ThreadMemo {
                    owner: self.id,
                    hasher: RandomState::new(),
                    parses: HashMap::new(),
                }),
            };
            let hash = memo.hasher.hash_one((set, line));
            if let Some(p) = memo.parses.get(&hash).and_then(|parses| {
                parses
                    .iter()
                    .find(|p| p.set == set && &*p.line == line && p.before == *state)
            }) {
                state.clone_from(&p.after);
                self.reused.fetch_add(1, Ordering::Relaxed);
                return Ok(p.ops.clone());
            }
            let before = state.clone();
            let ops = state.parse_line(line, syntaxes)?;
            if memo.parses.len() >= THREAD_LINES {
                memo.parses.clear();
            }
            let parses = memo.parses.entry(hash).or_default();
            if parses.len() < STATES_PER_LINE {
                parses.push(Parse {
                    set,
                    line: line.into(),
                    before,
                    ops: ops.clone(),
                    after: state.clone(),
                });
            }
            Ok(ops)
        })
    }

    /// Lines parsed through the memo, and how many of them were reused.
    pub(super) fn counts(&self) -> (usize, usize) {
        (
            self.lines.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }
}

/// Empties the memo of every thread of rayon's pool, and of the calling thread.
pub(super) fn forget() {
    let forget = || MEMO.with(|m| drop(m.take()));
    rayon::broadcast(|_| forget());
    forget();
}

#[cfg(test)]
mod tests {
    use super::*;
    use syntect::util::LinesWithEndings;

    /// Every line's operations, parsed by syntect alone or through the memo.
    fn parse(ss: &SyntaxSet, lang: &str, code: &str, memo: Option<&LineMemo>) -> Vec<Ops> {
        let syntax = ss.find_syntax_by_token(lang).expect("known language");
        let mut state = ParseState::new(syntax);
        LinesWithEndings::from(code)
            .map(|line| match memo {
                Some(m) => m.parse_line(0, &mut state, line, ss).unwrap(),
                None => state.parse_line(line, ss).unwrap(),
            })
            .collect()
    }

    #[test]
    fn a_line_seen_in_another_state_is_parsed_again_and_every_parse_equals_syntects() {
        let ss = SyntaxSet::load_defaults_newlines();
        let memo = LineMemo::new();
        // The same lines in code, then inside a string, a heredoc and a comment: the state
        // before them differs, and so must what they parse to.
        let blocks = [
            ("python", "def f():\n    return x\n\n}\n"),
            (
                "python",
                "s = \"\"\"\n    return x\n\n}\n\"\"\"\n    return x\n",
            ),
            ("bash", "cat <<EOF\nfi\n}\nEOF\nfi\n}\n"),
            ("bash", "cat <<END\nEOF\nfi\nEND\nEOF\n"),
            ("rust", "fn f() {\n    x\n}\n/*\n}\n    x\n*/\n}\n"),
            ("js", "const a = `\n}\n`;\n}\n"),
        ];
        for _ in 0..2 {
            for (lang, code) in blocks {
                assert_eq!(
                    parse(&ss, lang, code, Some(&memo)),
                    parse(&ss, lang, code, None),
                    "{lang}: {code}"
                );
            }
        }
        let (lines, reused) = memo.counts();
        assert!(reused > lines / 3, "{reused} of {lines} lines reused");
    }

    #[test]
    fn a_full_memo_is_emptied_and_parses_stay_exact() {
        let ss = SyntaxSet::load_defaults_newlines();
        let memo = LineMemo::new();
        let code: String = (0..THREAD_LINES + 500)
            .map(|i| format!("x{i} = \"{i}\"  # {i}\n"))
            .collect();
        let once = parse(&ss, "python", &code, Some(&memo));
        assert_eq!(once, parse(&ss, "python", &code, None));
        // Only what followed the emptying is still known.
        let (_, before) = memo.counts();
        assert_eq!(parse(&ss, "python", &code, Some(&memo)), once);
        let (_, after) = memo.counts();
        assert!(after - before < THREAD_LINES, "{} reused", after - before);
        assert!(MEMO.with(|m| m.borrow().as_ref().unwrap().parses.len()) <= THREAD_LINES);
        forget();
        assert!(MEMO.with(|m| m.borrow().is_none()));
    }

    #[test]
    fn one_highlighters_parses_are_not_anothers() {
        let ss = SyntaxSet::load_defaults_newlines();
        let (a, b) = (LineMemo::new(), LineMemo::new());
        parse(&ss, "rust", "fn f() {}\n", Some(&a));
        parse(&ss, "rust", "fn f() {}\n", Some(&b));
        assert_eq!(b.counts(), (1, 0));
    }
}
