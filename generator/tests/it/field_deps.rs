//! Field-level dependencies: a listing depends on the fields of the pages it shows that its
//! templates name, not on their bodies. After each edit, `folio serve`'s engine (`LiveSite`)
//! and an incremental `folio build` (through the page cache) must give exactly what a fresh
//! full build gives, and render only what shows what changed.

use std::collections::BTreeMap;
use std::path::Path;

use folio::live::LiveSite;
use folio::site::{build, BuildOptions, Mode};

use crate::common::{snapshot, Site};

fn options(root: &Path, mode: Mode) -> BuildOptions {
    let mut o = BuildOptions::new(root);
    o.mode = mode;
    o
}

/// A full build of a copy of the site's sources (no cache, no previous build).
fn fresh(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let copy = tempfile::tempdir().unwrap();
    for e in walkdir::WalkDir::new(root).into_iter().filter_entry(|e| {
        // Not the output, the caches, nor a staging or old output folder beside them.
        let n = e.file_name().to_string_lossy();
        e.depth() != 1 || !(n.starts_with('.') || n == "public")
    }) {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap();
        let to = copy.path().join(rel);
        if e.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
    build(&options(copy.path(), Mode::Memory))
        .unwrap_or_else(|d| panic!("fresh build failed:\n{d}"))
        .files_in_memory
}

fn assert_same(got: &BTreeMap<String, Vec<u8>>, want: &BTreeMap<String, Vec<u8>>, step: &str) {
    let keys = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(got), keys(want), "{step}: not the same files");
    for (k, v) in want {
        assert!(got[k] == *v, "{step}: {k} differs from a fresh full build");
    }
}

/// A notes site with its own templates: list pages of three notes showing title, date and
/// summary; a home showing only titles (through `get_section`); tag pages showing titles.
fn notes_site() -> Site {
    let s = Site::new();
    s.write("content/_index.md", "+++\ntitle = \"Start\"\n+++\nHello.\n");
    s.write(
        "content/notes/_index.md",
        "+++\ntitle = \"Notes\"\nsort_by = \"date\"\npaginate_by = 3\n+++\n",
    );
    for i in 1..=8 {
        let tag = ["red", "green", "blue"][i % 3];
        s.write(
            &format!("content/notes/n{i}.md"),
            &format!(
                "+++\ntitle = \"Note {i}\"\ndate = 2022-03-{i:02}\ntags = [\"{tag}\", \"all\"]\n+++\nLead of note {i}.\n\n<!-- more -->\n\nRest of note {i}, which only the page shows.\n"
            ),
        );
    }
    s.write(
        "templates/shell.html",
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{% block t %}{% endblock %}</title></head><body>{% block b %}{% endblock %}</body></html>",
    );
    s.write(
        "templates/page.html",
        "{% extends \"shell.html\" %}{% block t %}{{ page.title }}{% endblock %}{% block b %}<h1>{{ page.title }}</h1>{{ page.content | safe }}{% endblock %}",
    );
    s.write(
        "templates/section.html",
        "{% extends \"shell.html\" %}{% block t %}{{ section.title }}{% endblock %}{% block b %}{% if paginator %}{% for p in paginator.pages %}<article><a href=\"{{ p.path }}\">{{ p.title }}</a> {{ p.date }}{{ p.summary | safe }}</article>{% endfor %}{% endif %}{% endblock %}",
    );
    s.write(
        "templates/index.html",
        "{% extends \"shell.html\" %}{% block t %}{{ config.title }}{% endblock %}{% block b %}{% set notes = get_section(path=\"notes/_index.md\") %}<ul>{% for p in notes.pages %}<li>{{ p.title }}</li>{% endfor %}</ul>{% endblock %}",
    );
    s.write(
        "templates/taxonomy_single.html",
        "{% extends \"shell.html\" %}{% block t %}{{ term.name }}{% endblock %}{% block b %}{% for p in term.pages %}<p>{{ p.title }}</p>{% endfor %}{% endblock %}",
    );
    s.write(
        "templates/taxonomy_list.html",
        "{% extends \"shell.html\" %}{% block b %}{% for t in terms %}<a href=\"{{ t.path }}\">{{ t.name }} {{ t.count }}</a>{% endfor %}{% endblock %}",
    );
    s.write(
        "templates/404.html",
        "{% extends \"shell.html\" %}{% block b %}Not here.{% endblock %}",
    );
    s
}

fn note(i: usize, title: &str, tags: &[&str], lead: &str, rest: &str) -> String {
    let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "+++\ntitle = {title:?}\ndate = 2022-03-{i:02}\ntags = [{}]\n+++\n{lead}\n\n<!-- more -->\n\n{rest}\n",
        tags.join(", ")
    )
}

