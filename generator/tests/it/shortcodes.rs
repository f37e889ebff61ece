//! Shortcodes through the real `folio` binary (and `folio serve`'s engine): each built-in,
//! arguments of every type in a site's own shortcode, a site's template overriding the
//! theme's, code left alone, every kind of error at file:line:col with the old output kept,
//! and a page re-rendered when its shortcode's template changes.

use std::collections::BTreeMap;

use folio::live::LiveSite;

use crate::common::{stderr, Site};
use crate::images::png;
use crate::live::{assert_fresh, options, step};

/// A site with a `guides` section (not `projects`) and a bundle with an image and a video.
fn site(body: &str) -> Site {
    // The theme's home lists `projects/`; this site keeps its write-ups elsewhere.
    let s = Site::minimal();
    s.write("content/guides/_index.md", "+++\ntitle = \"Guides\"\n+++\n");
    s.write(
        "content/guides/setup/index.md",
        &format!("+++\ntitle = \"Setup\"\ndate = 2025-04-05\n+++\n{body}"),
    );
    s.write_bytes("content/guides/setup/shot.png", &png(900, 450));
    s.write_bytes("content/guides/setup/poster.png", &png(640, 360));
    s.write_bytes(
        "content/guides/setup/demo.webm",
        b"\x1a\x45\xdf\xa3 not really a video",
    );
    s
}

fn page(s: &Site) -> String {
    s.read("public/guides/setup/index.html")
}

#[test]
fn the_built_in_shortcodes() {
    let s = site(concat!(
        "Before.\n\n",
        "{{ figure(src=\"shot.png\", caption=\"The installer's first screen\") }}\n\n",
        "{{ video(src=\"demo.webm\", poster=\"poster.png\") }}\n\n",
        "{% details(summary=\"Why 'Lanczos'?\") %}\nIt is **sharp**. See [setup](#why).\n{% end %}\n\n",
        "{% note(kind=\"warning\") %}\nBack up *first*.\n{% end %}\n\n",
        "{% note(title=\"Heads up\") %}\nPlain.\n{% end %}\n\n",
        "## Why\n\nAfter.\n",
    ));
    s.build_ok();
    let html = page(&s);
    // figure: the image processed like a markdown image, with its caption (and as alt text).
    let fig = &html[html.find("<figure").unwrap()..];
    let fig = &fig[..fig.find("</figure>").unwrap()];
    assert!(
        fig.contains("<picture><source ") && fig.contains(" type=image/webp>"),
        "{fig}"
    );
    assert!(
        fig.contains("width=900") || fig.contains("width=\"900\""),
        "{fig}"
    );
    assert!(fig.contains("/guides/setup/shot.720w."), "{fig}");
    assert!(
        fig.contains("<figcaption>The installer's first screen</figcaption>"),
        "{fig}"
    );
    assert!(
        fig.contains("alt=\"The installer's first screen\""),
        "{fig}"
    );
    // The figure is the page's first image: not deferred.
    assert!(!fig.contains("loading="), "{fig}");
    // video: controls, no autoplay, the poster's size, a root-relative source.
    let video = &html[html.find("<video").unwrap()..html.find("</video>").unwrap()];
    assert!(video.contains(" controls"), "{video}");
    assert!(!video.contains("autoplay"), "{video}");
    assert!(
        video.contains("src=/guides/setup/demo.webm")
            || video.contains("src=\"/guides/setup/demo.webm\""),
        "{video}"
    );
    assert!(
        video.contains("width=640") || video.contains("width=\"640\""),
        "{video}"
    );
    assert!(
        video.contains("poster=/guides/setup/poster.")
            || video.contains("poster=\"/guides/setup/poster."),
        "{video}"
    );
    // details: its body is markdown, its links are checked like the page's.
    assert!(
        html.contains("<summary>Why 'Lanczos'?</summary>")
            || html.contains("<summary>Why &#39;Lanczos&#39;?</summary>"),
        "{html}"
    );
    assert!(html.contains("<strong>sharp</strong>"), "{html}");
    // note: the callout markup shared with `> [!NOTE]`.
    // (The minifier drops optional end tags such as `</p>`.)
    assert!(
        html.contains(
            "<div class=\"callout callout-warning\" role=note><p class=callout-title>Warning<"
        ),
        "{html}"
    );
    assert!(html.contains("<em>first</em>"), "{html}");
    assert!(html.contains("callout-note"), "{html}");
    assert!(html.contains("<p class=callout-title>Heads up<"), "{html}");
    assert!(!html.contains("{{") && !html.contains("{%"), "{html}");
}

