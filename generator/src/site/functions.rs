//! The site functions templates call (`asset`, `get_url`, `load_data`, `get_page`,
//! `get_section`, `get_tags`), each registered through [`deps::Functions`] so incremental
//! builds see what a render read.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use serde_json::Value;

use crate::assets::Assets;
use crate::cache::Key;
use crate::data::DataFiles;
use crate::templates::Templates;
use folio_content::content::Content;

use super::contexts::{ContextValues, SummaryEntry};
use super::deps;

/// Registers the site functions on `t`, over this build's values: `values` (the page
/// summaries and section contexts), `entries` (each page summary's digest), the tags, the
/// static files' URLs and the data files.
pub(super) fn register(
    t: &mut Templates,
    content: &Content,
    values: &ContextValues,
    entries: &[Arc<SummaryEntry>],
    tags: &[Value],
    assets: &Assets,
    data: DataFiles,
) -> deps::Functions {
    let summaries = &values.summaries;
    let mut fns = deps::Functions::default();
    let urls = Arc::new(assets.urls.clone());
    let u = urls.clone();
    fns.register(
        &mut t.tera,
        "asset",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "asset")?;
            u.get(path.trim_start_matches('/'))
                .map(|s| Value::String(s.clone()))
                .ok_or_else(|| {
                    let mut known: Vec<&String> = u.keys().collect();
                    known.sort();
                    tera::Error::msg(format!(
                        "asset `{path}` not found in static/ (known: {})",
                        known
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
        },
    );
    let links = Arc::new(content.link_table());
    let (l, u2) = (links.clone(), urls);
    fns.register(
        &mut t.tera,
        "get_url",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "get_url")?;
            if let Some(cp) = path.strip_prefix("@/") {
                let (file, anchor) = cp.split_once('#').map_or((cp, None), |(f, a)| (f, Some(a)));
                let url = l.get(file).ok_or_else(|| {
                    tera::Error::msg(format!("get_url: `{path}` is not a published page"))
                })?;
                return Ok(Value::String(
                    anchor.map_or_else(|| url.clone(), |a| format!("{url}#{a}")),
                ));
            }
            Ok(Value::String(
                u2.get(path.trim_start_matches('/'))
                    .cloned()
                    .unwrap_or_else(|| format!("/{}", path.trim_start_matches('/'))),
            ))
        },
    );
    let data = Arc::new(data);
    fns.register(
        &mut t.tera,
        "load_data",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "load_data")?;
            if !arg_required(args, "load_data")? && data.get(&path).is_none() {
                return Ok(Value::Null);
            }
            data.get(&path).cloned().ok_or_else(|| {
                tera::Error::msg(format!(
                    "load_data: no data file `{path}` under data/ (found: {})",
                    data.names().join(", ")
                ))
            })
        },
    );
    let by_path: HashMap<String, usize> = content
        .pages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.file.content_path.clone(), i))
        .collect();
    let all = summaries.clone();
    let by_path = Arc::new(by_path);
    let (paths, listed) = (by_path.clone(), entries.to_vec());
    fns.register_digested(
        &mut t.tera,
        "get_page",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "get_page")?;
            by_path
                .get(path.trim_start_matches("@/"))
                .map(|&i| all[i].clone())
                .ok_or_else(|| {
                    tera::Error::msg(format!("get_page: `{path}` is not a published page"))
                })
        },
        // A page's summary as far as the calling template may read it (`fields::current`);
        // an unknown page is digested from its error.
        move |args: &HashMap<String, Value>| {
            let Some(Value::String(path)) = args.get("path") else {
                return None;
            };
            let &i = paths.get(path.trim_start_matches("@/"))?;
            let d = match super::fields::current() {
                Some(r) => listed[i].listed_digest(&r),
                None => listed[i].digest().clone(),
            };
            let mut h = blake3::Hasher::new();
            h.update(b"get_page\0");
            h.update(d.as_str().unwrap_or_default().as_bytes());
            Some(*h.finalize().as_bytes())
        },
    );
    register_get_section(&mut fns, t, content, values, entries);
    let tags = Arc::new(Value::Array(tags.to_vec()));
    fns.register(
        &mut t.tera,
        "get_tags",
        move |_: &HashMap<String, Value>| Ok((*tags).clone()),
    );
    fns
}

