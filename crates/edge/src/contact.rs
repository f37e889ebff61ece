//! The contact form (`POST /api/contact`): what a message must look like, the spam
//! defences that need no third party, the message as it is mailed, and the outbox's rules.
//! The Worker (`folio-worker`'s `contact` and `outbox`) and `folio serve` both run these.
//!
//! Order of checks, cheapest and most telling first: `Origin` (the site's own, required),
//! size (413), media type (415), the honeypot (an accepted-looking answer, nothing sent),
//! the signed form token (too fast, too old, forged), the fields (per-field errors, links
//! capped, CR/LF refused in every header field), then the per-address and per-day limits
//! and the outbox (idempotent on the token's nonce: a retry never delivers twice).
//!
//! Header injection cannot happen by construction: every header value is either the
//! site's own (from the manifest), or a visitor's field that was refused if it held any
//! control character and is then sent as an RFC 2047 encoded word (name, subject) or as a
//! strictly shaped address (Reply-To); [`build_message`] checks every header line again.
//! The body is base64. The visitor's address is Reply-To, never From.

use crate::api::ApiError;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Largest request body accepted: over it is a 413 before anything is parsed.
pub const MAX_BODY_BYTES: usize = 32 * 1024;
/// Longest name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest subject, in characters.
pub const MAX_SUBJECT: usize = 150;
/// Longest address (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest message, in characters.
pub const MAX_MESSAGE: usize = 5000;
/// Longest `page` (the path the form was sent from).
pub const MAX_PAGE: usize = 200;
/// The honeypot's field name: hidden from people, filled by naive bots.
pub const HONEYPOT_FIELD: &str = "website";

/// `[contact]` as the Worker needs it, in the edge manifest (`contact`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactManifest {
    /// The author's address: the only `To` a message ever has.
    pub recipient: String,
    /// The `From` (and envelope sender): an address on the site's own domain.
    pub sender: String,
    /// Put before every subject, e.g. `"[ada.example.dev] "`.
    pub subject_prefix: String,
    /// Path of the form page (the Worker puts a fresh token into it).
    pub page: String,
    /// Path of the thank-you page (303 target without JavaScript).
    pub thanks: String,
    /// A form sent sooner than this after it was rendered is refused (bots fill at once).
    pub min_fill_secs: u64,
    /// A form older than this is refused (reload the page).
    pub max_age_secs: u64,
    /// Most links a message may hold.
    pub max_links: usize,
    /// Messages one address (an IPv4, or an IPv6 /64) may send per hour.
    pub per_address_per_hour: u64,
    /// Messages the author gets per day at most, from everyone (mail bombing).
    pub per_day: u64,
}

/// The fields of a submitted form, as text (missing fields are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// Visitor's name.
    pub name: String,
    /// Visitor's address (becomes Reply-To).
    pub email: String,
    /// Optional subject.
    pub subject: String,
    /// The message.
    pub message: String,
    /// The path the form was sent from.
    pub page: String,
    /// The signed form token.
    pub token: String,
    /// The honeypot.
    pub honeypot: String,
}

/// One field's error, for the form to show beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Field name (`name`, `email`, `subject`, `message`).
    pub field: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

/// Decodes an `application/x-www-form-urlencoded` body (invalid UTF-8 is replaced).
pub fn parse_form(body: &[u8]) -> Fields {
    let mut f = Fields::default();
    for pair in body.split(|b| *b == b'&') {
        let mut it = pair.splitn(2, |b| *b == b'=');
        let key = percent_decode(it.next().unwrap_or(b""));
        let value = percent_decode(it.next().unwrap_or(b""));
        let slot = match key.as_str() {
            "name" => &mut f.name,
            "email" => &mut f.email,
            "subject" => &mut f.subject,
            "message" => &mut f.message,
            "page" => &mut f.page,
            "token" => &mut f.token,
            HONEYPOT_FIELD => &mut f.honeypot,
            _ => continue,
        };
        *slot = value;
    }
    f
}

fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = std::str::from_utf8(&s[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `s` holds a character no header may carry: CR, LF or any other control.
pub fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// A plausible address, strictly: ASCII `local@domain`, no spaces, quotes, brackets or
/// controls, a dotted domain of letters, digits and hyphens. Stricter than RFC 5322 on
/// purpose: what passes can go into a header as it is.
pub fn is_plausible_email(s: &str) -> bool {
    if s.len() > MAX_EMAIL || !s.is_ascii() {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2);
    local_ok && domain_ok
}

/// How many links a text holds (`http://`, `https://`, `www.`), case-insensitively.
pub fn count_links(s: &str) -> usize {
    let lower = s.to_ascii_lowercase();
    ["http://", "https://", "www."]
        .iter()
        .map(|p| lower.matches(p).count())
        .sum::<usize>()
        - lower.matches("http://www.").count()
        - lower.matches("https://www.").count()
}

/// A form that passed every check of the fields: ready to be mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    /// Trimmed name.
    pub name: String,
    /// The address, trimmed.
    pub email: String,
    /// Trimmed subject (may be empty).
    pub subject: String,
    /// The message, line endings normalised to `\n`.
    pub message: String,
    /// The page path (empty if none or malformed).
    pub page: String,
}

/// Checks the fields; every problem is reported at once, per field.
pub fn validate(f: &Fields, cfg: &ContactManifest) -> Result<Valid, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut err = |field: &'static str, message: String| errs.push(FieldError { field, message });
    let name = f.name.trim();
    let email = f.email.trim();
    let subject = f.subject.trim();
    let message = f.message.replace("\r\n", "\n").replace('\r', "\n");
    let message = message.trim();
    if name.is_empty() {
        err("name", "Please enter your name.".into());
    } else if name.chars().count() > MAX_NAME {
        err(
            "name",
            format!("Please keep your name under {MAX_NAME} characters."),
        );
    } else if has_control(&f.name) {
        err("name", "Your name must be on one line.".into());
    }
    if email.is_empty() {
        err(
            "email",
            "Please enter your email address, so the author can reply.".into(),
        );
    } else if has_control(&f.email) || !is_plausible_email(email) {
        err(
            "email",
            "This does not look like an email address (name@example.com).".into(),
        );
    }
    if subject.chars().count() > MAX_SUBJECT {
        err(
            "subject",
            format!("Please keep the subject under {MAX_SUBJECT} characters."),
        );
    } else if has_control(&f.subject) {
        err("subject", "The subject must be on one line.".into());
    }
    if message.is_empty() {
        err("message", "Please write a message.".into());
    } else if message.chars().count() > MAX_MESSAGE {
        err(
            "message",
            format!("Please keep the message under {MAX_MESSAGE} characters."),
        );
    } else if message
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        err("message", "The message holds control characters.".into());
    }
    let links = count_links(&format!("{name} {subject} {message}"));
    if links > cfg.max_links {
        err(
            "message",
            format!("Please include at most {} links.", cfg.max_links),
        );
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let page = f.page.trim();
    let page_ok = page.starts_with('/')
        && page.len() <= MAX_PAGE
        && page.bytes().all(|b| (b'!'..=b'~').contains(&b));
    Ok(Valid {
        name: name.to_string(),
        email: email.to_string(),
        subject: subject.to_string(),
        message: message.to_string(),
        page: if page_ok {
            page.to_string()
        } else {
            String::new()
        },
    })
}

// ---------------------------------------------------------------------------------------
// The form token.

const TOKEN_LABEL: &[u8] = b"folio contact form v1\0";

fn token_mac(secret: &[u8], issued: u64, nonce: &str) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(TOKEN_LABEL);
    mac.update(issued.to_string().as_bytes());
    mac.update(b"\0");
    mac.update(nonce.as_bytes());
    terminal_protocol::hex(&mac.finalize().into_bytes())
}

/// A form token: `v1.<issued unix secs>.<nonce hex>.<HMAC hex>`. It says when the form was
/// rendered; its nonce is the message's idempotency key.
pub fn mint_token(secret: &[u8], issued: u64, nonce: [u8; 16]) -> String {
    let nonce = terminal_protocol::hex(&nonce);
    let mac = token_mac(secret, issued, &nonce);
    format!("v1.{issued}.{nonce}.{mac}")
}

