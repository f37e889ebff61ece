//! The security headers on every Worker response, and CORS.
//!
//! The policy is the `/*` block of `public/_headers`, which `folio build` also writes into
//! the edge manifest: static assets get it from Cloudflare's asset layer, Worker responses
//! from here, so both carry one policy from one source. The Worker adds only what its own
//! responses need (`Cache-Control: no-store`, CORS for the site's own origin).

use crate::api::ApiError;
use crate::config::EdgeManifest;

/// A header name and value.
pub type Header = (String, String);

/// Used only while the manifest cannot be read (a broken deploy): the strictest policy,
/// so a failure never ships a weaker one. Nothing here is a copy of the site's policy.
pub fn fallback_policy() -> Vec<Header> {
    [
        (
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

/// The headers a Worker response gets: the site's policy (or [`fallback_policy`]), then
/// `Cache-Control: no-store` (counts and errors must not be cached by browsers or shared
/// caches), then the CORS headers [`cors_headers`] decided on.
pub fn response_headers(manifest: Option<&EdgeManifest>, cors: &[Header]) -> Vec<Header> {
    let mut out = match manifest {
        Some(m) => m.headers.clone(),
        None => fallback_policy(),
    };
    out.retain(|(n, _)| !n.eq_ignore_ascii_case("cache-control"));
    out.push(("Cache-Control".into(), "no-store".into()));
    out.extend(cors.iter().cloned());
    out
}

/// Whether a request's `Origin` is allowed: one of `allowed` (the site's own origin, the
/// Worker's own hostname and any `ALLOWED_ORIGINS`), compared exactly after normalising.
/// `None` (no `Origin` header: a non-browser client) is for the caller to decide.
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    match crate::config::origin_of(origin) {
        Some(o) => allowed.contains(&o),
        None => false,
    }
}

/// CORS headers for an API response. Browsers need none for the site's own pages (same
/// origin); they are sent only when a *listed* origin asks (e.g. the site on its custom
/// domain calling the Worker's workers.dev hostname), echoing that one origin. Never `*`,
/// never credentials. `Vary: Origin` always, so caches keep answers apart.
pub fn cors_headers(origin: Option<&str>, allowed: &[String], preflight: bool) -> Vec<Header> {
    let mut out = vec![("Vary".to_string(), "Origin".to_string())];
    if let Some(o) = origin.filter(|o| origin_allowed(o, allowed)) {
        out.push((
            "Access-Control-Allow-Origin".into(),
            crate::config::origin_of(o).expect("checked by origin_allowed"),
        ));
        if preflight {
            out.push((
                "Access-Control-Allow-Methods".into(),
                "GET, HEAD, POST".into(),
            ));
            out.push(("Access-Control-Allow-Headers".into(), "Content-Type".into()));
            out.push(("Access-Control-Max-Age".into(), "600".into()));
        }
    }
    out
}

/// The origins allowed to call the API from a browser and to open terminals: the site's
/// canonical origin, the origin the request itself was made to (so the Worker's own
/// hostname and `wrangler dev` work; that is same-origin by definition) and any extras.
pub fn allowed_origins(
    manifest: Option<&EdgeManifest>,
    request_url: &str,
    extra: &[String],
) -> Vec<String> {
    let mut out: Vec<String> = manifest
        .map(|m| m.site_origin.clone())
        .into_iter()
        .collect();
    out.extend(crate::config::origin_of(request_url));
    out.extend(extra.iter().cloned());
    out.sort();
    out.dedup();
    out
}

/// Cross-site request forgery: a browser on a foreign site may not make a visitor's browser
/// count a view. A request without `Origin` is not a browser's (it could forge any header
/// anyway) and passes; it is still rate limited.
pub fn check_write_origin(
    post: bool,
    origin: Option<&str>,
    allowed: &[String],
) -> Result<(), ApiError> {
    match origin {
        Some(o) if post && !origin_allowed(o, allowed) => Err(ApiError::new(
            403,
            "forbidden_origin",
            "cross-origin writes are not allowed",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_foreign_browser_writes_are_refused() {
        let site = vec!["https://a.dev".to_string()];
        assert!(check_write_origin(true, Some("https://a.dev"), &site).is_ok());
        assert!(check_write_origin(true, None, &site).is_ok());
        assert!(check_write_origin(false, Some("https://evil.dev"), &site).is_ok());
        let e = check_write_origin(true, Some("https://evil.dev"), &site).unwrap_err();
        assert_eq!((e.status, e.code), (403, "forbidden_origin"));
    }

    fn manifest() -> EdgeManifest {
        EdgeManifest::parse(
            r#"{"version":1,"base_url":"https://ada.dev","headers":[
            ["Content-Security-Policy","default-src 'self'"],["Cache-Control","public"],
            ["Strict-Transport-Security","max-age=63072000"]],"pages":[],"demos":[]}"#,
        )
        .unwrap()
    }

    #[test]
    fn policy_comes_from_the_manifest_in_order() {
        let h = response_headers(Some(&manifest()), &[]);
        let names: Vec<_> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Security-Policy",
                "Strict-Transport-Security",
                "Cache-Control"
            ]
        );
        assert_eq!(h[0].1, "default-src 'self'");
        assert_eq!(h[2].1, "no-store");
    }

    #[test]
    fn fallback_is_strict() {
        let h = response_headers(None, &[]);
        let csp = &h
            .iter()
            .find(|(n, _)| n == "Content-Security-Policy")
            .unwrap()
            .1;
        assert!(csp.starts_with("default-src 'none'"));
    }

    #[test]
    fn origins() {
        let allowed = allowed_origins(Some(&manifest()), "http://127.0.0.1:8787/api/x", &[]);
        assert_eq!(allowed, vec!["http://127.0.0.1:8787", "https://ada.dev"]);
        assert!(origin_allowed("https://ada.dev", &allowed));
        assert!(origin_allowed("HTTPS://ADA.dev:443", &allowed));
        assert!(!origin_allowed("https://ada.dev.evil.com", &allowed));
        assert!(!origin_allowed("https://evil.com", &allowed));
        assert!(!origin_allowed("null", &allowed));
    }

    #[test]
    fn cors_only_for_listed_origins() {
        let allowed = vec!["https://ada.dev".to_string()];
        let none = cors_headers(Some("https://evil.com"), &allowed, true);
        assert_eq!(none, vec![("Vary".into(), "Origin".into())]);
        let yes = cors_headers(Some("https://ada.dev"), &allowed, true);
        assert!(yes.contains(&(
            "Access-Control-Allow-Origin".into(),
            "https://ada.dev".into()
        )));
        assert!(yes.iter().all(|(_, v)| v != "*"));
        assert!(!yes
            .iter()
            .any(|(n, _)| n == "Access-Control-Allow-Credentials"));
        assert_eq!(cors_headers(None, &allowed, false).len(), 1);
    }
}
