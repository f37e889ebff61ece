//! Write-ups (issue 13): Zola's code-fence annotations, diff blocks, GitHub callouts and TeX math,
//! through the real `folio build` on markdown written here; and each kind of bad annotation or
//! TeX as an error at file:line:col, exit 1, the previous output untouched.

use crate::bad_input::fails_at;
use crate::common::{stderr, Site};

/// A site of one write-up with `body`, built unminified (attributes as the generator wrote
/// them); returns the page's HTML.
fn build_page(config_extra: &str, body: &str) -> String {
    let s = Site::new();
    s.write(
        "folio.toml",
        &format!("{}{config_extra}", crate::common::CONFIG),
    );
    s.write(
        "content/projects/notes.md",
        &format!("+++\ntitle = \"Notes\"\ndate = 2022-02-02\n+++\n{body}"),
    );
    let out = s.folio(&["build", "--no-minify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    s.read("public/projects/notes/index.html")
}

#[test]
fn every_fence_annotation_shows_in_the_page() {
    let html = build_page(
        "",
        "Intro.\n\n```c,linenos,linenostart=100,hl_lines=1 3-4,hide_lines=2,name=src/io.c\n#include <stdio.h>\n/* secret */\nint f(void);\nint g(void);\nint h(void);\n```\n",
    );
    assert!(
        html.contains("<figure class=\"code-block\"><figcaption class=\"code-name\">src/io.c</figcaption><pre class=\"code lines linenos\" data-lang=\"c\""),
        "{html}"
    );
    assert!(!html.contains("secret"), "hide_lines leaves line 2 out");
    assert!(!html.contains("data-n=\"101\""), "{html}");
    for (n, hl) in [(100, true), (102, true), (103, true), (104, false)] {
        let want = format!(
            "<span class=\"line{}\" data-n=\"{n}\">",
            if hl { " hl" } else { "" }
        );
        assert!(html.contains(&want), "missing {want} in {html}");
    }
    // The include line is highlighted as C and escaped.
    assert!(html.contains("&lt;stdio.h&gt;"), "{html}");
    assert!(
        html.contains("class=\"hl-"),
        "syntax classes inside lines: {html}"
    );
    // The theme's copy script is on the page, as a hashed file (no inline script).
    assert!(html.contains("/js/code."), "{html}");
}

#[test]
fn a_block_without_annotations_takes_the_plain_path() {
    let html = build_page("", "```toml\nkey = 1\n```\n");
    assert!(
        html.contains("<div class=\"code-block\"><pre class=\"code\" data-lang=\"toml\" tabindex=\"0\"><code class=\"language-toml\">"),
        "{html}"
    );
    assert!(!html.contains("class=\"line"), "{html}");
}

#[test]
fn a_page_without_code_does_not_load_the_copy_script() {
    let html = build_page("", "Only prose, \\$ and `inline code`.\n");
    assert!(!html.contains("/js/code."), "{html}");
}

#[test]
fn diff_blocks_colour_their_lines() {
    let html = build_page(
        "",
        "```diff-js,linenos\n const a = 1;\n-let b = 2;\n+const b = 2;\n```\n\n```diff\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n```\n",
    );
    assert!(
        html.contains("<pre class=\"code lines linenos diff\" data-lang=\"diff-js\""),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"line del\" data-n=\"2\" data-m=\"-\">"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"line ins\" data-n=\"3\" data-m=\"+\">"),
        "{html}"
    );
    assert!(
        html.contains("<span class=\"line\" data-n=\"1\" data-m=\" \">"),
        "{html}"
    );
    // The patch keeps its markers as text; its file headers are not added/removed lines.
    assert!(html.contains("<span class=\"line del\">"), "{html}");
    assert!(
        html.contains("<span class=\"line\"><span class=\"hl-"),
        "{html}"
    );
    assert!(!html.contains("<span class=\"line ins\">+++"), "{html}");
}

#[test]
fn github_alerts_become_callouts() {
    let html = build_page(
        "",
        "> [!NOTE]\n> One.\n\n> [!TIP]\n> Two.\n\n> [!IMPORTANT]\n> Three.\n\n> [!WARNING]\n> Four *emphasised*.\n>\n> Second paragraph.\n\n> [!CAUTION]\n> Five.\n\n> Just a quote.\n",
    );
    for (kind, title) in [
        ("note", "Note"),
        ("tip", "Tip"),
        ("important", "Important"),
        ("warning", "Warning"),
        ("caution", "Caution"),
    ] {
        let want = format!("<div class=\"callout callout-{kind}\" role=\"note\"><p class=\"callout-title\">{title}</p>");
        assert!(html.contains(&want), "missing {want} in {html}");
    }
    assert!(
        html.contains("<p>Four <em>emphasised</em>.</p>\n<p>Second paragraph.</p>\n</div>"),
        "{html}"
    );
    assert!(!html.contains("[!"), "{html}");
    assert!(
        html.contains("<blockquote>\n<p>Just a quote.</p>\n</blockquote>"),
        "{html}"
    );
}

#[test]
fn formulas_become_mathml_and_prices_stay_prose() {
    let html = build_page(
        "",
        "It costs $5 and $10 a month.\n\nArea: $A = \\pi r^2$.\n\n$$\\int_0^1 x\\,dx = \\tfrac{1}{2}$$\n\nIn code: `$x$`.\n\n```sh\necho $HOME $PATH\n```\n",
    );
    assert!(html.contains("It costs $5 and $10 a month."), "{html}");
    assert!(html.contains("<math display=\"inline\">"), "{html}");
    assert!(html.contains("<mi>π</mi>"), "{html}");
    assert!(html.contains("<math display=\"block\">"), "{html}");
    assert!(html.contains("∫"), "{html}");
    assert!(html.contains("<code>$x$</code>"), "{html}");
    assert!(html.contains("$HOME"), "{html}");
    assert_eq!(html.matches("<math").count(), 2, "{html}");
    assert!(
        !html.contains(" style="),
        "nothing the CSP would refuse: {html}"
    );
}

#[test]
fn math_can_be_turned_off() {
    let html = build_page("[markdown]\nmath = false\n", "Area: $A = \\pi r^2$.\n");
    assert!(!html.contains("<math"), "{html}");
    assert!(html.contains("Area: $A = \\pi r^2$."), "{html}");
}

#[test]
fn minified_pages_keep_lines_and_math() {
    let s = Site::new();
    s.write(
        "content/projects/m.md",
        "+++\ntitle = \"M\"\ndate = 2021-01-01\n+++\n$x^2\\,dx$ after\n\n```rust,hl_lines=1\nfn a() {}\n```\n",
    );
    s.build_ok();
    let html = s.read("public/projects/m/index.html");
    assert!(html.contains("<msup><mi>x</mi><mn>2</mn></msup>"), "{html}");
    // A space element is closed explicitly: were it left open (a minified `<mspace … />`
    // loses its slash), the rest of the page would nest inside it.
    let space = html.find("<mspace").expect("a \\, space");
    let rest = &html[space..];
    assert!(
        rest.find("</mspace>").unwrap() < rest.find("<mi>").unwrap(),
        "{html}"
    );
    assert!(html.contains("class=\"line hl\""), "{html}");
}

fn bad_code(body: &str, expected: &str) {
    let body = body.to_string();
    fails_at(
        move |s| {
            s.write(
                "content/about.md",
                &format!("+++\ntitle = \"About\"\n+++\nSome text.\n\n{body}"),
            )
        },
        &[expected],
    );
}

#[test]
fn a_backwards_hl_lines_range_is_an_error_at_its_place() {
    bad_code(
        "```rust,hl_lines=5-2\nfn a() {}\n```\n",
        "content/about.md:6:9: hl_lines: `5-2` is backwards",
    );
}

#[test]
fn a_hl_lines_word_is_an_error() {
    bad_code(
        "  ```py, linenos, hl_lines=x\n  pass\n  ```\n",
        "content/about.md:6:19: hl_lines: `x` is not a line",
    );
}

#[test]
fn hl_lines_past_the_end_is_an_error() {
    bad_code(
        "Para.\n\n```rust,hl_lines=1 2-9\nfn a() {}\nfn b() {}\n```\n",
        "content/about.md:8:9: hl_lines: `2-9` is past the end of the block, which has 2 lines",
    );
}

#[test]
fn an_unknown_annotation_is_an_error() {
    bad_code(
        "~~~rust,linenos,highlight=3\nfn a() {}\n~~~\n",
        "content/about.md:6:17: unknown code block annotation `highlight=3`",
    );
}

#[test]
fn a_tex_error_is_an_error_at_the_formula() {
    bad_code(
        "Where $\\frac{a} \\notacommand$ ends.\n",
        "content/about.md:6:7: TeX error: ",
    );
}

#[test]
fn a_display_tex_error_in_a_list_is_an_error_at_the_formula() {
    bad_code(
        "- one\n- two $$\\left( x$$\n",
        "content/about.md:7:7: TeX error: ",
    );
}