/// Checks a token; on success, its nonce (the idempotency key).
pub fn check_token(
    secret: &[u8],
    token: &str,
    now: u64,
    cfg: &ContactManifest,
) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_token",
            "This form could not be verified; please reload the page and send again.",
        )
    };
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [v, issued, nonce, mac] = parts[..] else {
        return Err(invalid());
    };
    let issued: u64 = issued.parse().map_err(|_| invalid())?;
    if v != "v1"
        || nonce.len() != 32
        || !nonce.bytes().all(|b| b.is_ascii_hexdigit())
        || mac.len() != 64
    {
        return Err(invalid());
    }
    let expected = token_mac(secret, issued, nonce);
    // Constant-time comparison of the two MACs.
    let diff = expected
        .bytes()
        .zip(mac.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(invalid());
    }
    if issued > now + 60 {
        return Err(invalid());
    }
    let age = now.saturating_sub(issued);
    if age < cfg.min_fill_secs {
        let wait = cfg.min_fill_secs - age;
        let mut e = ApiError::new(
            400,
            "too_fast",
            "That was very quick. Please wait a few seconds and send again.",
        );
        e.retry_after = Some(wait.max(1));
        return Err(e);
    }
    if age > cfg.max_age_secs {
        return Err(ApiError::bad_request(
            "form_expired",
            "This form is too old. Your text is kept: please send it again.",
        ));
    }
    Ok(nonce.to_ascii_lowercase())
}

// ---------------------------------------------------------------------------------------
// Keys and limits.

// The per-address limit is keyed on `crate::visitor::address_key` (IPv4, or IPv6 /64,
// IPv4 written as IPv6 as that IPv4; never the User-Agent): the one rule every limit uses.

/// One hour: the per-address window.
pub const ADDRESS_WINDOW_SECS: u64 = 3600;
/// One day: the per-day window.
pub const DAY_WINDOW_SECS: u64 = 86_400;

/// The limits' rule, given how many messages this address and everyone sent in their
/// windows, and when the oldest of each was sent. `None` lets the message through.
pub fn limit_decision(
    cfg: &ContactManifest,
    now: u64,
    address_count: u64,
    address_oldest: Option<u64>,
    day_count: u64,
    day_oldest: Option<u64>,
) -> Option<ApiError> {
    if address_count >= cfg.per_address_per_hour {
        let wait = address_oldest.map_or(ADDRESS_WINDOW_SECS, |t| {
            (t + ADDRESS_WINDOW_SECS).saturating_sub(now)
        });
        return Some(ApiError::too_many(
            "contact_rate_limited",
            "You have sent several messages already; please wait before sending another.",
            wait,
        ));
    }
    if day_count >= cfg.per_day {
        let wait = day_oldest.map_or(DAY_WINDOW_SECS, |t| {
            (t + DAY_WINDOW_SECS).saturating_sub(now)
        });
        return Some(ApiError::too_many(
            "contact_daily_limit",
            "The author has received many messages today; please try again later.",
            wait,
        ));
    }
    None
}

