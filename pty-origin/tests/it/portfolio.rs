//! The example portfolio's demos (content/projects/*/ with a [demo] table), read through
//! the generator's own `folio_content::demo::load`, build in the sandbox and run end to end.

use std::path::Path;

use crate::common::{Origin, SECS};
use terminal_protocol::ExitStatus;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_portfolio_demos_build_and_run() {
    let site = folio_content::demo::load(repo_root())
        .unwrap_or_else(|d| panic!("the example site does not load:\n{d}"));
    assert!(
        !site.demos.is_empty(),
        "the example portfolio declares no demos"
    );
    let origin = Origin::start(repo_root());
    for demo in &site.demos {
        let mut t = origin.connect(&demo.id).await;
        if let Some(motd) = &demo.motd {
            let first_line = motd.lines().next().unwrap_or_default();
            t.expect(first_line, SECS(20)).await;
        }
        let is_shell = demo
            .command
            .first()
            .is_some_and(|c| c.ends_with("bash") || c.ends_with("/sh"));
        if is_shell {
            // The build's outputs are in the session's copy and the project runs. (The
            // marker is computed by the shell, so only a found executable prints it.)
            let out = t
                .run(
                    "ls -la && test -n \"$(find . -maxdepth 1 -type f -perm -u+x)\" && echo built-$((6*7))",
                    SECS(30),
                )
                .await;
            assert!(
                out.contains("built-42"),
                "{}: no executable after the build:\n{out}",
                demo.id
            );
            if demo.id == "minirt" && Path::new(&demo.workdir).join("scenes/demo.rt").exists() {
                let out = t
                    .run(
                        "./minirt -a -w 40 -h 12 scenes/demo.rt >/dev/null; echo rc=$?",
                        SECS(60),
                    )
                    .await;
                assert!(out.contains("rc=0"), "minirt: {out}");
            }
            t.send("exit 0\r").await;
        } else {
            // A REPL or program: it runs until end of input.
            t.pump(SECS(2)).await;
            assert!(!t.closed, "{} exited at once: {:?}", demo.id, t.tail());
            t.send("\x04").await;
        }
        let status = t.wait_exit(SECS(30)).await;
        assert_eq!(status, ExitStatus::Code(0), "{}: {}", demo.id, t.tail());
    }
}

#[test]
fn check_subcommand_validates_the_example_portfolio() {
    crate::common::require_bwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_folio-pty"))
        .args(["check", "--site"])
        .arg(repo_root())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.lines().all(|l| l.starts_with("ok ")), "{text}");
}