/// The live engine's step: rebuild after `rel` changed, compare with a fresh build, and
/// return what was rendered.
fn live_step(live: &mut LiveSite, site: &Site, rel: &str, step: &str) -> Vec<String> {
    let r = live
        .rebuild(&[site.path(rel)])
        .unwrap_or_else(|d| panic!("{step}: {d}"));
    let got: BTreeMap<String, Vec<u8>> = live
        .files()
        .iter()
        .map(|(k, v)| (k.clone(), v.to_vec()))
        .collect();
    assert_same(&got, &fresh(site.root()), step);
    r.rendered_paths
}

/// Which list page of the notes section shows note `i` (dates ascending, sorted newest first:
/// note 8, 7, 6 on the first page).
fn pager_of(i: usize) -> String {
    match (8 - i) / 3 {
        0 => "notes/index.html".into(),
        n => format!("notes/page/{}/index.html", n + 1),
    }
}

#[test]
fn listings_rerender_only_when_a_field_they_show_changes() {
    let site = notes_site();
    let mut live = LiveSite::new(options(site.root(), Mode::Memory));
    live.build_all().unwrap_or_else(|d| panic!("{d}"));

    // Body edit below the summary: only the page itself.
    site.write(
        "content/notes/n4.md",
        &note(
            4,
            "Note 4",
            &["green", "all"],
            "Lead of note 4.",
            "A much longer rest of note four, now with many more words than before.",
        ),
    );
    let r = live_step(&mut live, &site, "content/notes/n4.md", "body edit");
    assert_eq!(r, vec!["notes/n4/index.html"], "body edit rendered {r:?}");

    // Title: the page, its list page, its tag pages, the home (through get_section); not
    // the other list pages nor the other tags' pages.
    site.write(
        "content/notes/n4.md",
        &note(4, "Fourth", &["green", "all"], "Lead of note 4.", "Rest."),
    );
    let r = live_step(&mut live, &site, "content/notes/n4.md", "title edit");
    for want in [
        "notes/n4/index.html",
        &pager_of(4),
        "tags/green/index.html",
        "tags/all/index.html",
        "index.html",
    ] {
        assert!(
            r.iter().any(|p| p == want),
            "title edit: {want} not in {r:?}"
        );
    }
    for not in [
        &pager_of(8),
        &pager_of(1),
        "tags/red/index.html",
        "tags/blue/index.html",
    ] {
        assert!(!r.iter().any(|p| p == not), "title edit: {not} in {r:?}");
    }

    // A tag added: its new page, the tag list; the page's old tag pages only if their
    // listing changed (they show titles only: they do not).
    site.write(
        "content/notes/n4.md",
        &note(
            4,
            "Fourth",
            &["green", "all", "violet"],
            "Lead of note 4.",
            "Rest.",
        ),
    );
    let r = live_step(&mut live, &site, "content/notes/n4.md", "tag added");
    for want in [
        "tags/violet/index.html",
        "tags/index.html",
        "notes/n4/index.html",
    ] {
        assert!(
            r.iter().any(|p| p == want),
            "tag added: {want} not in {r:?}"
        );
    }
    assert!(!r.iter().any(|p| p == "index.html"), "tag added: {r:?}");

    // The summary marker moved: the list page that shows summaries; not the home nor the
    // tag pages (titles only).
    site.write(
        "content/notes/n4.md",
        "+++\ntitle = \"Fourth\"\ndate = 2022-03-04\ntags = [\"green\", \"all\", \"violet\"]\n+++\nLead of note 4.\n\nRest.\n\n<!-- more -->\n\nTail.\n",
    );
    let r = live_step(&mut live, &site, "content/notes/n4.md", "summary moved");
    for want in ["notes/n4/index.html", &pager_of(4)] {
        assert!(
            r.iter().any(|p| p == want),
            "summary moved: {want} not in {r:?}"
        );
    }
    for not in [
        "index.html",
        "tags/green/index.html",
        "tags/violet/index.html",
    ] {
        assert!(!r.iter().any(|p| p == not), "summary moved: {not} in {r:?}");
    }

    // A template that starts showing the word count: every listing using it renders again,
    // and later body edits reach it.
    site.write(
        "templates/taxonomy_single.html",
        "{% extends \"shell.html\" %}{% block b %}{% for p in term.pages %}<p>{{ p.title }} {{ p.word_count }}</p>{% endfor %}{% endblock %}",
    );
    live_step(
        &mut live,
        &site,
        "templates/taxonomy_single.html",
        "template reads word_count",
    );
    site.write(
        "content/notes/n4.md",
        &note(
            4,
            "Fourth",
            &["green", "all", "violet"],
            "Lead of note 4.",
            "Rest, with a few more words.",
        ),
    );
    let r = live_step(
        &mut live,
        &site,
        "content/notes/n4.md",
        "body edit seen by word_count",
    );
    assert!(r.iter().any(|p| p == "tags/violet/index.html"), "{r:?}");
    assert!(!r.iter().any(|p| p == "index.html"), "{r:?}");
}