// ---------------------------------------------------------------------------------------
// The message.

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A header value for text a visitor wrote: as it is when it is plain printable ASCII
/// without `=?` (it cannot be mistaken for anything), else RFC 2047 encoded words of at
/// most 45 bytes each, folded.
fn header_text(s: &str) -> String {
    if s.bytes().all(|b| (b' '..=b'~').contains(&b)) && !s.contains("=?") && s.len() <= 900 {
        return s.to_string();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", b64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", b64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// `Tue, 24 Nov 2026 10:00:00 +0000`.
pub fn rfc2822_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = crate::visitor::utc_day(unix);
    let (y, rest) = day.split_at(4);
    let m: usize = rest[1..3].parse().unwrap_or(1);
    let d: u32 = rest[4..6].parse().unwrap_or(1);
    let secs = unix % 86_400;
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[((unix / 86_400) % 7) as usize],
        MONTHS[m - 1],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The mail as sent: `From` the site's sender, `To` the author, `Reply-To` the visitor,
/// UTF-8 text in base64. `key` (the token's nonce) makes the `Message-ID`. Fails only if
/// a header line would hold a control character, which validation already excludes.
pub fn build_message(
    cfg: &ContactManifest,
    v: &Valid,
    key: &str,
    now: u64,
) -> Result<String, ApiError> {
    let domain = cfg.sender.rsplit('@').next().unwrap_or("folio.invalid");
    let subject = if v.subject.is_empty() {
        format!("{}Message from {}", cfg.subject_prefix, v.name)
    } else {
        format!("{}{}", cfg.subject_prefix, v.subject)
    };
    let mut headers = vec![
        ("From", format!("Contact form <{}>", cfg.sender)),
        ("To", format!("<{}>", cfg.recipient)),
        (
            "Reply-To",
            format!("{} <{}>", header_text(&v.name), v.email),
        ),
        ("Subject", header_text(&subject)),
        ("Date", rfc2822_date(now)),
        ("Message-ID", format!("<{key}@{domain}>")),
        ("MIME-Version", "1.0".to_string()),
        ("Content-Type", "text/plain; charset=utf-8".to_string()),
        ("Content-Transfer-Encoding", "base64".to_string()),
        ("Auto-Submitted", "auto-generated".to_string()),
    ];
    if !v.page.is_empty() {
        headers.push(("X-Folio-Page", v.page.clone()));
    }
    let mut out = String::new();
    for (name, value) in &headers {
        // Folding (CRLF + space, from header_text) is the only line break a value may hold.
        if value
            .split("\r\n ")
            .any(|line| line.chars().any(|c| c.is_control()))
        {
            return Err(ApiError::bad_request(
                "invalid_fields",
                "a header field holds a line break",
            ));
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let page = if v.page.is_empty() { "-" } else { &v.page };
    let body = format!(
        "{}\n\n-- \nFrom: {} <{}>\nSent from: {page}\nReply to this mail to answer {}.\n",
        v.message, v.name, v.email, v.name
    )
    .replace('\n', "\r\n");
    let encoded = b64(body.as_bytes());
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Answers.

/// The JSON body of a 400 with per-field errors (`error: "invalid_fields"`).
#[derive(Debug, Clone, Serialize)]
pub struct FieldErrorsBody {
    /// Always `"invalid_fields"`.
    pub error: &'static str,
    /// A summary for people.
    pub message: &'static str,
    /// Field → what is wrong.
    pub fields: std::collections::BTreeMap<&'static str, String>,
}

impl FieldErrorsBody {
    /// The body for these errors (the first error of a field wins).
    pub fn new(errs: &[FieldError]) -> Self {
        let mut fields = std::collections::BTreeMap::new();
        for e in errs {
            fields.entry(e.field).or_insert_with(|| e.message.clone());
        }
        Self {
            error: "invalid_fields",
            message: "Please correct the highlighted fields.",
            fields,
        }
    }
}

/// The JSON body of an accepted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentBody {
    /// Always true.
    pub ok: bool,
    /// What the page can show.
    pub message: String,
}

impl SentBody {
    /// The answer to a delivered (or honeypot, or duplicate) message.
    pub fn sent() -> Self {
        Self {
            ok: true,
            message: "Thank you: your message was sent.".into(),
        }
    }
}

/// 413 for a body over [`MAX_BODY_BYTES`].
pub fn too_large() -> ApiError {
    ApiError::new(
        413,
        "body_too_large",
        format!("A message may be at most {} KB.", MAX_BODY_BYTES / 1024),
    )
}

/// 415 for anything but a form post.
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        415,
        "unsupported_media_type",
        "send application/x-www-form-urlencoded",
    )
}

/// 403 for a missing or foreign `Origin`: only the site's own pages may post the form.
pub fn check_origin(origin: Option<&str>, allowed: &[String]) -> Result<(), ApiError> {
    match origin {
        Some(o) if crate::headers::origin_allowed(o, allowed) => Ok(()),
        _ => Err(ApiError::new(
            403,
            "forbidden_origin",
            "the contact form may only be sent from the site's own pages",
        )),
    }
}

/// 502 after a failed delivery: the message is in the outbox and will be retried.
pub fn delivery_failed() -> ApiError {
    ApiError::new(
        502,
        "delivery_failed",
        "Your message could not be delivered right now. It is saved and will be sent \
         automatically; there is no need to send it again.",
    )
}

/// 404 when the site has no contact form.
pub fn not_enabled() -> ApiError {
    ApiError::not_found("not_found", "this site has no contact form")
}

/// Whether the client wants JSON (the page's script) rather than a page (a plain form).
pub fn wants_json(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/json"))
}

/// Whether a `Content-Type` is a form post.
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    })
}