/// Registers `get_section`: a section's summary with every one of its pages.
fn register_get_section(
    fns: &mut deps::Functions,
    t: &mut Templates,
    content: &Content,
    values: &ContextValues,
    entries: &[Arc<SummaryEntry>],
) {
    let (summaries, sections) = (&values.summaries, &values.sections);
    // Built on call: most sections are never asked for.
    let secs: HashMap<String, (Value, Vec<usize>)> = content
        .sections
        .iter()
        .filter_map(|(k, s)| {
            s.file.as_ref().map(|f| {
                (
                    f.content_path.clone(),
                    (sections[k].clone(), s.pages.clone()),
                )
            })
        })
        .collect();
    let secs = Arc::new(secs);
    // Its result lists every page of a section (the home page asks for them all): its calls
    // are digested from the section's own fields and its pages' summary digests — of the
    // fields the calling template may read (`fields::current`) — made on first use: only
    // incremental builds record or replay calls.
    let section_digests = {
        let (secs, entries) = (secs.clone(), entries.to_vec());
        let own: OnceLock<HashMap<String, Key>> = OnceLock::new();
        move |path: &str, metadata_only: bool, attribute: Option<&[String]>| -> Option<Key> {
            let own = own.get_or_init(|| {
                secs.iter()
                    .map(|(path, (v, _))| {
                        let mut v = v.clone();
                        if let Some(o) = v.as_object_mut() {
                            o.remove("pages"); // replaced by every page in the result
                        }
                        (path.clone(), deps::value_digest(&v))
                    })
                    .collect()
            });
            let (_, pages) = secs.get(path)?;
            let reads = super::fields::current();
            let mut h = blake3::Hasher::new();
            h.update(own.get(path)?);
            if metadata_only {
                h.update(b"metadata_only");
                return Some(*h.finalize().as_bytes());
            }
            for &i in pages {
                // Pages picked by an attribute depend on it, whatever the template reads.
                if let Some(path) = attribute {
                    let v = field(&entries[i].value, path);
                    let v = serde_json::to_vec(&v).unwrap_or_default();
                    h.update(&(v.len() as u64).to_le_bytes());
                    h.update(&v);
                }
                let d = match &reads {
                    Some(r) => entries[i].listed_digest(r),
                    None => entries[i].digest().clone(),
                };
                let d = d.as_str().unwrap_or_default();
                h.update(&(d.len() as u64).to_le_bytes());
                h.update(d.as_bytes());
            }
            Some(*h.finalize().as_bytes())
        }
    };
    let all = summaries.clone();
    fns.register_digested(
        &mut t.tera,
        "get_section",
        move |args: &HashMap<String, Value>| {
            let path = arg_str(args, "path", "get_section")?;
            let required = arg_required(args, "get_section")?;
            let metadata_only = arg_metadata_only(args)?;
            let pick = Pick::from_args(args)?;
            if !required && !secs.contains_key(path.trim_start_matches("@/")) {
                return Ok(Value::Null);
            }
            secs.get(path.trim_start_matches("@/"))
                .map(|(v, pages)| {
                    let mut v = v.clone();
                    // get_section lists every page, paginated or not (a large section's
                    // summaries are copied side by side), unless only its own fields
                    // are asked for.
                    v["pages"] = if metadata_only {
                        Value::Array(Vec::new())
                    } else if pick.is_all() {
                        Value::Array(pages.par_iter().map(|&i| all[i].clone()).collect())
                    } else {
                        Value::Array(pick.pages(pages, &all))
                    };
                    v
                })
                .ok_or_else(|| {
                    tera::Error::msg(format!("get_section: `{path}` is not a published section"))
                })
        },
        move |args: &HashMap<String, Value>| {
            let Some(Value::String(path)) = args.get("path") else {
                return None;
            };
            let metadata_only = arg_metadata_only(args).ok()?;
            let pick = Pick::from_args(args).ok()?;
            let attribute = pick.attribute.as_ref().map(|(path, _)| &path[..]);
            section_digests(path.trim_start_matches("@/"), metadata_only, attribute)
        },
    );
}

