//! Which handler a request goes to. A hand-written matcher rather than workers-rs's
//! `Router`, because that one answers 405 to `HEAD` on `GET` routes and cannot express
//! "400 for a malformed slug, 404 for an unknown one" before any handler runs.

use crate::api::ApiError;

/// Largest number of slugs one batch read may ask for.
pub const MAX_BATCH_SLUGS: usize = 50;

/// A request method as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: routed like `GET` (the runtime drops the body).
    Head,
    /// `POST`.
    Post,
    /// `OPTIONS`: a CORS preflight.
    Options,
    /// Anything else.
    Other,
}

impl Method {
    /// Parses an HTTP method name.
    pub fn parse(m: &str) -> Self {
        match m.to_ascii_uppercase().as_str() {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }

    fn is_read(self) -> bool {
        matches!(self, Self::Get | Self::Head)
    }
}

/// Where a request goes. Slugs and demo ids in here are already checked for shape (not yet
/// against the manifest: that needs the manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/views/<slug>`: count a visit.
    CountView(String),
    /// `GET /api/views/<slug>`: read one count.
    ReadView(String),
    /// `GET /api/views?slugs=a,b,c`: read several counts.
    ReadViews(Vec<String>),
    /// `GET /api/health`.
    Health,
    /// `GET /api/terminal/status`: could a live session start now (cached 30 s).
    TerminalStatus,
    /// `OPTIONS` on an API route: CORS preflight, answered without touching state.
    Preflight,
    /// `GET /terminal/<demo>`: the WebSocket relay.
    Terminal(String),
    /// `POST /api/contact`: a message from the contact form.
    Contact,
}

/// Whether a page key (what `/api/views` takes; historically called a slug) has the shape the
/// counter accepts — [`crate::counter::is_valid_page_key`]. Anything else is a 400 before any
/// storage is touched.
pub fn is_valid_slug(slug: &str) -> bool {
    crate::counter::is_valid_page_key(slug)
}