// ---------------------------------------------------------------------------------------
// The form page, filled in at serve time.

/// What to put into the form page: a fresh (or kept) token, the visitor's text and errors.
#[derive(Debug, Clone, Default)]
pub struct FormState {
    /// The token for the hidden field.
    pub token: String,
    /// The visitor's fields to keep (after an error).
    pub fields: Fields,
    /// Per-field errors.
    pub errors: Vec<FieldError>,
    /// An error about the whole form.
    pub form_error: Option<String>,
}

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Finds the tag carrying `attr=value` (quoted or not, as an HTML minifier may leave it):
/// the byte range of the whole tag, `<` to `>` inclusive.
fn find_tag(html: &str, attr: &str, value: &str) -> Option<(usize, usize)> {
    let forms = [
        format!("{attr}=\"{value}\""),
        format!("{attr}='{value}'"),
        format!("{attr}={value}"),
    ];
    for form in &forms {
        let mut from = 0;
        while let Some(i) = html[from..].find(form.as_str()).map(|i| i + from) {
            let end = i + form.len();
            let next = html[end..].chars().next();
            let unquoted = !form.ends_with(['"', '\'']);
            if !unquoted || matches!(next, Some(c) if c.is_whitespace() || c == '>' || c == '/') {
                let start = html[..i].rfind('<')?;
                let close = end + html[end..].find('>')?;
                return Some((start, close + 1));
            }
            from = end;
        }
    }
    None
}

/// The tag's name (`input`, `textarea`, `p`).
fn tag_name(tag: &str) -> &str {
    let t = &tag[1..];
    &t[..t
        .find(|c: char| c.is_whitespace() || c == '>')
        .unwrap_or(t.len())]
}

/// Inserts ` attrs` right after the tag name.
fn with_attr(tag: &str, attrs: &str) -> String {
    let n = 1 + tag_name(tag).len();
    format!("{}{attrs}{}", &tag[..n], &tag[n..])
}

/// Drops a bare `hidden` attribute from a tag.
fn without_hidden(tag: &str) -> String {
    let mut out = tag.to_string();
    for (pat, rep) in [(" hidden ", " "), (" hidden>", ">"), (" hidden/", "/")] {
        out = out.replace(pat, rep);
    }
    out
}

