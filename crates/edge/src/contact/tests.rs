#![allow(clippy::result_large_err)]

use super::*;

pub(crate) fn cfg() -> ContactManifest {
    ContactManifest {
        recipient: "ada@example.dev".into(),
        sender: "contact@ada.example.dev".into(),
        subject_prefix: "[ada.example.dev] ".into(),
        page: "/contact/".into(),
        thanks: "/contact/thanks/".into(),
        min_fill_secs: 3,
        max_age_secs: 7200,
        max_links: 2,
        per_address_per_hour: 3,
        per_day: 50,
    }
}

const SECRET: &[u8] = b"a secret of at least thirty-two bytes!!";
const NOW: u64 = 1_795_000_000;
const SITE: &str = "https://ada.example.dev";

fn form(token: &str, extra: &str) -> Vec<u8> {
    format!("name=Zo%C3%A9+M.&email=zoe%40example.org&message=Bonjour+%E2%80%94+%C3%A7a+va%3F&page=%2Fcv%2F&token={token}{extra}").into_bytes()
}

fn submit(body: &[u8]) -> Result<Checked, Refusal> {
    check_submission(
        &cfg(),
        SECRET,
        NOW,
        Some(SITE),
        &[SITE.to_string()],
        Some("application/x-www-form-urlencoded; charset=UTF-8"),
        body,
    )
}

fn token(age: u64) -> String {
    mint_token(SECRET, NOW - age, [7; 16])
}

#[test]
fn a_good_message_is_built_with_the_right_headers() {
    let Ok(Checked::Accept { key, valid, raw }) = submit(&form(&token(10), "")) else {
        panic!("refused")
    };
    assert_eq!(key, "07".repeat(16));
    assert_eq!(valid.name, "Zoé M.");
    assert_eq!(valid.page, "/cv/");
    assert!(raw.contains("From: Contact form <contact@ada.example.dev>\r\n"));
    assert!(raw.contains("To: <ada@example.dev>\r\n"));
    assert!(raw.contains("Reply-To: =?UTF-8?B?Wm/DqSBNLg==?= <zoe@example.org>\r\n"));
    assert!(raw.contains("Subject: =?UTF-8?B?"), "{raw}");
    assert!(raw.contains(&format!("Message-ID: <{key}@ada.example.dev>")));
    // Every line is ASCII and short; the body decodes to the UTF-8 text.
    assert!(raw.is_ascii());
    assert!(raw.split("\r\n").all(|l| l.len() <= 998));
}

#[test]
fn honeypot_is_accepted_looking_and_checked_before_the_token() {
    assert_eq!(
        submit(&form("junk", "&website=http%3A%2F%2Fspam.example")).unwrap(),
        Checked::Honeypot
    );
}

#[test]
fn spam_token_too_fast_too_old_forged() {
    let code = |body: &[u8]| submit(body).unwrap_err().error.code;
    assert_eq!(code(&form(&token(0), "")), "too_fast");
    assert_eq!(code(&form(&token(7201), "")), "form_expired");
    assert_eq!(code(&form("", "")), "invalid_token");
    let forged = mint_token(b"another secret, also long enough....", NOW - 10, [7; 16]);
    assert_eq!(code(&form(&forged, "")), "invalid_token");
    let future = mint_token(SECRET, NOW + 3600, [7; 16]);
    assert_eq!(code(&form(&future, "")), "invalid_token");
    let e = submit(&form(&token(1), "")).unwrap_err();
    assert_eq!(e.error.retry_after, Some(2));
    assert!(!e.fresh_token);
    assert!(submit(&form(&token(7201), "")).unwrap_err().fresh_token);
}

#[test]
fn spam_links_are_capped() {
    let body = form(
        &token(10),
        "&subject=see+https%3A%2F%2Fa.example+www.b.example+http%3A%2F%2Fwww.c.example",
    );
    let e = submit(&body).unwrap_err();
    assert_eq!(e.fields[0].field, "message");
    assert_eq!(count_links("https://www.x.y and http://z"), 2);
}

#[test]
fn header_injection_cr_lf_in_name_subject_or_email_is_refused() {
    for extra in [
        "&name=Eve%0D%0ABcc%3A+victim%40example.com",
        "&subject=Hi%0ABcc%3A+victim%40example.com",
        "&email=eve%40example.org%0D%0ABcc%3A+x%40y.z",
        "&name=Eve%0D",
    ] {
        let e = submit(&form(&token(10), extra)).unwrap_err();
        assert_eq!(e.error.code, "invalid_fields", "{extra}");
        assert_eq!(e.error.status, 400);
    }
    // A hand-made Valid with a line break is still refused by the builder.
    let v = Valid {
        name: "Eve\r\nBcc: x@y.z".into(),
        email: "e@x.yz".into(),
        subject: String::new(),
        message: "m".into(),
        page: String::new(),
    };
    // Non-ASCII-or-control text is encoded, so no raw CR/LF reaches a header.
    let raw = build_message(&cfg(), &v, "k", NOW).unwrap();
    assert!(!raw.contains("Bcc:"));
}