#[test]
fn reads_the_templates_cannot_name_keep_listings_exact() {
    let site = notes_site();
    // Whole pages serialised, a computed field name: every field counts for these.
    site.write(
        "templates/taxonomy_single.html",
        "{% extends \"shell.html\" %}{% block b %}<script type=\"application/json\">{{ term.pages | json_ld | safe }}</script>{% endblock %}",
    );
    site.write(
        "templates/section.html",
        "{% extends \"shell.html\" %}{% block b %}{% set f = \"word\" ~ \"_count\" %}{% for p in section.pages %}{{ p[f] }} {% endfor %}{% endblock %}",
    );
    let mut live = LiveSite::new(options(site.root(), Mode::Memory));
    live.build_all().unwrap_or_else(|d| panic!("{d}"));
    for (k, body) in [
        (1, "Two words."),
        (2, "Now three words."),
        (1, "Back to a few words here."),
    ] {
        site.write(
            &format!("content/notes/n{k}.md"),
            &note(k, &format!("Note {k}"), &["all"], "Lead.", body),
        );
        let r = live_step(
            &mut live,
            &site,
            &format!("content/notes/n{k}.md"),
            "body edit",
        );
        assert!(r.iter().any(|p| p == "tags/all/index.html"), "{r:?}");
        assert!(
            r.iter().any(|p| p == &pager_of(1)) || r.iter().any(|p| p == "notes/index.html"),
            "{r:?}"
        );
    }
}

/// The same through `folio build`'s page cache: a body edit renders one page again.
#[test]
fn an_incremental_build_renders_again_only_what_shows_the_change() {
    let site = notes_site();
    let opts = options(site.root(), Mode::Write);
    let first = build(&opts).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(first.page_cache.hits, 0);
    let warm = build(&opts).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        warm.page_cache.misses, 0,
        "an unchanged site renders nothing"
    );
    assert_same(&snapshot(&site.path("public")), &fresh(site.root()), "warm");

    site.write(
        "content/notes/n2.md",
        &note(
            2,
            "Note 2",
            &["blue", "all"],
            "Lead of note 2.",
            "Another rest, longer than the first one was.",
        ),
    );
    let r = build(&opts).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(r.page_cache.misses, 1, "a body edit renders one page");
    assert_same(
        &snapshot(&site.path("public")),
        &fresh(site.root()),
        "body edit",
    );

    site.write(
        "content/notes/n2.md",
        &note(2, "Second", &["blue", "all"], "Lead of note 2.", "Rest."),
    );
    let r = build(&opts).unwrap_or_else(|d| panic!("{d}"));
    assert!(r.page_cache.misses > 3, "{:?}", r.page_cache);
    assert_same(
        &snapshot(&site.path("public")),
        &fresh(site.root()),
        "title edit",
    );
}

/// With the theme (listings show the reading time): a body edit that keeps it re-renders
/// only its page.
#[test]
fn with_the_theme_a_body_edit_renders_one_page() {
    let site = Site::new();
    let mut live = LiveSite::new(options(site.root(), Mode::Memory));
    live.build_all().unwrap_or_else(|d| panic!("{d}"));
    site.write(
        "content/projects/alpha.md",
        "+++\ntitle = \"Alpha\"\ndate = 2024-01-02\ntags = [\"rust\", \"cli\"]\ndescription = \"The first\"\n+++\nSummary here.\n\n<!-- more -->\n\n## Intro\n\nA different body with `code` and more words.\n\n```rust\nfn main() { run() }\n```\n",
    );
    let r = live_step(
        &mut live,
        &site,
        "content/projects/alpha.md",
        "theme body edit",
    );
    assert_eq!(r, vec!["projects/alpha/index.html"], "{r:?}");
}