/// Fills the form page the theme rendered (`contact.html`), as built (minified or not):
/// `data-folio-value="F"` on an input gets `value`, on a textarea its text;
/// `data-folio-invalid="F"` gets `aria-invalid="true"`; `data-folio-error="F"` (a
/// `hidden` paragraph) is shown with the message (`F` a field, `token` or `form`). Text is
/// escaped; markers missing from the page are skipped.
pub fn render_form(html: &str, state: &FormState) -> String {
    let mut out = html.to_string();
    let edit = |out: &mut String, attr: &str, value: &str, f: &dyn Fn(&str) -> String| {
        if let Some((a, b)) = find_tag(out, attr, value) {
            let replaced = f(&out[a..b]);
            out.replace_range(a..b, &replaced);
        }
    };
    let fields = &state.fields;
    for (field, value) in [
        ("token", &state.token),
        ("name", &fields.name),
        ("email", &fields.email),
        ("subject", &fields.subject),
        ("message", &fields.message),
    ] {
        let v = escape_html(value);
        edit(&mut out, "data-folio-value", field, &|tag| {
            if tag_name(tag).eq_ignore_ascii_case("textarea") {
                format!("{tag}{v}")
            } else {
                with_attr(tag, &format!(" value=\"{v}\""))
            }
        });
    }
    let mut shown: Vec<&str> = Vec::new();
    let errors = state
        .errors
        .iter()
        .map(|e| (e.field, e.message.as_str()))
        .chain(state.form_error.as_deref().map(|m| ("form", m)));
    for (field, message) in errors {
        if shown.contains(&field) {
            continue;
        }
        shown.push(field);
        edit(&mut out, "data-folio-invalid", field, &|tag| {
            with_attr(tag, " aria-invalid=\"true\"")
        });
        let m = escape_html(message);
        edit(&mut out, "data-folio-error", field, &|tag| {
            format!("{}{m}", without_hidden(tag))
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// The outbox: one message per token nonce, kept until delivered.

/// The outbox's table (a SQLite-backed Durable Object, named `"outbox"`). Idempotent.
pub const SQL_SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS outbox (key TEXT PRIMARY KEY, address TEXT NOT NULL, created INTEGER NOT NULL, raw TEXT NOT NULL, status TEXT NOT NULL, tries INTEGER NOT NULL, next_try INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS outbox_address ON outbox (address, created);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_try);";

/// The status of a message already in the outbox. Binds: key.
pub const SQL_FIND: &str = "SELECT status FROM outbox WHERE key = ?";
/// Messages of an address in its window. Binds: address, since.
pub const SQL_COUNT_ADDRESS: &str =
    "SELECT COUNT(*) AS n, COALESCE(MIN(created), 0) AS oldest FROM outbox WHERE address = ? AND created > ?";
/// Messages of everyone in the day window. Binds: since.
pub const SQL_COUNT_DAY: &str =
    "SELECT COUNT(*) AS n, COALESCE(MIN(created), 0) AS oldest FROM outbox WHERE created > ?";
/// Adds a message, pending. Binds: key, address, created, raw.
pub const SQL_INSERT: &str = "INSERT INTO outbox (key, address, created, raw, status, tries, next_try) VALUES (?, ?, ?, ?, 'pending', 0, 0)";
/// Marks a message delivered (its text is dropped). Binds: key.
pub const SQL_DELIVERED: &str =
    "UPDATE outbox SET status = 'delivered', raw = '', error = '' WHERE key = ?";
/// Records a failed try. Binds: next_try, error, status, key.
pub const SQL_FAILED: &str =
    "UPDATE outbox SET tries = tries + 1, next_try = ?, error = ?, status = ? WHERE key = ?";
/// Messages due for another try. Binds: now.
pub const SQL_DUE: &str =
    "SELECT key, raw, tries FROM outbox WHERE status = 'pending' AND next_try <= ? ORDER BY created LIMIT 20";
/// The next retry time, if any message waits.
pub const SQL_NEXT: &str =
    "SELECT COALESCE(MIN(next_try), 0) AS next FROM outbox WHERE status = 'pending'";
/// Forgets delivered messages past the day window (keys outlive any token). Binds: before.
pub const SQL_PRUNE: &str = "DELETE FROM outbox WHERE status = 'delivered' AND created < ?";

/// Tries before a message is given up on (kept, with status `failed`, for the operator).
pub const MAX_TRIES: u64 = 12;

/// When to try again after `tries` failed tries: 1, 2, 4 … minutes, at most 6 hours.
pub fn retry_delay_secs(tries: u64) -> u64 {
    (60u64 << tries.min(20)).min(6 * 3600)
}

/// A request to the outbox object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxSubmit {
    /// Idempotency key: the token's nonce.
    pub key: String,
    /// The sender's address key.
    pub address: String,
    /// Unix seconds now.
    pub now: u64,
    /// The whole message.
    pub raw: String,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipient.
    pub to: String,
    /// Per-address hourly limit.
    pub per_address_per_hour: u64,
    /// Daily limit.
    pub per_day: u64,
}

/// What became of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum OutboxOutcome {
    /// Sent now.
    Delivered,
    /// The same key was seen before: nothing sent again. `pending` if still in the outbox.
    Duplicate {
        /// Whether the earlier copy is still waiting for delivery.
        pending: bool,
    },
    /// Sending failed; kept for retry.
    Queued,
    /// A limit refused it.
    Limited {
        /// The error code.
        code: String,
        /// Seconds to wait.
        retry_after: u64,
    },
}

impl OutboxOutcome {
    /// The limit refusal for a [`limit_decision`] error.
    pub fn limited(e: &ApiError) -> Self {
        Self::Limited {
            code: e.code.to_string(),
            retry_after: e.retry_after.unwrap_or(60),
        }
    }

    /// The answer: `Ok` for the sender (sent, or a harmless duplicate), or the error.
    pub fn answer(&self) -> Result<SentBody, ApiError> {
        match self {
            Self::Delivered | Self::Duplicate { pending: false } => Ok(SentBody::sent()),
            Self::Duplicate { pending: true } | Self::Queued => Err(delivery_failed()),
            Self::Limited { code, retry_after } => Err(if code == "contact_daily_limit" {
                ApiError::too_many("contact_daily_limit", DAILY_LIMIT_MESSAGE, *retry_after)
            } else {
                ApiError::too_many("contact_rate_limited", ADDRESS_LIMIT_MESSAGE, *retry_after)
            }),
        }
    }
}

const ADDRESS_LIMIT_MESSAGE: &str =
    "You have sent several messages already; please wait before sending another.";
const DAILY_LIMIT_MESSAGE: &str =
    "The author has received many messages today; please try again later.";

// ---------------------------------------------------------------------------------------
// The whole check, as both runtimes run it.

/// A submission that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The honeypot was filled: answer as if sent, send nothing.
    Honeypot,
    /// A message to put into the outbox.
    Accept {
        /// Idempotency key (the token's nonce).
        key: String,
        /// The checked fields.
        valid: Valid,
        /// The mail, ready to send.
        raw: String,
    },
}

/// A refused submission: the error, per-field errors, and the visitor's text to put back
/// into the form (with the same token unless `fresh_token`).
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The status and code (`invalid_fields` for per-field errors).
    pub error: ApiError,
    /// Per-field errors.
    pub fields: Vec<FieldError>,
    /// What the visitor wrote.
    pub keep: Fields,
    /// Whether the form needs a new token (expired or invalid).
    pub fresh_token: bool,
}

