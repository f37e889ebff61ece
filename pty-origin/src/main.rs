//! `folio-pty`: parses the command line and calls into the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// folio's terminal origin: serves the site's demos as sandboxed PTYs over WebSocket.
#[derive(Parser)]
#[command(name = "folio-pty", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `/terminal/<demo>` for every demo the site declares.
    Serve(folio_pty::commands::ServeArgs),
    /// Print a token for a demo, as the Worker would mint it.
    Token {
        /// The demo id (its page's slug).
        #[arg(long)]
        demo: String,
        /// File holding the shared secret.
        #[arg(long)]
        secret_file: PathBuf,
        /// Lifetime in seconds (at most 60).
        #[arg(long, default_value_t = 60)]
        ttl: u64,
    },
    /// Validate the site's demos: folders exist and build steps succeed in the sandbox.
    Check {
        /// The site's root.
        #[arg(long)]
        site: PathBuf,
        /// INSECURE: build without the sandbox (development only).
        #[arg(long)]
        insecure_no_sandbox: bool,
        /// Where to create the (fresh) build directory; default $RUNTIME_DIRECTORY or a new
        /// private directory in the temp dir.
        #[arg(long)]
        runtime_dir: Option<PathBuf>,
    },
    /// Record a demo (asciicast v2) by running its `[[demo.script]]` in the sandbox, as a
    /// visitor's session runs it; `folio record PAGE` calls this.
    Record(folio_pty::record::RecordArgs),
    /// Internal: the first process inside each sandbox.
    #[command(hide = true)]
    SandboxInit(folio_pty::sandbox::InitArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::SandboxInit(args) => {
            let err = folio_pty::sandbox::init_main(args).unwrap_err();
            eprintln!("folio-pty sandbox-init: {err}");
            std::process::exit(127);
        }
        Command::Token {
            demo,
            secret_file,
            ttl,
        } => {
            println!("{}", folio_pty::commands::token(&demo, &secret_file, ttl)?);
            Ok(())
        }
        Command::Check {
            site,
            insecure_no_sandbox,
            runtime_dir,
        } => runtime()?.block_on(folio_pty::commands::check(
            &site,
            insecure_no_sandbox,
            runtime_dir,
        )),
        Command::Record(args) => {
            let (out, secs) = runtime()?.block_on(folio_pty::record::record(args))?;
            println!("recorded {:.1} s to {}", secs, out.display());
            Ok(())
        }
        Command::Serve(args) => {
            // `_base`: the private temp directory, if one was made, removed after the server.
            let (opts, _base) = folio_pty::commands::serve_options(args)?;
            runtime()?.block_on(folio_pty::server::serve(opts))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
