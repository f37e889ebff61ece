//! The `folio` command line: parses arguments and hands over to the library's commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
mod commands;
mod deploy;
mod record;
mod scaffold;
mod serve;
mod ui;

use ui::Output;

/// folio: a fast static site generator for developer portfolios.
///
/// Write one markdown file per project under content/, run `folio build`, deploy public/.
#[derive(Parser)]
#[command(
    name = "folio",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
struct Cli {
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print the time of each phase and the cache statistics.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the site into public/ (or --output); a failed build leaves the old output untouched.
    Build(BuildArgs),
    /// Validate everything `build` validates (front matter, templates, links, anchors) without writing.
    Check(CheckArgs),
    /// Serve the site on 127.0.0.1 while you write: rebuilt on every save, tabs reloaded,
    /// /api/views and /terminal/* answered locally with the Worker's rules.
    Serve(ServeArgs),
    /// Create a new site in DIR: a home page, an about page, one project write-up, and the
    /// deploy side (wrangler.toml, a small Worker crate, the CI workflow).
    New {
        /// Folder to create (must not exist, or be empty).
        dir: PathBuf,
    },
    /// Build the site and its Worker and deploy both to Cloudflare (wrangler), after
    /// checking the set-up: every missing piece is named with the way to fix it.
    Deploy(DeployArgs),
    /// Move a Zola or Hugo site in: write folio.toml from its configuration, in place, and
    /// report every setting that could not be carried over. Content stays as it is.
    Import {
        /// The generator the site comes from.
        #[arg(value_enum)]
        from: ImportFrom,
        /// The site folder, holding Zola's config.toml or Hugo's hugo.toml/config.toml/config.yaml.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Record a page's demo (asciicast v2, to its `[demo] recording`) by running its
    /// `[[demo.script]]` in folio-pty's sandbox, as a visitor's session runs.
    Record {
        /// The write-up (its .md file, or its bundle folder).
        page: PathBuf,
        /// The site folder, holding folio.toml.
        #[arg(long, default_value = ".", value_name = "DIR")]
        root: PathBuf,
        /// Terminal width.
        #[arg(long, default_value_t = 80)]
        cols: u16,
        /// Terminal height.
        #[arg(long, default_value_t = 24)]
        rows: u16,
    },
    /// The deploy side of an existing site.
    #[command(subcommand)]
    Edge(EdgeCommand),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ImportFrom {
    /// Zola (config.toml).
    Zola,
    /// Hugo (hugo.toml, config.toml, config.yaml).
    Hugo,
}

#[derive(Subcommand)]
enum EdgeCommand {
    /// Add wrangler.toml, the Worker crate (worker/), .dev.vars.example, package.json and the
    /// CI workflow to an existing site; never overwrites a file.
    Init {
        /// The site folder, holding folio.toml.
        #[arg(long, default_value = ".", value_name = "DIR")]
        root: PathBuf,
    },
}

#[derive(Args)]
struct DeployArgs {
    /// The site folder, holding folio.toml and wrangler.toml.
    #[arg(long, default_value = ".", value_name = "DIR")]
    root: PathBuf,
    /// Upload a preview version (wrangler versions upload) instead of deploying; prints its URL.
    #[arg(long, conflicts_with = "dry_run")]
    preview: bool,
    /// Check, build and bundle everything, upload nothing (no Cloudflare account needed).
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct BuildArgs {
    /// The site folder, holding folio.toml.
    #[arg(long, default_value = ".", value_name = "DIR")]
    root: PathBuf,
    /// Where to write the site [default: <root>/public].
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Also publish pages marked `draft = true`.
    #[arg(long)]
    drafts: bool,
    /// Override base_url from folio.toml (e.g. for a preview deployment).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// Write HTML as rendered, unminified (for debugging templates).
    #[arg(long)]
    no_minify: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// The site folder, holding folio.toml.
    #[arg(long, default_value = ".", value_name = "DIR")]
    root: PathBuf,
    /// Port on 127.0.0.1 (0: any free port, printed at start).
    #[arg(long, default_value_t = 1111)]
    port: u16,
    /// Open the site in the browser (xdg-open).
    #[arg(long)]
    open: bool,
    /// Also publish pages marked `draft = true`.
    #[arg(long)]
    drafts: bool,
    /// Start a local folio-pty (found next to folio or on PATH) for /terminal/<demo>.
    #[arg(long, conflicts_with = "terminal_origin")]
    terminal: bool,
    /// Relay /terminal/<demo> to a terminal origin already running at URL.
    #[arg(long, value_name = "URL", requires = "terminal_secret_file")]
    terminal_origin: Option<String>,
    /// The secret file the --terminal-origin was started with.
    #[arg(long, value_name = "FILE")]
    terminal_secret_file: Option<PathBuf>,
}

#[derive(Args)]
struct CheckArgs {
    /// The site folder, holding folio.toml.
    #[arg(long, default_value = ".", value_name = "DIR")]
    root: PathBuf,
    /// Also check pages marked `draft = true`.
    #[arg(long)]
    drafts: bool,
    /// Also request every external (http/https) link: concurrently, with retries, answers
    /// cached for a day in .folio/cache/links.json.
    #[arg(long)]
    external: bool,
    /// Seconds allowed for one external request.
    #[arg(long, default_value_t = 10, value_name = "SECS", requires = "external")]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.quiet, cli.verbose);
    let ok = match cli.command {
        Command::Build(a) => {
            commands::build(&out, a.root, a.output, a.drafts, a.base_url, !a.no_minify)
        }
        Command::Check(a) => commands::check(
            &out,
            a.root,
            a.drafts,
            a.external
                .then(|| std::time::Duration::from_secs(a.timeout.max(1))),
        ),
        Command::Serve(a) => commands::serve(
            &out,
            serve::ServeOptions {
                root: a.root,
                port: a.port,
                open: a.open,
                drafts: a.drafts,
                terminal: a.terminal,
                terminal_origin: a.terminal_origin,
                terminal_secret_file: a.terminal_secret_file,
            },
        ),
        Command::New { dir } => commands::new_site(&out, &dir),
        Command::Record {
            page,
            root,
            cols,
            rows,
        } => record::run(
            &out,
            &record::RecordOptions {
                page,
                root,
                cols,
                rows,
            },
        ),
        Command::Deploy(a) => deploy::run(
            &out,
            &deploy::DeployOptions {
                root: a.root,
                preview: a.preview,
                dry_run: a.dry_run,
            },
        ),
        Command::Edge(EdgeCommand::Init { root }) => commands::edge_init(&out, &root),
        Command::Import { from, dir } => commands::import(
            &out,
            match from {
                ImportFrom::Zola => folio::import::Origin::Zola,
                ImportFrom::Hugo => folio::import::Origin::Hugo,
            },
            &dir,
        ),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
