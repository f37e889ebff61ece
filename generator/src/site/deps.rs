//! Dependency tracking for incremental builds (`folio serve`): what a template render read
//! besides its own context.
//!
//! A render's output is a function of three things: the templates it can reach (see
//! [`crate::templates::Templates::closure_digest`]), its context (hashed whole), and whatever
//! the site functions (`get_page`, `get_section`, `load_data`, `asset`, …) returned to it.
//! The last is recorded here: every site function is registered through [`Functions`], which
//! notes each call (name, arguments, a digest of the result) made on the current thread while
//! [`recording`] is active. On the next build a render is reused only if calling the same
//! functions with the same arguments returns the same digests.
//!
//! Not tracked: Tera's own `now()`, `get_random()` and `get_env()` (a full build is not
//! reproducible with them either), and any filter or function registered on the Tera
//! instance without [`Functions::register`] that reads site data — register such functions
//! here, or their readers will not be re-rendered when that data changes.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use tera::Tera;

use crate::cache::Key;

/// One call a template made to a site function, and a digest of what it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    /// The function's name (`get_section`).
    pub function: &'static str,
    /// Its arguments as canonical JSON (keys sorted).
    pub args: String,
    /// A digest of the result (value or error).
    pub digest: Key,
}

type Calls = BTreeMap<(&'static str, String), Key>;

/// What each call replayed in one build returned now, by function and arguments: every page
/// of a section asks the same, and the lookup is most of a replay, hence a hash cheaper than
/// the default one (the keys are the site's own calls, not a visitor's input).
pub(crate) type ReplayMemo<'r> = rustc_hash::FxHashMap<(&'static str, &'r str), Key>;

thread_local! {
    static RECORDER: RefCell<Option<Calls>> = const { RefCell::new(None) };
}

/// Runs `f` (a template render on this thread) and returns what it read through site
/// functions, each distinct call once.
pub(crate) fn recording<T>(f: impl FnOnce() -> T) -> (T, Vec<Read>) {
    let outer = RECORDER.with(|r| r.replace(Some(Calls::new())));
    let out = f();
    let calls = RECORDER.with(|r| r.replace(outer)).unwrap_or_default();
    let reads = calls
        .into_iter()
        .map(|((function, args), digest)| Read {
            function,
            args,
            digest,
        })
        .collect();
    (out, reads)
}

fn canonical_args(args: &HashMap<String, Value>) -> String {
    let sorted: BTreeMap<&String, &Value> = args.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

/// A digest of a site function's result.
fn result_digest(r: &tera::Result<Value>) -> Key {
    let mut h = blake3::Hasher::new();
    match r {
        Ok(v) => {
            h.update(b"ok\0");
            let _ = serde_json::to_writer(&mut h, v);
        }
        Err(e) => {
            h.update(b"err\0");
            h.update(e.to_string().as_bytes());
        }
    }
    *h.finalize().as_bytes()
}

/// A digest of a JSON value (serialised), for context fingerprints.
pub(crate) fn value_digest(v: &Value) -> Key {
    let mut h = blake3::Hasher::new();
    let _ = serde_json::to_writer(&mut h, v);
    *h.finalize().as_bytes()
}

type SiteFn = Arc<dyn Fn(&HashMap<String, Value>) -> tera::Result<Value> + Send + Sync>;
type DigestFn = Arc<dyn Fn(&HashMap<String, Value>) -> Option<Key> + Send + Sync>;

/// The site functions of one build: registered on its Tera instance so that every call is
/// recorded, and kept so a previous build's calls can be replayed against this build's data.
#[derive(Default, Clone)]
pub(crate) struct Functions {
    map: HashMap<&'static str, (SiteFn, DigestFn)>,
}

impl Functions {
    /// Registers `f` as the template function `name` on `tera`, recording its calls. Every
    /// function a template can reach site data through must be registered this way, or
    /// incremental builds cannot see what depends on it.
    pub(crate) fn register(
        &mut self,
        tera: &mut Tera,
        name: &'static str,
        f: impl Fn(&HashMap<String, Value>) -> tera::Result<Value> + Send + Sync + 'static,
    ) {
        self.register_digested(tera, name, f, |_| None);
    }

    /// [`Functions::register`] for a function whose result is large (a section with every
    /// page): `digest` gives a digest of the result for given arguments without building and
    /// serialising it, from digests of what the result is made of (`None`: digest the result
    /// itself). It must change whenever the result would; it is used both when a call is
    /// recorded and when it is replayed, so the two always compare like with like.
    pub(crate) fn register_digested(
        &mut self,
        tera: &mut Tera,
        name: &'static str,
        f: impl Fn(&HashMap<String, Value>) -> tera::Result<Value> + Send + Sync + 'static,
        digest: impl Fn(&HashMap<String, Value>) -> Option<Key> + Send + Sync + 'static,
    ) {
        let f: SiteFn = Arc::new(f);
        let digest: DigestFn = Arc::new(digest);
        self.map.insert(name, (f.clone(), digest.clone()));
        tera.register_function(name, move |args: &HashMap<String, Value>| {
            let r = f(args);
            RECORDER.with(|rec| {
                if let Some(calls) = rec.borrow_mut().as_mut() {
                    let d = digest(args).unwrap_or_else(|| result_digest(&r));
                    calls.insert((name, canonical_args(args)), d);
                }
            });
            r
        });
    }

    /// Whether calling the function of `read` now returns what it returned then. `memo`
    /// caches results within one build (many pages make the same calls).
    pub(crate) fn still_valid<'r>(&self, read: &'r Read, memo: &mut ReplayMemo<'r>) -> bool {
        let key = (read.function, read.args.as_str());
        if let Some(d) = memo.get(&key) {
            return *d == read.digest;
        }
        let now = match self.map.get(read.function) {
            Some((f, digest)) => match serde_json::from_str::<HashMap<String, Value>>(&read.args) {
                Ok(args) => digest(&args).unwrap_or_else(|| result_digest(&f(&args))),
                Err(_) => return false,
            },
            None => return false,
        };
        memo.insert(key, now);
        now == read.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_recorded_only_while_recording_and_replayed() {
        let mut tera = Tera::default();
        let mut fns = Functions::default();
        let value = Arc::new(std::sync::Mutex::new(1));
        let v = value.clone();
        fns.register(&mut tera, "num", move |_| {
            Ok(Value::from(*v.lock().unwrap()))
        });
        tera.add_raw_template("t", "{{ num(a=1) }}{{ num(a=1) }}{{ num(b=2) }}")
            .unwrap();
        let ctx = tera::Context::new();
        assert_eq!(tera.render("t", &ctx).unwrap(), "111");
        let (out, reads) = recording(|| tera.render("t", &ctx).unwrap());
        assert_eq!(out, "111");
        assert_eq!(reads.len(), 2, "{reads:?}");
        let mut memo = ReplayMemo::default();
        assert!(reads.iter().all(|r| fns.still_valid(r, &mut memo)));
        *value.lock().unwrap() = 2;
        let mut memo = ReplayMemo::default();
        assert!(!fns.still_valid(&reads[0], &mut memo));
        let (_, none) = recording(|| ());
        assert!(none.is_empty());
    }

    #[test]
    fn a_digested_function_is_recorded_and_replayed_by_its_digest() {
        let mut tera = Tera::default();
        let mut fns = Functions::default();
        let items = Arc::new(std::sync::Mutex::new(vec![1, 2, 3]));
        let (a, b) = (items.clone(), items.clone());
        fns.register_digested(
            &mut tera,
            "items",
            move |_| Ok(Value::from(a.lock().unwrap().clone())),
            // Stands for the result without building it: a digest of what it is made of.
            move |_| Some(*blake3::hash(format!("{:?}", b.lock().unwrap()).as_bytes()).as_bytes()),
        );
        tera.add_raw_template("t", "{{ items() | length }}")
            .unwrap();
        let (out, reads) = recording(|| tera.render("t", &tera::Context::new()).unwrap());
        assert_eq!(out, "3");
        assert_eq!(reads.len(), 1);
        assert!(fns.still_valid(&reads[0], &mut ReplayMemo::default()));
        items.lock().unwrap().push(4);
        assert!(!fns.still_valid(&reads[0], &mut ReplayMemo::default()));
    }
}
