//! The default theme on sites shaped unlike the example: a blog with no projects and no data,
//! three sections with other names (and a folder with no `_index.md`), a CV with and without
//! its data files, and the site `folio new` makes. Each is written here, built with the real
//! binary and the built-in theme, and its output read back.

use std::path::Path;
use std::process::Command;

use crate::common::{stderr, Site};

/// An empty site folder with just `folio.toml`.
fn bare(config: &str) -> Site {
    let s = Site {
        dir: tempfile::tempdir().expect("tempdir"),
    };
    s.write("folio.toml", config);
    s
}

/// `n` words of filler text.
fn words(n: usize) -> String {
    (0..n)
        .map(|i| ["lorem", "ipsum", "dolor", "sit", "amet"][i % 5])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asserts that `html` contains `needle`, showing the part of the page that matters if not.
fn has(html: &str, needle: &str, what: &str) {
    assert!(html.contains(needle), "{what}: `{needle}` not in\n{html}");
}

/// Every `.html` file under `dir`, path and text.
fn html_files(dir: &Path) -> Vec<(String, String)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "html"))
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

/// A blog and nothing else: no projects, no data, no menu, seven posts paginated by two, the
/// view counter turned off.
fn blog_only() -> Site {
    let s = bare(
        "title = \"Field notes\"\nbase_url = \"https://notes.test\"\nauthor = \"Rin\"\n\n[edge]\nviews = false\n",
    );
    s.write(
        "content/_index.md",
        "+++\ntitle = \"Field notes\"\n+++\nShort notes from the bench.\n",
    );
    s.write(
        "content/journal/_index.md",
        "+++\ntitle = \"Journal\"\nsort_by = \"date\"\npaginate_by = 2\n\n[extra]\nlayout = \"posts\"\n+++\n",
    );
    for day in 1..=7 {
        // Post 3 is long (650 words: 4 minutes at 200 a minute); the others short.
        let body = if day == 3 { words(650) } else { words(30) };
        let tags = if day % 2 == 0 {
            "tags = [\"soldering\"]\n"
        } else {
            ""
        };
        s.write(
            &format!("content/journal/day-{day}.md"),
            &format!(
                "+++\ntitle = \"Bench day {day}\"\ndate = 2025-03-{day:02}\ndescription = \"What happened on day {day}.\"\n{tags}+++\n{body}\n"
            ),
        );
    }
    s
}

