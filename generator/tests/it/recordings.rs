//! Demo recordings: `folio record` makes one by running the demo in folio-pty's real sandbox
//! (bubblewrap; the test needs `cargo build -p folio-pty` first and bwrap installed), and
//! `folio build` turns it into a poster without any sandbox; a bad recording fails the build
//! at its line and column and leaves the previous output as it was.

use std::path::Path;

use crate::common::{stderr, Site};

const PAGE: &str = "content/projects/greeter/index.md";

/// A demo unlike the example portfolio's: a POSIX shell script that asks a question,
/// answers in bold green, prints wide characters and the sandbox's host name, then waits.
fn greeter_site(front_extra: &str) -> Site {
    let s = Site::new();
    s.write(
        PAGE,
        &format!(
            r#"+++
title = "Greeter"
date = 2024-05-06
[demo]
workdir = "app"
command = ["/bin/sh", "./greet.sh"]
recording = "session.cast"
{front_extra}
[[demo.script]]
wait = "name? "
[[demo.script]]
type = "Ada\n"
[[demo.script]]
wait = "bye"
timeout = 20
[[demo.script]]
sleep = 0.2
+++
A greeter.
"#
        ),
    );
    s.write(
        "content/projects/greeter/app/greet.sh",
        "printf 'name? '\nread name\nprintf '\\033[1;32mhello, %s\\033[0m\\n' \"$name\"\nprintf 'wide: \\346\\227\\245\\346\\234\\254 host=%s\\n' \"$(uname -n)\"\nprintf 'bye\\n'\nread _\n",
    );
    s
}

fn require_folio_pty() {
    let pty = Path::new(env!("CARGO_BIN_EXE_folio")).with_file_name("folio-pty");
    assert!(
        pty.is_file(),
        "folio record needs folio-pty next to folio: run `cargo build -p folio-pty` first"
    );
    let bwrap = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()));
    assert!(
        bwrap,
        "folio record runs the demo in bubblewrap: apt-get install bubblewrap"
    );
}

#[test]
fn record_in_the_sandbox_then_build_a_poster_without_it() {
    require_folio_pty();
    let s = greeter_site("");
    let out = s.folio(&["record", PAGE]);
    assert!(
        out.status.success(),
        "folio record failed:\n{}",
        stderr(&out)
    );
    let cast = s.read("content/projects/greeter/session.cast");
    let mut lines = cast.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert_eq!(
        (header["width"].as_u64(), header["height"].as_u64()),
        (Some(80), Some(24))
    );
    let output: String = lines
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap().to_string())
        .collect();
    assert!(output.contains("hello, Ada"), "{output}");
    // The sandbox's own host name: the demo ran in folio-pty's sandbox, not on the host.
    assert!(output.contains("host=folio"), "{output}");

    // The build reads only the committed file: no folio-pty, no sandbox.
    let pty = Path::new(env!("CARGO_BIN_EXE_folio")).with_file_name("folio-pty");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_folio"));
    cmd.args(["build", "--root"]).arg(s.root());
    cmd.env("PATH", "/nonexistent");
    // The repository's xterm.js, so the page carries the player's data too.
    cmd.env(
        "FOLIO_NODE_MODULES",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules"),
    );
    let built = cmd.output().unwrap();
    assert!(built.status.success(), "{}", stderr(&built));
    assert!(pty.is_file());
    let html = s.read("public/projects/greeter/index.html");
    assert!(
        html.contains("<span class=\"f2 b\">hello, Ada</span>"),
        "bold green as classes: {html}"
    );
    assert!(html.contains("wide: 日本 host=folio"), "{html}");
    assert!(html.contains("data-cast-poster"), "{html}");
    assert!(!html.contains("style="), "no inline styles under the CSP");
    // The cast is published for the player, once (not also as a bundle file).
    let public = s.snapshot();
    let casts: Vec<_> = public.keys().filter(|k| k.ends_with(".cast")).collect();
    assert_eq!(casts.len(), 1, "{casts:?}");
    assert!(
        html.contains(&format!("data-recording=/{}", casts[0]))
            || html.contains(&format!("data-recording=\"/{}\"", casts[0])),
        "{html}"
    );
}

