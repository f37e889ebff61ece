//! `[contact]` in `folio.toml`: the first-party contact form (`POST /api/contact` on the
//! Worker, delivered with Cloudflare's `send_email` binding). The build writes what the
//! Worker needs into the edge manifest.

use serde::{Deserialize, Serialize};

/// `[contact]`: who gets the messages, and the form's limits.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ContactConfig {
    /// Offer the contact form (the `contact.html` page posts to `/api/contact`).
    pub enabled: bool,
    /// The author's address: a verified destination address of Cloudflare Email Routing.
    pub recipient: String,
    /// The `From` address, on the site's own domain (default `contact@<base_url host>`).
    pub sender: Option<String>,
    /// Put before every subject (default `"[<host>] "`).
    pub subject_prefix: Option<String>,
    /// Path of the form page.
    pub page: String,
    /// Path of the thank-you page.
    pub thanks: String,
    /// Seconds a person needs at least to fill the form (faster is a bot).
    pub min_fill_secs: u64,
    /// Seconds a rendered form stays valid.
    pub max_age_secs: u64,
    /// Links a message may hold.
    pub max_links: usize,
    /// Messages per hour from one address (an IPv4, or an IPv6 /64).
    pub per_address_per_hour: u64,
    /// Messages per day in total.
    pub per_day: u64,
}

impl Default for ContactConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            recipient: String::new(),
            sender: None,
            subject_prefix: None,
            page: "/contact/".into(),
            thanks: "/thanks/".into(),
            min_fill_secs: 3,
            max_age_secs: 2 * 3600,
            max_links: 3,
            per_address_per_hour: 5,
            per_day: 50,
        }
    }
}

fn plausible_address(s: &str) -> bool {
    match s.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"<>\"(),;:\\[]".contains(&b))
        }
        None => false,
    }
}

impl ContactConfig {
    /// Checks the section; the error names the key.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.enabled {
            return Ok(());
        }
        if !plausible_address(&self.recipient) {
            return Err((
                "recipient",
                format!(
                    "`[contact] recipient` must be an email address, got {:?}",
                    self.recipient
                ),
            ));
        }
        if let Some(s) = &self.sender {
            if !plausible_address(s) {
                return Err((
                    "sender",
                    format!("`[contact] sender` must be an email address, got {s:?}"),
                ));
            }
        }
        if self
            .subject_prefix
            .as_deref()
            .is_some_and(|p| p.chars().any(char::is_control))
        {
            return Err((
                "subject_prefix",
                "`[contact] subject_prefix` must be one line".into(),
            ));
        }
        for (key, p) in [("page", &self.page), ("thanks", &self.thanks)] {
            if !p.starts_with('/') || !p.ends_with('/') || p.bytes().any(|b| !b.is_ascii_graphic())
            {
                return Err((
                    key,
                    format!("`[contact] {key}` must be a path like \"/contact/\", got {p:?}"),
                ));
            }
        }
        if self.min_fill_secs >= self.max_age_secs
            || self.per_address_per_hour == 0
            || self.per_day == 0
        {
            return Err((
                "contact",
                "`[contact]`: min_fill_secs must be below max_age_secs, and the limits above 0"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Sets the sender and subject prefix that depend on `base_url` when the site left them
    /// out: `contact@<host>` and `"[<host>] "`.
    pub fn fill_defaults(&mut self, base_url: &str) {
        let host = Self::host_of(base_url);
        self.sender.get_or_insert_with(|| format!("contact@{host}"));
        self.subject_prefix
            .get_or_insert_with(|| format!("[{host}] "));
    }

    /// The host of `base_url` (for the default sender and subject prefix).
    pub fn host_of(base_url: &str) -> String {
        let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_ascii_lowercase()
    }
}
