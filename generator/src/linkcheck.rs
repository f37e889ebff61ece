//! `folio check --external`: every `http(s)` link of the site's markdown requested, many at
//! a time, with a timeout and retries; a 4xx/5xx answer or no answer is an error at each
//! place the link is written, a permanent redirect (301, 308) a warning naming the new URL.
//! Answers that were fine are cached in `.folio/cache/links.json` for a day, so a re-check
//! only asks again about what failed or is new.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use folio_content::diagnostics::{Diagnostic, Diagnostics};

/// An external link and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLink {
    /// The markdown file, as shown in messages.
    pub file: PathBuf,
    /// 1-based (line, column) of the link.
    pub pos: (usize, usize),
    /// The URL as written.
    pub url: String,
}

/// How to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Time allowed for one request, connection included.
    pub timeout: Duration,
    /// Further attempts after a failure that may pass (no answer, 429, 5xx).
    pub retries: u32,
    /// Requests at once.
    pub concurrency: usize,
    /// How long a good answer is trusted.
    pub ttl: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            timeout: Duration::from_secs(10),
            retries: 2,
            concurrency: 8,
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The cache of a site's external link answers.
pub fn cache_path(root: &Path) -> PathBuf {
    root.join(".folio/cache/links.json")
}

/// What a URL answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Outcome {
    /// 2xx, after temporary redirects if any.
    Ok,
    /// Permanently moved (301/308) to this URL, which answered.
    Moved(String),
    /// An error status.
    Status(u16),
    /// No answer (timeout, DNS, TLS…).
    Failed(String),
}

#[derive(Serialize, Deserialize)]
struct Cached {
    /// Seconds since the epoch.
    at: u64,
    outcome: Outcome,
}

/// Checks every link (each URL once), reusing fresh cached answers, and returns what it found
/// at each place a link is written.
pub fn check(root: &Path, links: &[ExternalLink], opts: &CheckOptions) -> Diagnostics {
    let path = cache_path(root);
    let mut cache: BTreeMap<String, Cached> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let key = |u: &str| u.split('#').next().unwrap_or(u).to_string();
    let mut todo: Vec<String> = links.iter().map(|l| key(&l.url)).collect();
    todo.sort();
    todo.dedup();
    todo.retain(|u| {
        cache
            .get(u)
            .is_none_or(|c| now.saturating_sub(c.at) >= opts.ttl.as_secs())
    });

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(opts.timeout))
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .user_agent(concat!("folio-linkcheck/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let queue = Mutex::new(todo);
    let results: Mutex<HashMap<String, Outcome>> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for _ in 0..opts.concurrency.max(1) {
            s.spawn(|| {
                while let Some(url) = queue.lock().map(|mut q| q.pop()).unwrap_or(None) {
                    let outcome = check_one(&agent, &url, opts.retries);
                    if let Ok(mut r) = results.lock() {
                        r.insert(url, outcome);
                    }
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    for (url, outcome) in &results {
        cache.insert(
            url.clone(),
            Cached {
                at: now,
                outcome: outcome.clone(),
            },
        );
    }
    // Only good answers are trusted later: a failure is asked about again next time.
    cache.retain(|_, c| matches!(c.outcome, Outcome::Ok | Outcome::Moved(_)));
    let mut diags = Diagnostics::new();
    if let Some(dir) = path.parent() {
        let saved = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, serde_json::to_vec(&cache).unwrap_or_default()));
        if let Err(e) = saved {
            diags.push(crate::cache::save_warning("the link cache", e));
        }
    }
    for l in links {
        let u = key(&l.url);
        let outcome = results
            .get(&u)
            .or_else(|| cache.get(&u).map(|c| &c.outcome));
        let pos = Some(l.pos);
        match outcome {
            None | Some(Outcome::Ok) => {}
            Some(Outcome::Moved(to)) => diags.push(Diagnostic::warning(
                &l.file,
                pos,
                format!("{} has moved permanently to {to}: link there", l.url),
            )),
            Some(Outcome::Status(s)) => diags.push(Diagnostic::error(
                &l.file,
                pos,
                format!("broken external link: {} answers {s}", l.url),
            )),
            Some(Outcome::Failed(e)) => diags.push(Diagnostic::error(
                &l.file,
                pos,
                format!("broken external link: {} gives no answer ({e})", l.url),
            )),
        }
    }
    diags
}

/// Requests `url`, following redirects (at most 10), with retries.
fn check_one(agent: &ureq::Agent, url: &str, retries: u32) -> Outcome {
    let mut current = url.to_string();
    let mut moved: Option<String> = None;
    for _ in 0..10 {
        let status = match request(agent, &current, retries) {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(e),
        };
        match status {
            (s, Some(location)) if (300..400).contains(&s) => {
                let next = join_url(&current, &location);
                if (s == 301 || s == 308) && moved.as_deref().is_none_or(|m| m == current) {
                    moved = Some(next.clone());
                }
                current = next;
            }
            (s, _) if (200..300).contains(&s) => {
                return match moved {
                    Some(_) => Outcome::Moved(current),
                    None => Outcome::Ok,
                }
            }
            (s, _) => return Outcome::Status(s),
        }
    }
    Outcome::Failed("too many redirects".into())
}

/// One request (HEAD, then GET where HEAD is refused), retried while it may pass: the
/// status and the `Location` header.
fn request(agent: &ureq::Agent, url: &str, retries: u32) -> Result<(u16, Option<String>), String> {
    let mut attempt = 0;
    loop {
        let answer = agent.head(url).call().and_then(|r| {
            if matches!(r.status().as_u16(), 403 | 405 | 501) {
                agent.get(url).call()
            } else {
                Ok(r)
            }
        });
        let again = match &answer {
            Ok(r) => matches!(r.status().as_u16(), 429 | 500..=599),
            Err(_) => true,
        };
        if !again || attempt >= retries {
            return match answer {
                Ok(r) => Ok((
                    r.status().as_u16(),
                    r.headers()
                        .get("location")
                        .and_then(|l| l.to_str().ok())
                        .map(str::to_string),
                )),
                Err(ureq::Error::Timeout(_)) => Err("timed out".into()),
                Err(e) => Err(e.to_string()),
            };
        }
        attempt += 1;
        std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
    }
}

/// A `Location` resolved against the URL that sent it.
fn join_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{}{rest}", &base[..scheme_end]);
    }
    if location.starts_with('/') {
        return format!("{}{location}", &base[..host_end]);
    }
    let dir_end = base
        .rfind('/')
        .filter(|&i| i >= host_end)
        .map_or(base.len(), |i| i + 1);
    let mut dir = base[..dir_end].to_string();
    if !dir.ends_with('/') {
        dir.push('/');
    }
    format!("{dir}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve() {
        assert_eq!(join_url("https://a.dev/x/y", "/z"), "https://a.dev/z");
        assert_eq!(join_url("https://a.dev/x/y", "z"), "https://a.dev/x/z");
        assert_eq!(join_url("https://a.dev", "z"), "https://a.dev/z");
        assert_eq!(
            join_url("http://a.dev/x", "https://b.dev/"),
            "https://b.dev/"
        );
    }
}
