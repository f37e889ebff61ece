//! Counters for `/metrics` (Prometheus text exposition format 0.0.4): enough to alert on a
//! full origin, a demo that keeps crashing, or traffic that stops.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Process-wide counters, shared by the server and every session.
#[derive(Default)]
pub struct Metrics {
    /// Sessions running now.
    pub active: AtomicU64,
    /// Bytes received from clients and written to PTYs.
    pub bytes_in: AtomicU64,
    /// Bytes read from PTYs and sent to clients.
    pub bytes_out: AtomicU64,
    started: Mutex<BTreeMap<String, u64>>,
    refused: Mutex<BTreeMap<String, u64>>,
    exits: Mutex<BTreeMap<String, u64>>,
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    *map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.to_owned())
        .or_default() += 1;
}

fn write_family(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    map: &Mutex<BTreeMap<String, u64>>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (k, v) in map.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
    }
}

impl Metrics {
    /// Counts a session that started, by demo (demo ids need no label escaping).
    pub fn session_started(&self, demo: &str) {
        bump(&self.started, demo);
    }

    /// Counts a connection refused before a session started, by reason
    /// (`unauthorized`, `replay`, `capacity`, `client_capacity`, `not_found`, `shutting_down`).
    pub fn refused(&self, reason: &str) {
        bump(&self.refused, reason);
    }

    /// Counts a finished session by why it ended (`exit`, `signal`, `idle`, `timeout`,
    /// `client_closed`, `shutdown`, `error`).
    pub fn exited(&self, reason: &str) {
        bump(&self.exits, reason);
    }

    /// Renders the Prometheus text format.
    pub fn render(&self, capacity: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP folio_pty_sessions_active Sessions running now.\n# TYPE folio_pty_sessions_active gauge\nfolio_pty_sessions_active {}",
            self.active.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP folio_pty_sessions_capacity Most sessions allowed at once.\n# TYPE folio_pty_sessions_capacity gauge\nfolio_pty_sessions_capacity {capacity}"
        );
        write_family(
            &mut out,
            "folio_pty_sessions_total",
            "Sessions started.",
            "demo",
            &self.started,
        );
        write_family(
            &mut out,
            "folio_pty_sessions_refused_total",
            "Connections refused before a session started.",
            "reason",
            &self.refused,
        );
        write_family(
            &mut out,
            "folio_pty_session_exits_total",
            "Sessions ended, by reason.",
            "reason",
            &self.exits,
        );
        let _ = writeln!(
            out,
            "# HELP folio_pty_bytes_in_total Bytes from clients to PTYs.\n# TYPE folio_pty_bytes_in_total counter\nfolio_pty_bytes_in_total {}",
            self.bytes_in.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP folio_pty_bytes_out_total Bytes from PTYs to clients.\n# TYPE folio_pty_bytes_out_total counter\nfolio_pty_bytes_out_total {}",
            self.bytes_out.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families() {
        let m = Metrics::default();
        m.session_started("minirt");
        m.session_started("minirt");
        m.refused("unauthorized");
        m.exited("idle");
        m.bytes_out.fetch_add(10, Ordering::Relaxed);
        let text = m.render(8);
        assert!(text.contains("folio_pty_sessions_total{demo=\"minirt\"} 2"));
        assert!(text.contains("folio_pty_sessions_refused_total{reason=\"unauthorized\"} 1"));
        assert!(text.contains("folio_pty_session_exits_total{reason=\"idle\"} 1"));
        assert!(text.contains("folio_pty_bytes_out_total 10"));
        assert!(text.contains("folio_pty_sessions_capacity 8"));
    }
}
