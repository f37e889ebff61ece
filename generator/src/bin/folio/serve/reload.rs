//! Live reload: the WebSocket (`/__folio/ws`) over which open tabs hear about rebuilds, and
//! the script (`/__folio/reload.js`, source in `reload.js` beside this file) that reloads
//! them, swaps stylesheets, or shows a failed build in an overlay.
//!
//! The script is injected into HTML responses by the server only ([`inject`]); the built
//! files stay byte-identical to `folio build`'s. It is an external, same-origin script
//! (the site's CSP forbids inline ones) that opens a same-origin WebSocket (allowed by
//! `connect-src 'self'`), and styles the overlay through CSSOM (`element.style`), which
//! `style-src` does not restrict.
//!
//! Messages (JSON text frames, server → tab):
//! * `{"type":"hello"}` on connect, followed by the current error if the last build failed;
//! * `{"type":"reload","changed":[…],"removed":[…],"css_only":b,"css_renames":[[old,new],…],
//!   "full":b,"rendered":n,"ms":n}` after every successful rebuild (it also clears the
//!   overlay); `css_renames` pairs the old and new URL paths of each content-hashed
//!   stylesheet whose hash changed, so a tab can relink it in place when `css_only`;
//! * `{"type":"error","errors":[{"file","line","column","message","text"}],"ms":n}`.

use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde_json::json;
use tokio::sync::broadcast;

use folio::live::Rebuild;
use folio_content::diagnostics::Diagnostics;
use folio_edge::config::EdgeManifest;
use folio_edge::headers;

/// Where the script is served.
pub(super) const SCRIPT_PATH: &str = "/__folio/reload.js";
/// Where tabs connect.
pub(super) const SOCKET_PATH: &str = "/__folio/ws";
/// The script itself.
pub(super) const SCRIPT: &str = include_str!("reload.js");

/// Whether a tab may open the socket: its `Origin` must be this server's own (`http://` +
/// the `Host` it asked, which the dispatcher already checked is a loopback name with the
/// server's port), the site's origin in the build's manifest (the local URL, as `folio serve`
/// builds with it), or a listed extra origin: the terminal's rule
/// (`folio_edge::relay::admit`). A missing `Origin` is refused too; browsers always send one
/// on WebSocket requests. Any other page the author visits could otherwise read build errors
/// and the paths of unpublished pages.
pub(super) fn origin_allowed(
    manifest: Option<&EdgeManifest>,
    host: &str,
    origin: Option<&str>,
    extra: &[String],
) -> bool {
    let own = format!("http://{host}{SOCKET_PATH}");
    let allowed = headers::allowed_origins(manifest, &own, extra);
    origin.is_some_and(|o| headers::origin_allowed(o, &allowed))
}

/// Fans rebuild news out to every connected tab, and remembers whether the last build
/// failed so that a tab opened afterwards shows the overlay at once.
pub(crate) struct Hub {
    tx: broadcast::Sender<Arc<str>>,
    last_error: Mutex<Option<Arc<str>>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with no tabs.
    pub(crate) fn new() -> Hub {
        Hub {
            tx: broadcast::channel(64).0,
            last_error: Mutex::new(None),
        }
    }

    fn send(&self, msg: String) {
        let _ = self.tx.send(Arc::from(msg));
    }

    /// A rebuild succeeded.
    pub(crate) fn built(&self, r: &Rebuild) {
        *self.last_error.lock().expect("hub lock") = None;
        self.send(reload_message(r));
    }

    /// A rebuild failed: the last good site stays, the tabs show why.
    pub(crate) fn failed(&self, d: &Diagnostics) {
        let msg: Arc<str> = Arc::from(error_message(d));
        *self.last_error.lock().expect("hub lock") = Some(msg.clone());
        let _ = self.tx.send(msg);
    }

    /// Upgrades a tab's request and keeps it informed until it goes away.
    pub(crate) fn accept(self: &Arc<Self>, ws: WebSocketUpgrade) -> Response {
        let hub = self.clone();
        ws.on_upgrade(move |socket| hub.talk(socket))
    }

    async fn talk(self: Arc<Self>, mut socket: WebSocket) {
        let mut rx = self.tx.subscribe();
        let pending = self.last_error.lock().expect("hub lock").clone();
        if socket
            .send(Message::Text(json!({"type": "hello"}).to_string().into()))
            .await
            .is_err()
        {
            return;
        }
        if let Some(e) = pending {
            if socket.send(Message::Text(e.as_ref().into())).await.is_err() {
                return;
            }
        }
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Ok(m) => {
                        if socket.send(Message::Text(m.as_ref().into())).await.is_err() {
                            return;
                        }
                    }
                    // A tab too slow to keep up: it missed something, so it reloads.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let m = json!({"type": "reload", "changed": [], "removed": [],
                            "css_only": false, "css_renames": [], "full": true, "rendered": 0,
                            "ms": 0, "lagged": true});
                        if socket.send(Message::Text(m.to_string().into())).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
    }
}

