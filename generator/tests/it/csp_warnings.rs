//! `folio build` warns about attributes the Content-Security-Policy will block (`style=`,
//! `on…=`) only where the rendered HTML really has them: on an element's start tag. Text that
//! merely looks like markup (a page titled `<img onerror=…>`, escaped in the body and left as
//! text inside `<title>`) is no element and gets no warning.

use crate::common::{stderr, Site};

const WARNING: &str = "is blocked by the Content-Security-Policy";

fn site() -> Site {
    let s = Site::minimal();
    s.write(
        "content/projects/xss.md",
        "+++\ntitle = \"<img onerror=alert(1)>\"\ndescription = \"<svg onload=alert(2)> and <p style=x>\"\ntags = [\"<b onclick=y()>\"]\ndate = 2024-01-01\n+++\nThe title above is text: \\<img onerror=alert(3)>, and `<a onmouseover=z()>` in code.\n",
    );
    s
}

#[test]
fn markup_in_a_title_or_text_is_no_attribute_to_warn_about() {
    let s = site();
    let out = s.folio(&["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains(WARNING), "{}", stderr(&out));
    // The page does carry the text (escaped in the body), so the scanner did see it.
    let page = s.read("public/projects/xss/index.html");
    assert!(page.contains("&lt;img onerror=alert(1)>"), "{page}");
}

#[test]
fn a_template_with_a_real_inline_handler_still_warns() {
    let s = site();
    s.write(
        "templates/page.html",
        "<!doctype html><html lang=\"en\"><head><title>{{ page.title }}</title></head><body><h1>{{ page.title }}</h1><button type=\"button\" onclick=\"history.back()\">Back</button>{{ page.content | safe }}</body></html>",
    );
    let out = s.folio(&["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("<button onclick=…> {WARNING}")),
        "{err}"
    );
    // Only the real attribute: the title's text is still no element.
    assert_eq!(err.matches(WARNING).count(), 1, "{err}");
}

/// The `script-src` directive of the site's `_headers`.
fn script_src(s: &Site) -> String {
    let headers = s.read("public/_headers");
    let at = headers.find("script-src").expect("script-src in _headers");
    headers[at..].split(';').next().unwrap().to_string()
}

#[test]
fn a_script_in_a_title_is_text_and_gets_no_hash_in_the_policy() {
    let s = site();
    s.write(
        "content/projects/xss.md",
        "+++\ntitle = \"Plain\"\ndate = 2024-01-01\n+++\nBody.\n",
    );
    s.build_ok();
    let plain = script_src(&s);
    // Inside <title> the browser reads this as text: allowing its hash would let the same
    // script run if it were ever injected anywhere on the site.
    s.write(
        "content/projects/xss.md",
        "+++\ntitle = \"<script>alert(document.domain)</script>\"\ndate = 2024-01-01\n+++\nBody.\n",
    );
    let out = s.folio(&["build"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(script_src(&s), plain);
}