impl Refusal {
    fn of(error: ApiError, keep: Fields) -> Self {
        let fresh_token = matches!(error.code, "invalid_token" | "form_expired");
        Self {
            error,
            fields: Vec::new(),
            keep,
            fresh_token,
        }
    }

    /// The JSON body: per-field errors, or the usual error body.
    pub fn json_body(&self) -> String {
        if self.fields.is_empty() {
            self.error.body()
        } else {
            serde_json::to_string(&FieldErrorsBody::new(&self.fields))
                .expect("a map of strings serialises")
        }
    }
}

/// Every check of a `POST /api/contact` that needs no storage, in order: origin, size,
/// media type, honeypot, token, fields; then the message is built. The limits and the
/// outbox come after, in the runtime.
#[allow(clippy::result_large_err)] // once per request; boxing would only add noise
pub fn check_submission(
    cfg: &ContactManifest,
    secret: &[u8],
    now: u64,
    origin: Option<&str>,
    allowed: &[String],
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Checked, Refusal> {
    check_origin(origin, allowed).map_err(|e| Refusal::of(e, Fields::default()))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(Refusal::of(too_large(), Fields::default()));
    }
    if !is_form(content_type) {
        return Err(Refusal::of(unsupported_media_type(), Fields::default()));
    }
    let fields = parse_form(body);
    if !fields.honeypot.trim().is_empty() {
        return Ok(Checked::Honeypot);
    }
    let key =
        check_token(secret, &fields.token, now, cfg).map_err(|e| Refusal::of(e, fields.clone()))?;
    let valid = validate(&fields, cfg).map_err(|errs| Refusal {
        error: ApiError::bad_request("invalid_fields", "Please correct the highlighted fields."),
        fields: errs,
        keep: fields.clone(),
        fresh_token: false,
    })?;
    let raw = build_message(cfg, &valid, &key, now).map_err(|e| Refusal::of(e, fields.clone()))?;
    Ok(Checked::Accept { key, valid, raw })
}

#[cfg(test)]
mod tests;