#[test]
fn a_blog_only_site_builds_with_a_post_list_pagination_reading_time_and_feed() {
    let s = blog_only();
    let out = s.folio(&["build", "--no-minify"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The home lists the five newest posts with their dates, and links to all seven.
    let home = s.read("public/index.html");
    for day in 3..=7 {
        has(&home, &format!("href=\"/journal/day-{day}/\""), "home");
    }
    for day in 1..=2 {
        assert!(
            !home.contains(&format!("/journal/day-{day}/")),
            "the home shows the five newest only"
        );
    }
    has(&home, "All 7 posts", "home link to the section");
    has(
        &home,
        "<time datetime=\"2025-03-07\">7 Mar 2025</time>",
        "home",
    );
    has(&home, "4 min read", "home: the long post's reading time");
    has(&home, "class=\"posts\"", "a posts section is a post list");
    assert!(
        !home.contains("class=\"site-nav\""),
        "no menu, no empty nav"
    );

    // The section is paginated by two: four list pages, the newest first.
    let first = s.read("public/journal/index.html");
    has(&first, "Bench day 7", "page 1");
    has(&first, "Bench day 6", "page 1");
    assert!(!first.contains("Bench day 5"), "two per page");
    has(&first, "Page 1 of 4", "pager");
    let last = s.read("public/journal/page/4/index.html");
    has(&last, "Bench day 1", "page 4");

    // A post shows its date and reading time.
    let post = s.read("public/journal/day-3/index.html");
    has(&post, "3 Mar 2025", "post date");
    has(&post, "4 min read", "post reading time");
    // Its facts are a list whose separators the CSS draws: no literal "·" to strand at the
    // start of a wrapped line.
    let facts = &post[post.find("class=\"facts\"").expect("a facts list")..];
    let facts = &facts[..facts.find("</ul>").unwrap()];
    assert!(!facts.contains('·'), "{facts}");

    // The feed has every post.
    let feed = s.read("public/atom.xml");
    for day in 1..=7 {
        has(
            &feed,
            &format!("https://notes.test/journal/day-{day}/"),
            "feed",
        );
    }

    // Tag pages say nothing of projects, and nothing links to a section that is not there.
    let tag = s.read("public/tags/soldering/index.html");
    has(&tag, "3 pages", "tag page count");
    for (path, html) in html_files(&s.path("public")) {
        assert!(!html.contains("/projects/"), "{path} links to /projects/");
        assert!(
            !html.contains("counter.js"),
            "{path} loads counter.js though [edge] views = false"
        );
        assert!(
            !html.to_lowercase().contains("project"),
            "{path} speaks of projects on a blog"
        );
    }
}

/// Three sections named unlike the example (cards, a post list, cards with one page), a folder
/// with no `_index.md`, an order set on the home page, a CV from cv.toml with no talks.csv.
fn three_sections() -> Site {
    let s = bare(
        "title = \"Workshop\"\nbase_url = \"https://workshop.test\"\nauthor = \"Ode\"\n\n[extra]\nmenu = [{ name = \"Talks\", url = \"/talks/\" }, { name = \"CV\", url = \"/cv/\" }]\n",
    );
    s.write(
        "content/_index.md",
        "+++\ntitle = \"Workshop\"\n\n[extra]\nsections = [\"notes\", \"lab\", \"talks\"]\n+++\n",
    );
    s.write(
        "content/talks/_index.md",
        "+++\ntitle = \"Talks\"\nsort_by = \"date\"\n+++\n",
    );
    s.write(
        "content/talks/gc-in-anger/index.md",
        "+++\ntitle = \"GC in anger\"\ndate = 2024-10-10\ncover = \"slide.svg\"\n\n[extra]\ncover_alt = \"The title slide: a heap diagram\"\n+++\nSlides and notes.\n",
    );
    s.write(
        "content/talks/gc-in-anger/slide.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"160\" height=\"90\"><rect width=\"160\" height=\"90\" fill=\"#357\"/></svg>",
    );
    s.write(
        "content/notes/_index.md",
        "+++\ntitle = \"Notes\"\nsort_by = \"date\"\n\n[extra]\nlayout = \"posts\"\n+++\n",
    );
    for (i, t) in ["Ropes", "Tries", "Heaps"].iter().enumerate() {
        s.write(
            &format!("content/notes/{}.md", t.to_lowercase()),
            &format!(
                "+++\ntitle = \"{t}\"\ndate = 2024-0{}-15\n+++\nA summary of {t}.\n\n<!-- more -->\n\n{}\n",
                i + 1,
                words(120)
            ),
        );
    }
    s.write(
        "content/lab/_index.md",
        "+++\ntitle = \"Lab\"\nsort_by = \"weight\"\n+++\nExperiments.\n",
    );
    s.write(
        "content/lab/oscilloscope.md",
        "+++\ntitle = \"Oscilloscope clock\"\nweight = 1\ndescription = \"A clock drawn by an oscilloscope.\"\n+++\nIt ticks.\n",
    );
    // A folder of pages with no _index.md: not a rendered section, and not on the home page.
    s.write(
        "content/misc/colophon.md",
        "+++\ntitle = \"Colophon\"\n+++\nSet in system fonts.\n",
    );
    s.write(
        "content/cv.md",
        "+++\ntitle = \"Curriculum\"\ntemplate = \"cv.html\"\n+++\nHire me.\n",
    );
    s.write(
        "data/cv.toml",
        "[person]\nname = \"Ode Varga\"\nheadline = \"Firmware engineer\"\n\n[[experience]]\nrole = \"Engineer\"\norg = \"Tick Ltd\"\nstart = \"2020-01\"\n\n[[skills]]\ngroup = \"Languages\"\nitems = [\"C\", \"Zig\"]\n",
    );
    s
}

#[test]
fn three_sections_of_other_names_each_get_a_home_block_in_the_set_order() {
    let s = three_sections();
    let out = s.folio(&["build", "--no-minify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let home = s.read("public/index.html");
    let at = |needle: &str| {
        home.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not on the home page:\n{home}"))
    };
    // The order of [extra] sections, each with its pages and a correctly counted link.
    let (notes, lab, talks) = (at(">Notes</h2>"), at(">Lab</h2>"), at(">Talks</h2>"));
    assert!(notes < lab && lab < talks, "sections in the order set");
    has(&home, "All 3 notes", "a plural title names the pages");
    has(&home, "1 page", "a singular title: pages");
    has(&home, "1 talk <span", "one page of \"Talks\" is one talk");
    assert!(!home.contains("All 1 "), "no \"All 1 …\"");
    for href in [
        "/notes/heaps/",
        "/notes/tries/",
        "/notes/ropes/",
        "/lab/oscilloscope/",
        "/talks/gc-in-anger/",
    ] {
        has(
            &home,
            &format!("href=\"{href}\""),
            "home lists every section's pages",
        );
    }
    assert!(
        !home.contains("Colophon"),
        "a folder without _index.md is no section"
    );
    // The author's alt text on the cover, on the home card and on the page.
    has(
        &home,
        "alt=\"The title slide: a heap diagram\"",
        "cover_alt",
    );
    let talk = s.read("public/talks/gc-in-anger/index.html");
    has(
        &talk,
        "alt=\"The title slide: a heap diagram\"",
        "cover_alt on the page",
    );
    // Views are on by default: the counter is loaded.
    has(&home, "/js/counter.", "counter.js with views on");
    // A post-list section and a cards section render their own way.
    has(
        &s.read("public/notes/index.html"),
        "class=\"posts\"",
        "notes",
    );
    has(&s.read("public/lab/index.html"), "class=\"grid\"", "lab");
    assert!(s.path("public/misc/colophon/index.html").is_file());

    // The CV comes from cv.toml; no talks.csv, so no talks section.
    let cv = s.read("public/cv/index.html");
    has(&cv, "Ode Varga", "cv name");
    has(&cv, "Tick Ltd", "cv experience");
    has(&cv, "present", "an experience with no end is current");
    has(&cv, "Hire me.", "the page's own text");
    assert!(!cv.contains("Talks</h2>"), "no talks.csv, no talks section");
}

#[test]
fn a_home_naming_a_section_that_is_not_there_fails_and_keeps_the_last_good_site() {
    let s = three_sections();
    s.build_ok();
    let good = s.snapshot();
    s.write(
        "content/_index.md",
        "+++\ntitle = \"Workshop\"\n\n[extra]\nsections = [\"notes\", \"nope\"]\n+++\n",
    );
    let out = s.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    has(
        &stderr(&out),
        "`nope/_index.md` is not a published section",
        "error",
    );
    has(&stderr(&out), "content/_index.md", "names the page");
    assert_eq!(s.snapshot(), good, "the previous output is untouched");
}

#[test]
fn without_an_order_the_home_lists_every_section_and_a_cv_needs_no_data() {
    let s = three_sections();
    s.write("content/_index.md", "+++\ntitle = \"Workshop\"\n+++\n");
    s.remove("data/cv.toml");
    let out = s.folio(&["build", "--no-minify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let home = s.read("public/index.html");
    for h in [">Notes</h2>", ">Lab</h2>", ">Talks</h2>"] {
        has(&home, h, "every section by default");
    }
    // No data/ at all: the CV is the page's title and text.
    let cv = s.read("public/cv/index.html");
    has(&cv, "Curriculum</h1>", "title from the page");
    has(&cv, "Hire me.", "text");
    assert!(!cv.contains("Experience</h2>"));
}

#[test]
fn a_site_with_no_sections_and_no_home_file_builds() {
    let s = bare(crate::common::CONFIG);
    s.write(
        "content/about.md",
        "+++\ntitle = \"About\"\n+++\nJust a page.\n",
    );
    let out = s.folio(&["build", "--no-minify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let home = s.read("public/index.html");
    has(
        &home,
        "<h1 id=\"hero-title\">Test site</h1>",
        "a home page titled by the site",
    );
    assert!(!home.contains("home-section"), "no section blocks");
    has(
        &s.read("public/about/index.html"),
        "Just a page.",
        "the page",
    );
    has(&s.read("public/404.html"), "href=\"/\"", "404 links home");
}

#[test]
fn required_false_makes_missing_data_and_sections_null_and_anything_else_an_error() {
    let s = bare(crate::common::CONFIG);
    s.write("content/_index.md", "+++\ntitle = \"Home\"\n+++\n");
    s.write(
        "templates/index.html",
        "{% set d = load_data(path=\"nope.csv\", required=false) %}{% set x = get_section(path=\"nope/_index.md\", required=false) %}[{% if d %}data{% else %}no data{% endif %}|{% if x %}section{% else %}no section{% endif %}]",
    );
    let out = s.folio(&["build", "--no-minify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    has(
        &s.read("public/index.html"),
        "[no data|no section]",
        "nulls",
    );
    // Without required=false a missing file is still an error, and so is a non-boolean.
    s.write(
        "templates/index.html",
        "{{ load_data(path=\"nope.csv\", required=\"no\") }}",
    );
    let bad = s.folio(&["build", "--no-minify"]);
    assert_eq!(bad.status.code(), Some(1));
    has(&stderr(&bad), "`required` must be true or false", "error");
    s.write(
        "templates/index.html",
        "{{ get_section(path=\"nope/_index.md\") }}",
    );
    let bad = s.folio(&["build", "--no-minify"]);
    assert_eq!(bad.status.code(), Some(1));
    has(&stderr(&bad), "is not a published section", "error");
    has(
        &s.read("public/index.html"),
        "[no data|no section]",
        "the previous output is untouched",
    );
}

#[test]
fn folio_new_builds_with_no_node_modules_and_shows_home_project_cover_cv_and_post() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty-node-modules");
    std::fs::create_dir(&empty).unwrap();
    let name = "my site ü's";
    let folio = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_folio"))
            .args(args)
            .current_dir(tmp.path())
            .env("FOLIO_NODE_MODULES", &empty)
            // Any attempt to reach the network through a proxy-aware client goes nowhere.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("https_proxy", "http://127.0.0.1:9")
            .env("http_proxy", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let new = folio(&["new", name]);
    assert!(new.status.success(), "{}", stderr(&new));
    let said = String::from_utf8_lossy(&new.stdout);
    has(
        &said,
        "Next: cd 'my site ü'\\''s' && folio",
        "the hint is shell-quoted",
    );
    let dir = tmp.path().join(name);
    // The starter's comments point at nothing that does not ship with the binary.
    for e in walkdir::WalkDir::new(&dir) {
        let e = e.unwrap();
        if let Ok(text) = std::fs::read_to_string(e.path()) {
            assert!(
                !text.contains("(docs/") && !text.contains(" docs/"),
                "{} points at docs/ files that do not ship: {text}",
                e.path().display()
            );
        }
    }
    assert!(!dir.join("node_modules").exists());
    let b = folio(&["build", "--no-minify", "--root", name]);
    assert!(b.status.success(), "{}", stderr(&b));
    assert!(
        stderr(&b).is_empty(),
        "a new site builds without a warning: {}",
        stderr(&b)
    );
    let read = |rel: &str| {
        std::fs::read_to_string(dir.join("public").join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    // Home: the project card with its cover, and the post.
    let home = read("index.html");
    has(
        &home,
        "href=\"/projects/hello-folio/\"",
        "home lists the project",
    );
    has(&home, "href=\"/blog/first-post/\"", "home lists the post");
    has(&home, "class=\"card-cover\"", "the project's cover");
    // The project page: a raster cover with responsive copies and its alt text.
    let project = read("projects/hello-folio/index.html");
    has(&project, "cover.720w.", "a resized copy of the PNG cover");
    has(&project, "alt=\"A blue and violet gradient\"", "cover_alt");
    let png = std::fs::read(dir.join("content/projects/hello-folio/cover.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "the cover is a real PNG");
    // The CV from data, with the talk.
    let cv = read("cv/index.html");
    has(&cv, "Experience</h2>", "cv from cv.toml");
    has(&cv, "Talks</h2>", "talks from talks.csv");
    // The post: date and reading time; in the feed.
    let post = read("blog/first-post/index.html");
    has(&post, "min read", "reading time");
    has(&post, "<time datetime=", "date");
    has(&read("atom.xml"), "/blog/first-post/", "feed");
}

/// A section whose front matter says `generate_feeds = true` (Zola's key) gets its own feed
/// beside its list page, of its own pages only, linked from that list page's head; a section
/// without it gets none, and the site's feed still holds every page. Under a subpath, so
/// every link in the feed carries it. A static file in the way of the feed is an error.
#[test]
fn a_section_asking_for_a_feed_gets_one_of_its_own_pages_linked_from_its_list() {
    let s = bare("title = \"Bench\"\nbase_url = \"https://example.org/sub/\"\nauthor = \"Ana\"\n");
    s.write("content/_index.md", "+++\ntitle = \"Bench\"\n+++\nHi.\n");
    s.write(
        "content/posts/_index.md",
        "+++\ntitle = \"Posts\"\npaginate_by = 2\ngenerate_feeds = true\n+++\n",
    );
    s.write("content/notes/_index.md", "+++\ntitle = \"Notes\"\n+++\n");
    // Zola's older name for the key works too.
    s.write(
        "content/talks/_index.md",
        "+++\ntitle = \"Talks\"\ngenerate_feed = true\n+++\n",
    );
    for i in 1..=3 {
        s.write(
            &format!("content/posts/p{i}.md"),
            &format!("+++\ntitle = \"Post {i}\"\ndate = 2025-03-0{i}\n+++\nSee [note](@/notes/n1.md) {}.\n", words(12)),
        );
    }
    s.write(
        "content/posts/undated.md",
        "+++\ntitle = \"Undated\"\n+++\nNo date, so in no feed.\n",
    );
    s.write(
        "content/notes/n1.md",
        "+++\ntitle = \"Note one\"\ndate = 2025-04-01\n+++\nA note.\n",
    );
    s.write(
        "content/talks/t1.md",
        "+++\ntitle = \"Talk one\"\ndate = 2025-02-01\n+++\nA talk.\n",
    );
    let out = s.folio(&["build"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("generate_feed"),
        "a known key is no warning: {err}"
    );

    let feed = s.read("public/posts/atom.xml");
    has(&feed, "<title>Posts · Bench</title>", "section feed title");
    has(
        &feed,
        "<link rel=\"self\" type=\"application/atom+xml\" href=\"https://example.org/sub/posts/atom.xml\"/>",
        "self link",
    );
    has(&feed, "<id>https://example.org/sub/posts/</id>", "feed id");
    for i in 1..=3 {
        has(
            &feed,
            &format!("https://example.org/sub/posts/p{i}/"),
            "entry",
        );
    }
    assert_eq!(feed.matches("<entry>").count(), 3, "{feed}");
    assert!(
        !feed.contains("/notes/n1/\"/>") && !feed.contains("Talk one"),
        "{feed}"
    );
    // The body's link to the note is rewritten under the subpath.
    has(&feed, "href=&quot;/sub/notes/n1/&quot;", "link in a body");
    assert!(s.read("public/talks/atom.xml").contains("Talk one"));
    assert!(!s.path("public/notes/atom.xml").exists());

    let site_feed = s.read("public/atom.xml");
    for title in ["Post 1", "Note one", "Talk one"] {
        has(&site_feed, title, "site feed");
    }
    // Each list page of the section and each of its pages link its feed; another section's
    // do not.
    for html in [
        "public/posts/index.html",
        "public/posts/page/2/index.html",
        "public/posts/p1/index.html",
    ] {
        has(
            &s.read(html),
            "https://example.org/sub/posts/atom.xml",
            html,
        );
    }
    for html in ["public/notes/index.html", "public/notes/n1/index.html"] {
        assert!(!s.read(html).contains("posts/atom.xml"), "{html}");
    }

    // A file of the site's own at the feed's path: an error naming both, the site kept.
    let before = s.snapshot();
    s.write("static/posts/atom.xml", "<feed/>\n");
    let clash = s.folio(&["build"]);
    let err = stderr(&clash);
    assert!(!clash.status.success(), "{err}");
    assert!(err.contains("posts/atom.xml"), "{err}");
    assert_eq!(before, s.snapshot(), "the last good site stays");
}