#[test]
fn a_wait_that_never_matches_fails_the_recording_and_says_what_was_seen() {
    require_folio_pty();
    let s = greeter_site("");
    // The answer never comes: the script waits for text the demo never prints.
    let text = s.read(PAGE).replace(
        "wait = \"bye\"\ntimeout = 20",
        "wait = \"never printed\"\ntimeout = 1",
    );
    s.write(PAGE, &text);
    let out = s.folio(&["record", PAGE]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("script step 3") && err.contains("never printed"),
        "{err}"
    );
    assert!(
        err.contains("hello, Ada"),
        "the output so far is shown: {err}"
    );
    assert!(
        !s.path("content/projects/greeter/session.cast").exists(),
        "no half recording"
    );
}

const CAST_OK: &str = "{\"version\": 2, \"width\": 20, \"height\": 3}\n[0.1, \"o\", \"one\\r\\n\"]\n[2.0, \"o\", \"\\u001b[31mtwo\\u001b[0m\\r\\n\"]\n";

#[test]
fn a_recording_builds_without_a_sandbox_and_the_poster_can_be_a_chosen_moment() {
    let s = greeter_site("poster = 1.5");
    s.write("content/projects/greeter/session.cast", CAST_OK);
    s.build_ok();
    let html = s.read("public/projects/greeter/index.html");
    // At 1.5 s only the first line was printed; the box is still 3 rows of 20 cells.
    let pre = html
        .split("data-cast-poster>")
        .nth(1)
        .unwrap()
        .split("</pre>")
        .next()
        .unwrap();
    assert_eq!(
        pre,
        format!(
            "one{}\n{}\n{}",
            " ".repeat(17),
            " ".repeat(20),
            " ".repeat(20)
        )
    );
    // Without `poster`, the last screen.
    let t = s.read(PAGE).replace("poster = 1.5\n", "");
    s.write(PAGE, &t);
    s.build_ok();
    let html = s.read("public/projects/greeter/index.html");
    assert!(
        html.contains("<span class=f1>two</span>")
            || html.contains("<span class=\"f1\">two</span>"),
        "{html}"
    );
}

#[test]
fn a_bad_recording_fails_at_its_line_and_column_and_keeps_the_old_site() {
    let s = greeter_site("");
    s.write("content/projects/greeter/session.cast", CAST_OK);
    s.build_ok();
    let before = s.snapshot();
    s.write(
        "content/projects/greeter/session.cast",
        "{\"version\": 2, \"width\": 20, \"height\": 3}\n[0.1, \"o\", \"one\"]\n[0.2, \"o\", 42]\n",
    );
    let out = s.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("content/projects/greeter/session.cast:3:12:")
            && err.contains("data must be a string"),
        "{err}"
    );
    assert_eq!(s.snapshot(), before, "the previous output is untouched");

    // A missing file: at the `recording` key of the front matter.
    s.remove("content/projects/greeter/session.cast");
    let out = s.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("{PAGE}:7:1:")), "{err}");
    assert!(err.contains("folio record"), "says how to make it: {err}");
    assert_eq!(s.snapshot(), before);
}

#[test]
fn script_steps_are_checked() {
    let s = greeter_site("");
    s.write("content/projects/greeter/session.cast", CAST_OK);
    let t = s
        .read(PAGE)
        .replace("sleep = 0.2", "sleep = 0.2\ntype = \"x\"");
    s.write(PAGE, &t);
    let out = s.folio(&["build"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("script step 4 must have exactly one of"),
        "{err}"
    );
}

#[test]
fn a_demo_without_a_recording_keeps_the_plain_terminal() {
    let s = greeter_site("");
    let t = s.read(PAGE).replace("recording = \"session.cast\"\n", "");
    s.write(PAGE, &t);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_folio"));
    cmd.args(["build", "--root"]).arg(s.root());
    cmd.env(
        "FOLIO_NODE_MODULES",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules"),
    );
    let built = cmd.output().unwrap();
    assert!(built.status.success(), "{}", stderr(&built));
    let html = s.read("public/projects/greeter/index.html");
    assert!(html.contains("data-terminal-start"), "{html}");
    assert!(html.contains("Start the terminal"), "{html}");
    assert!(!html.contains("data-cast"), "no recording UI: {html}");
    assert!(!html.contains("/js/demo."), "no demo.js: {html}");
    assert!(!s.snapshot().keys().any(|k| k.ends_with(".cast")));
}