#[test]
fn per_field_errors() {
    let e = submit(format!("token={}&email=nope", token(10)).as_bytes()).unwrap_err();
    let fields: Vec<_> = e.fields.iter().map(|f| f.field).collect();
    assert_eq!(fields, ["name", "email", "message"]);
    assert_eq!(e.keep.email, "nope");
    let body: serde_json::Value = serde_json::from_str(&e.json_body()).unwrap();
    assert_eq!(body["error"], "invalid_fields");
    assert!(body["fields"]["email"].as_str().unwrap().contains("email"));
}

#[test]
fn addresses() {
    for ok in ["a@b.co", "first.last+tag@sub.example.org"] {
        assert!(is_plausible_email(ok), "{ok}");
    }
    for bad in [
        "",
        "a",
        "a@b",
        "a@b.c",
        "a b@c.de",
        "<a@b.de>",
        "a@b.de>",
        "\"a\"@b.de",
        "a@-b.de",
        "a@b..de",
        ".a@b.de",
        "é@b.de",
        "a@b.de\r\n",
    ] {
        assert!(!is_plausible_email(bad), "{bad}");
    }
}

#[test]
fn origin_size_and_media_type() {
    let site = [SITE.to_string()];
    let run = |origin: Option<&str>, ct: Option<&str>, body: &[u8]| {
        check_submission(&cfg(), SECRET, NOW, origin, &site, ct, body)
            .unwrap_err()
            .error
            .status
    };
    let ct = Some("application/x-www-form-urlencoded");
    assert_eq!(run(Some("https://evil.example"), ct, b"x"), 403);
    assert_eq!(run(None, ct, b"x"), 403);
    assert_eq!(run(Some(SITE), ct, &vec![b'a'; 100 * 1024]), 413);
    assert_eq!(run(Some(SITE), Some("application/json"), b"{}"), 415);
}

#[test]
fn mail_bombing_limits() {
    let c = cfg();
    assert!(limit_decision(&c, NOW, 2, Some(NOW - 100), 10, Some(NOW)).is_none());
    let e = limit_decision(&c, NOW, 3, Some(NOW - 100), 10, Some(NOW)).unwrap();
    assert_eq!((e.status, e.retry_after), (429, Some(3500)));
    let e = limit_decision(&c, NOW, 0, None, 50, Some(NOW - 86_000)).unwrap();
    assert_eq!((e.code, e.retry_after), ("contact_daily_limit", Some(400)));
    let o = OutboxOutcome::limited(&e);
    assert_eq!(o.answer().unwrap_err().code, "contact_daily_limit");
    assert_eq!(retry_delay_secs(0), 60);
    assert_eq!(retry_delay_secs(30), 6 * 3600);
}

#[test]
fn outbox_answers() {
    assert!(OutboxOutcome::Delivered.answer().is_ok());
    assert!(OutboxOutcome::Duplicate { pending: false }.answer().is_ok());
    assert_eq!(OutboxOutcome::Queued.answer().unwrap_err().status, 502);
    assert_eq!(
        OutboxOutcome::Duplicate { pending: true }
            .answer()
            .unwrap_err()
            .status,
        502
    );
    let json = serde_json::to_string(&OutboxOutcome::Duplicate { pending: true }).unwrap();
    assert_eq!(json, r#"{"result":"duplicate","pending":true}"#);
}

#[test]
fn form_page_is_filled_and_escaped_minified_or_not() {
    let pretty = r#"<p data-folio-error="form" hidden></p><input type="hidden" name="token" data-folio-value="token"><input name="name" data-folio-value="name" data-folio-invalid="name"><p id="e" data-folio-error="name" hidden></p><textarea name="message" data-folio-value="message"></textarea>"#;
    let minified = r#"<p data-folio-error=form hidden id=f></p><input data-folio-value=token name=token type=hidden><input data-folio-invalid=name data-folio-value=name name=name><p data-folio-error=name hidden id=e><textarea data-folio-invalid=message data-folio-value=message name=message></textarea>"#;
    let state = FormState {
        token: "T".into(),
        fields: Fields {
            name: "\"><script>".into(),
            message: "a </textarea> b".into(),
            ..Fields::default()
        },
        errors: vec![FieldError {
            field: "name",
            message: "Bad <name>".into(),
        }],
        form_error: Some("Oops".into()),
    };
    for html in [pretty, minified] {
        let out = render_form(html, &state);
        assert!(out.contains(r#"<input value="T" "#), "{out}");
        assert!(
            out.contains(r#"<input aria-invalid="true" value="&quot;&gt;&lt;script&gt;" "#),
            "{out}"
        );
        assert!(out.contains(">a &lt;/textarea&gt; b</textarea>"), "{out}");
        assert!(out.contains(">Bad &lt;name&gt;"), "{out}");
        assert!(out.contains(">Oops"), "{out}");
        assert!(
            !out.contains("error=name hidden") && !out.contains("error=\"name\" hidden"),
            "{out}"
        );
    }
}

#[test]
fn dates() {
    assert_eq!(rfc2822_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(
        rfc2822_date(1_709_210_096),
        "Thu, 29 Feb 2024 12:34:56 +0000"
    );
}

#[test]
fn base64_matches_the_standard() {
    assert_eq!(b64(b""), "");
    assert_eq!(b64(b"f"), "Zg==");
    assert_eq!(b64(b"fo"), "Zm8=");
    assert_eq!(b64(b"foobar"), "Zm9vYmFy");
}