/// The message for a successful rebuild.
pub(super) fn reload_message(r: &Rebuild) -> String {
    json!({
        "type": "reload",
        "changed": r.changed,
        "removed": r.removed,
        "css_only": r.css_only,
        "css_renames": r.css_renames,
        "full": r.full,
        "rendered": r.rendered,
        "ms": r.elapsed.as_millis() as u64,
    })
    .to_string()
}

/// The message for a failed rebuild: every error with its file, line and column.
pub(super) fn error_message(d: &Diagnostics) -> String {
    let errors: Vec<serde_json::Value> = d
        .errors()
        .into_iter()
        .map(|e| {
            json!({
                "file": e.path.display().to_string(),
                "line": e.line,
                "column": e.column,
                "message": e.message,
                "text": e.to_string(),
            })
        })
        .collect();
    json!({"type": "error", "errors": errors}).to_string()
}

/// The tag added to HTML responses. `nf` marks the 404 page: a tab showing it reloads
/// on any change, since the missing page may just have been created.
fn tag(not_found: bool) -> String {
    format!(
        "<script src=\"{SCRIPT_PATH}{}\" defer></script>",
        if not_found { "?nf" } else { "" }
    )
}

/// `html` with the reload script added: before `</body>` when there is one (minified
/// HTML may omit it), else at the end, where the parser puts it into the body anyway.
pub(super) fn inject(html: &[u8], not_found: bool) -> Vec<u8> {
    let tag = tag(not_found);
    let at = find_last_ci(html, b"</body>").unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + tag.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

fn find_last_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len())
        .rev()
        .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn only_the_servers_own_pages_may_open_the_socket() {
        let host = "127.0.0.1:4000";
        let ok = |o: Option<&str>| origin_allowed(None, host, o, &[]);
        assert!(ok(Some("http://127.0.0.1:4000")));
        assert!(!ok(Some("https://evil.example")));
        assert!(!ok(Some("http://127.0.0.1:4001")));
        assert!(
            !ok(Some("http://localhost:4000")),
            "another name than the one asked"
        );
        assert!(!ok(Some("null")));
        assert!(!ok(None));
        assert!(origin_allowed(
            None,
            "localhost:4000",
            Some("http://localhost:4000"),
            &[]
        ));
    }

    #[test]
    fn injects_before_body_end_or_at_the_end() {
        let t = tag(false);
        assert_eq!(
            inject(b"<p>x</p></BODY></html>", false),
            format!("<p>x</p>{t}</BODY></html>").into_bytes()
        );
        assert_eq!(inject(b"<p>x", false), format!("<p>x{t}").into_bytes());
        assert!(String::from_utf8(inject(b"", true))
            .unwrap()
            .contains("?nf"));
    }

    #[test]
    fn reload_messages_carry_stylesheet_renames() {
        let r = Rebuild {
            changed: vec!["css/site.abcdefabcd.css".into(), "index.html".into()],
            removed: vec!["css/site.0123456789.css".into()],
            css_only: true,
            css_renames: vec![(
                "/css/site.0123456789.css".into(),
                "/css/site.abcdefabcd.css".into(),
            )],
            ..Rebuild::default()
        };
        let v: serde_json::Value = serde_json::from_str(&reload_message(&r)).unwrap();
        assert_eq!(v["type"], "reload");
        assert_eq!(v["css_only"], true);
        assert_eq!(
            v["css_renames"],
            json!([["/css/site.0123456789.css", "/css/site.abcdefabcd.css"]])
        );
    }

    #[test]
    fn error_messages_carry_positions() {
        let mut d = Diagnostics::new();
        d.push(folio_content::Diagnostic::error(
            PathBuf::from("content/a.md"),
            Some((3, 7)),
            "bad thing",
        ));
        let v: serde_json::Value = serde_json::from_str(&error_message(&d)).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["errors"][0]["file"], "content/a.md");
        assert_eq!(v["errors"][0]["line"], 3);
        assert_eq!(v["errors"][0]["column"], 7);
        assert_eq!(v["errors"][0]["text"], "content/a.md:3:7: bad thing");
    }
}