#[test]
fn a_sites_own_shortcode_overrides_the_theme_and_takes_every_argument_type() {
    let s = site(concat!(
        "{{ figure(src=\"shot.png\", caption=\"Mine\") }}\n\n",
        "Inline {{ badge(label=\"v2\", n=3, ratio=0.5, on=true, tags=[\"a\", 'b', `c`]) }} text.\n",
    ));
    s.write(
        "templates/shortcodes/figure.html",
        "<div class=\"my-figure\" data-w=\"{{ src_image.width }}\">{{ caption }}</div>",
    );
    s.write(
        "templates/shortcodes/badge.html",
        "<span class=\"badge\">{{ label }}|{{ n + 1 }}|{{ ratio * 2 }}|{% if on %}on{% endif %}|{{ tags | join(sep=\"+\") }}|{{ nth }}</span>",
    );
    s.build_ok();
    let html = page(&s);
    assert!(
        html.contains("data-w=900>Mine</div>") || html.contains("data-w=\"900\">Mine</div>"),
        "{html}"
    );
    assert!(!html.contains("<figure"), "{html}");
    assert!(
        html.contains("<span class=badge>v2|4|1|on|a+b+c|1</span>"),
        "{html}"
    );
}

#[test]
fn shortcodes_in_code_are_left_as_written() {
    let s = site(concat!(
        "Write `{{ figure(src=\"x.png\") }}` in a page.\n\n",
        "```md\n{% note() %}\nHi\n{% end %}\n```\n\n",
        "    {{ nothing(a=1) }}\n\n",
        "Escaped: {{/* figure(src=\"y.png\") */}}\n\n",
        "Prose with {{ braces }} stays.\n",
    ));
    s.build_ok();
    let html = page(&s);
    assert!(
        html.contains("{{ figure(src=&quot;x.png&quot;) }}")
            || html.contains("{{ figure(src=\"x.png\") }}"),
        "{html}"
    );
    assert!(html.contains("{% note() %}"), "{html}");
    assert!(html.contains("{{ nothing(a=1) }}"), "{html}");
    assert!(
        html.contains("Escaped: {{ figure(src=&quot;y.png&quot;) }}")
            || html.contains("Escaped: {{ figure(src=\"y.png\") }}"),
        "{html}"
    );
    assert!(html.contains("{{ braces }}"), "{html}");
    assert!(!html.contains("<figure"), "{html}");
}