/// The optional `required` argument of the site function `f` (default true): with
/// `required=false` a missing data file or section is `null` rather than an error, so a
/// theme can use data or sections that a site may not have.
fn arg_required(args: &HashMap<String, Value>, f: &str) -> tera::Result<bool> {
    arg_bool(args, "required", f, true)
}

/// `get_section`'s optional `metadata_only` argument (Zola's; default false): the section
/// without its pages, for a template that shows only its title, count or `extra` — a copy
/// of every page's summary (megabytes in a large section) for nothing otherwise.
fn arg_metadata_only(args: &HashMap<String, Value>) -> tera::Result<bool> {
    arg_bool(args, "metadata_only", "get_section", false)
}

/// The optional boolean argument `name` of the site function `f`, `default` when absent.
fn arg_bool(
    args: &HashMap<String, Value>,
    name: &str,
    f: &str,
    default: bool,
) -> tera::Result<bool> {
    match args.get(name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(tera::Error::msg(format!(
            "{f}: `{name}` must be true or false, got {other}"
        ))),
    }
}

/// Which of a section's pages `get_section` returns, from its optional `attribute`, `value`
/// and `limit` arguments: the pages whose `attribute` (a dotted path, `extra.featured`)
/// equals `value` (as Tera's `filter` filter picks them), at most `limit` of them, in the
/// section's order. A home page that shows a section's three newest or featured pages asks
/// for them, instead of a copy of every page's summary it then filters in the template:
/// at 10,000 pages that copy, and Tera's copies of it, were ~200 MB for one render.
struct Pick {
    attribute: Option<(Vec<String>, Value)>,
    limit: Option<usize>,
}

impl Pick {
    fn from_args(args: &HashMap<String, Value>) -> tera::Result<Pick> {
        let attribute = match (args.get("attribute"), args.get("value")) {
            (None, None) => None,
            (Some(Value::String(a)), Some(v)) if !a.is_empty() => {
                Some((a.split('.').map(str::to_string).collect(), v.clone()))
            }
            (Some(Value::String(_)), None) => {
                return Err(tera::Error::msg(
                    "get_section: `attribute` needs a `value` to compare it with",
                ))
            }
            (None, Some(_)) => {
                return Err(tera::Error::msg(
                    "get_section: `value` needs the `attribute` it is compared with",
                ))
            }
            (Some(other), _) => {
                return Err(tera::Error::msg(format!(
                "get_section: `attribute` must be a field's name (`extra.featured`), got {other}"
            )))
            }
        };
        let limit = match args.get("limit") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                None => {
                    return Err(tera::Error::msg(format!(
                        "get_section: `limit` must be a whole number of pages, got {v}"
                    )))
                }
            },
        };
        Ok(Pick { attribute, limit })
    }

    fn is_all(&self) -> bool {
        self.attribute.is_none() && self.limit.is_none()
    }

    /// The picked pages' summaries, of `pages` (indices into `all`).
    fn pages(&self, pages: &[usize], all: &[Value]) -> Vec<Value> {
        let matches = |v: &Value| match &self.attribute {
            None => true,
            Some((path, want)) => field(v, path) == Some(want),
        };
        pages
            .iter()
            .map(|&i| &all[i])
            .filter(|v| matches(v))
            .take(self.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }
}

/// The field of `v` at a dotted path split into its keys (`["extra", "featured"]`).
fn field<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// The string argument `name` of the site function `f`.
fn arg_str(args: &HashMap<String, Value>, name: &str, f: &str) -> tera::Result<String> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(tera::Error::msg(format!(
            "{f}: `{name}` must be a string, got {other}"
        ))),
        None => Err(tera::Error::msg(format!("{f}: missing argument `{name}`"))),
    }
}