fn method_not_allowed(allow: &'static str) -> ApiError {
    ApiError::new(405, "method_not_allowed", format!("allowed: {allow}"))
        .with_header("Allow", allow)
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Routes `method path?query`. `path` is the URL's path, still percent-encoded: an
/// encoded slug is malformed by definition, so nothing is decoded.
pub fn route(method: Method, path: &str, query: &str) -> Result<Route, ApiError> {
    if let Some(rest) = path.strip_prefix("/terminal/") {
        if !method.is_read() {
            return Err(method_not_allowed("GET"));
        }
        if !terminal_protocol::is_valid_demo_id(rest) {
            return Err(ApiError::not_found("unknown_demo", "no such demo"));
        }
        return Ok(Route::Terminal(rest.to_string()));
    }
    let api_route = match path {
        "/api/health" => Some("health"),
        "/api/terminal/status" => Some("terminal_status"),
        "/api/views" | "/api/views/" => Some("batch"),
        "/api/contact" => Some("contact"),
        p if p.starts_with("/api/views/") => Some("one"),
        _ => None,
    };
    let Some(kind) = api_route else {
        return Err(ApiError::not_found("not_found", "no such endpoint"));
    };
    if method == Method::Options {
        return Ok(Route::Preflight);
    }
    match kind {
        "health" if method.is_read() => Ok(Route::Health),
        "health" => Err(method_not_allowed("GET, HEAD")),
        "terminal_status" if method.is_read() => Ok(Route::TerminalStatus),
        "terminal_status" => Err(method_not_allowed("GET, HEAD")),
        "batch" if method.is_read() => {
            let list = query_param(query, "slugs").unwrap_or("");
            let slugs: Vec<String> = list
                .split(['+', ',', ' '])
                .flat_map(|s| s.split("%2C").flat_map(|s| s.split("%2c")))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if slugs.is_empty() {
                return Err(ApiError::bad_request(
                    "missing_slugs",
                    "expected ?slugs=a,b,c",
                ));
            }
            if slugs.len() > MAX_BATCH_SLUGS {
                return Err(ApiError::bad_request(
                    "too_many_slugs",
                    format!("at most {MAX_BATCH_SLUGS} slugs per request"),
                ));
            }
            if let Some(bad) = slugs.iter().find(|s| !is_valid_slug(s)) {
                return Err(ApiError::bad_request(
                    "malformed_slug",
                    format!("malformed slug {bad:?}"),
                ));
            }
            Ok(Route::ReadViews(slugs))
        }
        "batch" => Err(method_not_allowed("GET, HEAD")),
        "contact" if method == Method::Post => Ok(Route::Contact),
        "contact" => Err(method_not_allowed("POST")),
        _ => {
            let slug = &path["/api/views/".len()..];
            if !is_valid_slug(slug) {
                return Err(ApiError::bad_request(
                    "malformed_slug",
                    "a page key is slugs (1-64 characters of a-z, 0-9, '-' and '_') joined by '.'",
                ));
            }
            match method {
                Method::Post => Ok(Route::CountView(slug.to_string())),
                m if m.is_read() => Ok(Route::ReadView(slug.to_string())),
                _ => Err(method_not_allowed("GET, HEAD, POST")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Method::*;

    fn status(r: Result<Route, ApiError>) -> u16 {
        r.map(|_| 200).unwrap_or_else(|e| e.status)
    }

    #[test]
    fn views_routes() {
        assert_eq!(
            route(Post, "/api/views/minirt", ""),
            Ok(Route::CountView("minirt".into()))
        );
        assert_eq!(
            route(Get, "/api/views/minirt", ""),
            Ok(Route::ReadView("minirt".into()))
        );
        assert_eq!(
            route(Head, "/api/views/minirt", ""),
            Ok(Route::ReadView("minirt".into()))
        );
        assert_eq!(
            route(Get, "/api/views", "x=1&slugs=a,b%2Cc"),
            Ok(Route::ReadViews(vec!["a".into(), "b".into(), "c".into()]))
        );
        assert_eq!(route(Options, "/api/views/a", ""), Ok(Route::Preflight));
        // Page keys: a page's path, segments joined by '.'.
        assert_eq!(
            route(Post, "/api/views/projects.minirt", ""),
            Ok(Route::CountView("projects.minirt".into()))
        );
        assert_eq!(
            route(Get, "/api/views", "slugs=blog.minirt,projects.minirt"),
            Ok(Route::ReadViews(vec![
                "blog.minirt".into(),
                "projects.minirt".into()
            ]))
        );
    }

    #[test]
    fn malformed_is_400_unknown_path_is_404_wrong_method_is_405() {
        for bad in [
            "/api/views/UPPER",
            "/api/views/a%2Fb",
            "/api/views/a/b",
            "/api/views/..",
            "/api/views/-a",
            "/api/views/a..b",
            "/api/views/.a",
            "/api/views/a.",
            "/api/views/_nothex",
        ] {
            assert_eq!(status(route(Post, bad, "")), 400, "{bad}");
        }
        assert_eq!(status(route(Get, "/api/views", "")), 400);
        assert_eq!(status(route(Get, "/api/views", "slugs=a,B")), 400);
        let many = vec!["a"; MAX_BATCH_SLUGS + 1].join(",");
        assert_eq!(
            status(route(Get, "/api/views", &format!("slugs={many}"))),
            400
        );
        assert_eq!(status(route(Get, "/api/nope", "")), 404);
        assert_eq!(status(route(Get, "/", "")), 404);
        let e = route(Other, "/api/views/a", "").unwrap_err();
        assert_eq!(e.status, 405);
        assert_eq!(e.extra_headers[0].0, "Allow");
        assert_eq!(status(route(Post, "/api/health", "")), 405);
        assert_eq!(
            route(Get, "/api/terminal/status", ""),
            Ok(Route::TerminalStatus)
        );
        assert_eq!(status(route(Post, "/api/terminal/status", "")), 405);
        assert_eq!(route(Post, "/api/contact", ""), Ok(Route::Contact));
        assert_eq!(status(route(Get, "/api/contact", "")), 405);
    }

    #[test]
    fn terminal_routes() {
        assert_eq!(
            route(Get, "/terminal/minirt", ""),
            Ok(Route::Terminal("minirt".into()))
        );
        assert_eq!(status(route(Get, "/terminal/", "")), 404);
        assert_eq!(status(route(Get, "/terminal/a/b", "")), 404);
        assert_eq!(status(route(Get, "/terminal/..", "")), 404);
        assert_eq!(status(route(Post, "/terminal/minirt", "")), 405);
    }

    #[test]
    fn slug_shape() {
        assert!(is_valid_slug("a"));
        assert!(is_valid_slug("mini-rt_2"));
        assert!(is_valid_slug(&"a".repeat(64)));
        assert!(!is_valid_slug(&"a".repeat(65)));
        assert!(is_valid_slug(&format!("{0}.{0}", "a".repeat(63))));
        assert!(!is_valid_slug(&format!("{0}.{0}.a", "a".repeat(63))));
        assert!(!is_valid_slug(""));
        assert!(!is_valid_slug("_a"));
        assert!(is_valid_slug(&format!("_{}", "0f".repeat(16))));
        assert!(!is_valid_slug("é"));
    }
}