/// A page that shows another page's title through `get_page`: rendered again when that title
/// changes, not when that page's body does.
#[test]
fn get_page_callers_depend_on_the_fields_they_name() {
    let site = notes_site();
    site.write(
        "templates/pick.html",
        "{% extends \"shell.html\" %}{% block b %}{% set n = get_page(path=\"notes/n5.md\") %}<p>Pick: <a href=\"{{ n.path }}\">{{ n.title }}</a></p>{% endblock %}",
    );
    site.write(
        "content/pick.md",
        "+++\ntitle = \"Pick\"\ntemplate = \"pick.html\"\n+++\n",
    );
    let mut live = LiveSite::new(options(site.root(), Mode::Memory));
    live.build_all().unwrap_or_else(|d| panic!("{d}"));

    site.write(
        "content/notes/n5.md",
        &note(
            5,
            "Note 5",
            &["blue", "all"],
            "Lead of note 5.",
            "A new rest for five, longer.",
        ),
    );
    let r = live_step(&mut live, &site, "content/notes/n5.md", "body edit");
    assert_eq!(r, vec!["notes/n5/index.html"], "{r:?}");

    site.write(
        "content/notes/n5.md",
        &note(5, "Fifth", &["blue", "all"], "Lead of note 5.", "Rest."),
    );
    let r = live_step(&mut live, &site, "content/notes/n5.md", "title edit");
    assert!(r.iter().any(|p| p == "pick/index.html"), "{r:?}");
}

/// `get_section` with `attribute`/`value` (the pages whose field equals a value), `limit`
/// (the first pages) and `metadata_only` (no pages): what a home page uses to show a few
/// pages of a large section without copying all of them. Each step equals a full build; a
/// page picked by an attribute is picked again when that attribute changes, though the
/// template never prints it.
#[test]
fn get_section_picks_pages_by_attribute_and_limit_and_follows_the_attribute() {
    let site = notes_site();
    site.write(
        "templates/pick.html",
        "{% extends \"shell.html\" %}{% block b %}{% set f = get_section(path=\"notes/_index.md\", attribute=\"extra.featured\", value=true) %}<p>F:{% for p in f.pages %} {{ p.title }}{% endfor %}</p>{% set l = get_section(path=\"notes/_index.md\", limit=2) %}<p>L:{% for p in l.pages %} {{ p.title }}{% endfor %}</p>{% set m = get_section(path=\"notes/_index.md\", metadata_only=true) %}<p>M: {{ m.pages | length }} of {{ m.page_count }}</p>{% endblock %}",
    );
    site.write(
        "content/pick.md",
        "+++\ntitle = \"Pick\"\ntemplate = \"pick.html\"\n+++\n",
    );
    let featured = |i: usize, on: bool| {
        format!(
            "+++\ntitle = \"Note {i}\"\ndate = 2022-03-{i:02}\ntags = [\"all\"]\n[extra]\nfeatured = {on}\n+++\nLead of note {i}.\n"
        )
    };
    site.write("content/notes/n3.md", &featured(3, true));
    let mut live = LiveSite::new(options(site.root(), Mode::Memory));
    live.build_all().unwrap_or_else(|d| panic!("{d}"));
    let shown =
        |live: &LiveSite| String::from_utf8(live.files()["pick/index.html"].to_vec()).unwrap();
    let page = shown(&live);
    assert!(page.contains("F: Note 3<"), "{page}");
    assert!(page.contains("L: Note 8 Note 7<"), "{page}");
    assert!(page.contains("M: 0 of 8"), "{page}");

    // The attribute moves from note 3 to note 5: the picking page follows.
    site.write("content/notes/n3.md", &featured(3, false));
    live_step(&mut live, &site, "content/notes/n3.md", "unfeature 3");
    site.write("content/notes/n5.md", &featured(5, true));
    let r = live_step(&mut live, &site, "content/notes/n5.md", "feature 5");
    assert!(r.iter().any(|p| p == "pick/index.html"), "{r:?}");
    assert!(shown(&live).contains("F: Note 5<"), "{}", shown(&live));

    // Bad arguments are errors naming the function.
    for (args, says) in [
        ("limit=\"two\"", "`limit` must be a whole number"),
        (
            "attribute=\"extra.featured\"",
            "`attribute` needs a `value`",
        ),
        ("value=true", "`value` needs the `attribute`"),
        (
            "metadata_only=\"yes\"",
            "`metadata_only` must be true or false",
        ),
    ] {
        site.write(
            "templates/pick.html",
            &format!(
                "{{% set x = get_section(path=\"notes/_index.md\", {args}) %}}{{{{ x.title }}}}"
            ),
        );
        let err = build(&options(site.root(), Mode::Memory))
            .err()
            .unwrap_or_else(|| panic!("{args}: built"));
        assert!(err.to_string().contains(says), "{args}: {err}");
    }
}