/// Writes `body` as the page and builds: exit 1, `want` (file:line:col and message) said, and
/// the previous output (`before`) untouched.
fn assert_fails_at(s: &Site, before: &BTreeMap<String, Vec<u8>>, body: &str, want: &str) {
    s.write(
        "content/guides/setup/index.md",
        &format!("+++\ntitle = \"Setup\"\ndate = 2025-04-05\n+++\n{body}"),
    );
    let out = s.folio(&["build"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{body:?}:\n{err}");
    assert!(
        err.contains(&format!("content/guides/setup/{want}")),
        "{body:?}: want {want}\n{err}"
    );
    assert_eq!(*before, s.snapshot(), "{body:?}: the old output changed");
}

/// Zola's embeds (`youtube`, `vimeo`, `streamable`, `gist`) move in unchanged and come out as
/// plain links: no third-party frame or script (the CSP would block them), no request to the
/// video site before the visitor clicks; ids that could break out of the link are errors.
#[test]
fn zolas_embeds_become_links_and_refuse_hostile_ids() {
    let s = site(concat!(
        "A talk: {{ youtube(id=\"dQw4w9WgXcQ\", autoplay=true) }}, inline.\n\n",
        "{{ youtube(id=\"a_b-C\", playlist=\"PLx-1\", title=\"The series\", class=\"wide\") }}\n\n",
        "{{ vimeo(id=\"76979871\") }}\n\n{{ streamable(id=\"moo\") }}\n\n",
        "{{ gist(url=\"https://gist.github.com/ada/0123abcd\", file=\"Main.RS\") }}\n",
    ));
    s.build_ok();
    let html = page(&s);
    for want in [
        "href=\"https://www.youtube.com/watch?v=dQw4w9WgXcQ\"",
        // (the minifier writes `&amp;` as `&` where HTML allows it)
        "https://www.youtube.com/watch?v=a_b-C&list=PLx-1",
        ">The series on YouTube</a>",
        "href=https://vimeo.com/76979871",
        "href=https://streamable.com/moo",
        "href=https://gist.github.com/ada/0123abcd#file-main-rs",
        ">Main.RS on GitHub Gist</a>",
    ] {
        assert!(html.contains(want), "{want}\n{html}");
    }
    assert!(!html.contains("<iframe") && !html.contains("<script src=\"https://gist"));
    // Inline, the link stays inside its sentence's paragraph.
    assert!(html.contains("<p>A talk: <a "), "{html}");
    let before = s.snapshot();
    for (body, want) in [
        (
            "{{ youtube(id=\"x\\\" onmouseover=\\\"alert(1)\") }}\n",
            "index.md:5:12: shortcode `youtube`: id",
        ),
        (
            "{{ youtube(id=\"abc&list=1\") }}\n",
            "index.md:5:12: shortcode `youtube`: id",
        ),
        (
            "{{ youtube(id=\"ok\", playlist=\"../x\") }}\n",
            "index.md:5:21: shortcode `youtube`: playlist",
        ),
        (
            "{{ vimeo(id=\"12ab\") }}\n",
            "index.md:5:10: shortcode `vimeo`: id",
        ),
        (
            "{{ gist(url=\"javascript:alert(1)//gist.github.com/a/b\") }}\n",
            "index.md:5:9: shortcode `gist`: url",
        ),
        (
            "{{ gist(url=\"https://gist.github.com/a/b\", file=\"x\\\"><script>\") }}\n",
            "index.md:5:44: shortcode `gist`: file",
        ),
        (
            "{{ youtube() }}\n",
            "index.md:5:1: shortcode `youtube` is missing its argument `id`",
        ),
    ] {
        assert_fails_at(&s, &before, body, want);
    }
}

/// Builds a good page, then each bad body: exit 1, the error at its place, the site kept.
#[test]
fn errors_name_the_place_and_keep_the_old_site() {
    let s = site("Fine.\n");
    s.build_ok();
    let before = s.snapshot();
    let cases: &[(&str, &str)] = &[
        (
            "Text.\n\n{{ gallery(dir=\"x\") }}\n",
            "index.md:7:1: unknown shortcode `gallery`",
        ),
        (
            "Text.\n\n  {{ figure(caption=\"c\") }}\n",
            "index.md:7:3: shortcode `figure` is missing its argument `src`",
        ),
        (
            "{{ figure(src=3) }}\n",
            "index.md:5:11: argument `src` of shortcode `figure` must be a string",
        ),
        (
            "A\n{% details(summary=\"s\") %}\nbody without end\n",
            "index.md:6:1: unclosed shortcode `{% details(…) %}`",
        ),
        (
            "{{ figure(src=\"shot.png\" caption=\"c\") }}\n",
            "index.md:5:26: shortcode `figure`: expected `,` or `)`",
        ),
        (
            "{% note(kind=\"danger\") %}x{% end %}\n",
            "index.md:5:9: shortcode `note`: kind `danger`",
        ),
        (
            "{{ note(title=\"t\") }}\n",
            "index.md:5:1: shortcode `note` takes a body",
        ),
        (
            "x {{< figure src=\"a.png\" >}}\n",
            "index.md:5:3: Hugo shortcode syntax",
        ),
        (
            "{{ figure(src=\"nope.png\") }}\n",
            "index.md:5:1: missing image: `nope.png`",
        ),
    ];
    for (body, want) in cases {
        assert_fails_at(&s, &before, body, want);
    }
    // A template using an argument the call did not give: the call is blamed.
    s.write(
        "templates/shortcodes/quote.html",
        "<q>{{ text }}</q> — {{ who }}",
    );
    s.write(
        "content/guides/setup/index.md",
        "+++\ntitle = \"Setup\"\n+++\nSay {{ quote(text=\"hi\") }}.\n",
    );
    let out = s.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("index.md:4:5: shortcode `quote` is missing its argument `who`"),
        "{}",
        stderr(&out)
    );
    // Offsets after a shortcode still point at the right place.
    s.write(
        "content/guides/setup/index.md",
        "+++\ntitle = \"Setup\"\n+++\n{{ figure(src=\"shot.png\") }} [x](@/nowhere.md)\n",
    );
    let out = s.folio(&["build"]);
    assert!(
        stderr(&out).contains("index.md:4:30: broken internal link"),
        "{}",
        stderr(&out)
    );
}

/// `folio serve`'s engine: editing a shortcode's template re-renders the pages that use it
/// (and only they change), equal to a fresh full build.
#[test]
fn serve_re_renders_a_page_when_its_shortcode_template_changes() {
    let s = site("{{ stamp(word=\"alpha\") }}\n\n{{ figure(src=\"shot.png\") }}\n");
    s.write(
        "content/guides/other.md",
        "+++\ntitle = \"Other\"\n+++\nNo shortcodes.\n",
    );
    s.write(
        "templates/shortcodes/stamp.html",
        "<b class=stamp>v1 {{ word }}</b>",
    );
    let mut live = LiveSite::new(options(s.root()));
    live.build_all().unwrap_or_else(|d| panic!("{d}"));
    assert_fresh(&live, s.root(), "first build");
    let get = |live: &LiveSite, p: &str| String::from_utf8(live.files()[p].to_vec()).unwrap();
    assert!(get(&live, "guides/setup/index.html").contains("v1 alpha"));
    let other = get(&live, "guides/other/index.html");

    s.write(
        "templates/shortcodes/stamp.html",
        "<b class=stamp>v2 {{ word }}</b>",
    );
    step(
        &mut live,
        &s,
        &["templates/shortcodes/stamp.html"],
        "stamp template edited",
    );
    let html = get(&live, "guides/setup/index.html");
    assert!(
        html.contains("v2 alpha") && !html.contains("v1 alpha"),
        "{html}"
    );
    assert_eq!(other, get(&live, "guides/other/index.html"));

    // The theme's figure overridden by the site while serving: the page follows.
    s.write(
        "templates/shortcodes/figure.html",
        "<p class=fig-override>{{ src_image.width }}</p>",
    );
    step(
        &mut live,
        &s,
        &["templates/shortcodes/figure.html"],
        "figure overridden",
    );
    assert!(get(&live, "guides/setup/index.html").contains("fig-override"));

    // The image replaced: the page shows the new size.
    s.write_bytes("content/guides/setup/shot.png", &png(500, 100));
    step(
        &mut live,
        &s,
        &["content/guides/setup/shot.png"],
        "image replaced",
    );
    assert!(get(&live, "guides/setup/index.html").contains("fig-override>500"));
}
