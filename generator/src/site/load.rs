//! The first phases: open the site (its folder, `folio.toml`, its theme, where the output
//! goes), load every input at once, then generate the static files made from them (the code
//! stylesheet, cover variants, the terminal's browser code).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::assets::{Assets, Payload};
use crate::covers::Covers;
use crate::data::DataFiles;
use crate::highlight::{self, StylesheetError};
use crate::images::Images;
use crate::templates::Templates;
use crate::theme::Theme;
use crate::xterm::XtermAssets;
use folio_content::config::{Config, CONFIG_FILE};
use folio_content::content::{self, Content, LoadOptions};
use folio_content::diagnostics::{Diagnostic, Diagnostics};

use super::bodies::MarkdownCache;
use super::{Build, BuildOptions, Mode};

/// The site a build reads and where its output goes: fixed for the whole build.
pub(super) struct Site {
    /// The site folder, canonical.
    pub(super) root: PathBuf,
    pub(super) cfg: Config,
    /// `None` when the theme could not be found (the error is among the diagnostics).
    pub(super) theme: Option<Theme>,
    /// The output folder, absolute.
    pub(super) output: PathBuf,
    pub(super) mode: Mode,
}

impl Site {
    /// Opens the site at `opts.root`: its configuration (an error there ends the build at
    /// once), its theme (an error there is reported with the rest), and the output folder
    /// (refused when writing would overwrite the site's own sources).
    pub(super) fn open(opts: &BuildOptions) -> Result<(Site, Diagnostics), Diagnostics> {
        let root = opts.root.canonicalize().map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                &opts.root,
                None,
                format!("cannot open the site folder: {e}"),
            ))
        })?;
        let mut cfg = Config::load_all(&root)?;
        if let Some(u) = &opts.base_url {
            // The contact form's defaults name the real site, not the local server's
            // address (`folio serve` writes the same mail as production would send).
            let real = cfg.base_url.clone();
            cfg.contact.fill_defaults(&real);
            cfg.set_base_url(u).map_err(|msg| {
                // Not folio.toml's fault: name the flag, with the same rule as the file's.
                Diagnostics::from(Diagnostic::error(
                    "--base-url",
                    None,
                    msg.replacen("`base_url`", "the value of --base-url", 1),
                ))
            })?;
        }
        let mut diags = Diagnostics::new();
        let theme = match Theme::resolve(&root, &cfg.theme) {
            Ok(t) => Some(t),
            Err(d) => {
                diags.push(d);
                None
            }
        };
        let output = opts
            .output
            .clone()
            .map(|o| {
                if o.is_absolute() {
                    o
                } else {
                    std::env::current_dir().unwrap_or_default().join(o)
                }
            })
            .unwrap_or_else(|| root.join("public"));
        if opts.mode == Mode::Write {
            check_output_path(&root, &output)?;
        }
        let site = Site {
            root,
            cfg,
            theme,
            output,
            mode: opts.mode,
        };
        Ok((site, diags))
    }
}

/// Everything a build reads from the site's folders.
pub(super) struct Loaded {
    pub(super) content: Content,
    /// The front matter parsed now, for the next build.
    pub(super) parse: content::ParseCache,
    pub(super) data: DataFiles,
    /// `None` when a template failed to load (or the theme is missing).
    pub(super) templates: Option<LoadedTemplates>,
    pub(super) assets: Assets,
    /// Content files that failed to load: links to them are not reported as broken on top
    /// of the file's own error (the cause would drown among its consequences).
    pub(super) unloadable: HashSet<PathBuf>,
}

/// The templates a build renders with, and the same as loaded for the next build.
pub(super) struct LoadedTemplates {
    /// This build's own copy, to register its site functions on.
    pub(super) working: Templates,
    /// The templates as loaded, shared with the memo (`folio serve` only: a one-off build
    /// keeps none, and so copies nothing).
    pub(super) pristine: Option<Arc<Templates>>,
}

impl LoadedTemplates {
    /// This build's copy of `loaded`, made here in the loading phase (beside the content's
    /// loading, not later on the build's critical path), and `loaded` itself when the next
    /// build will reuse it (`keep`).
    fn new(loaded: Arc<Templates>, keep: bool) -> LoadedTemplates {
        if keep {
            LoadedTemplates {
                working: Templates::clone(&loaded),
                pristine: Some(loaded),
            }
        } else {
            LoadedTemplates {
                working: Arc::unwrap_or_clone(loaded),
                pristine: None,
            }
        }
    }
}

/// The code stylesheet for a pair of theme names (kept in the memo: making it loads every
/// syntect theme).
pub(super) struct SyntaxCss {
    light_theme: String,
    dark_theme: String,
    css: Result<String, StylesheetError>,
}

/// What the generated static files give the later phases.
pub(super) struct Generated {
    pub(super) covers: Covers,
    /// The site's images, processed on demand (covers now, markdown images next).
    pub(super) images: Images,
    pub(super) xterm: Option<XtermAssets>,
    /// Per page index, its demo recording's template value.
    pub(super) recordings: crate::recordings::RecordingValues,
    /// `None` when highlighting is off.
    pub(super) syntax_css: Option<SyntaxCss>,
}

impl Build<'_> {
    /// Loads everything at once: content on one side; data, templates, static files, the
    /// grammars and the caches on the other.
    pub(super) fn load(&mut self) -> Loaded {
        let (root, theme, prev, touched) =
            (&self.site.root, &self.site.theme, self.prev, self.touched);
        let (reuse, highlighter, md_cache) = (&self.reuse, &self.highlighter, &self.md_cache);
        let fresh_highlighter = self.highlighting && self.fresh_highlighter;
        let keeps_memo = reuse.keeps_records();
        let load_opts = LoadOptions {
            drafts: self.opts.drafts,
        };
        let (
            (content, content_diags, parse, content_time),
            (data, templates, assets, other_diags, other_time),
        ) = rayon::join(
            || {
                let t = Instant::now();
                // The parsed front matter is kept (with a copy of every file's text) only
                // for a next build in this process (`folio serve`); at 10,000 pages it is
                // some 100 MB a one-off build held for nothing.
                let (c, d, p) = if keeps_memo {
                    content::load_cached(root, load_opts, &prev.parse, touched)
                } else {
                    let (c, d) = content::load(root, load_opts);
                    (c, d, content::ParseCache::default())
                };
                (c, d, p, t.elapsed())
            },
            || {
                let t = Instant::now();
                // Each reader with its own messages, merged in a fixed order: the same
                // report whatever the thread count.
                let ((data, (templates, assets)), ()) = rayon::join(
                    || {
                        rayon::join(
                            || {
                                let mut d = Diagnostics::new();
                                (DataFiles::load(root, &mut d), d)
                            },
                            || match theme {
                                Some(t) => rayon::join(
                                    || {
                                        let mut d = Diagnostics::new();
                                        let tpl = Templates::load(
                                            root,
                                            t,
                                            &mut d,
                                            prev.templates.as_ref(),
                                        )
                                        .map(|t| LoadedTemplates::new(t, keeps_memo));
                                        (tpl, d)
                                    },
                                    || {
                                        let mut d = Diagnostics::new();
                                        (Assets::collect(root, t, &mut d), d)
                                    },
                                ),
                                None => (
                                    (None, Diagnostics::new()),
                                    (Assets::default(), Diagnostics::new()),
                                ),
                            },
                        )
                    },
                    || {
                        reuse.load(root);
                        // A build that starts from nothing reads the rendered bodies of the
                        // last one; the highlight cache is read only if a block is
                        // highlighted, and the grammars are loaded now only when no body may
                        // be reused.
                        let reusing_bodies =
                            prev.markdown.is_empty() && MarkdownCache::exists(root);
                        if reusing_bodies {
                            md_cache.load(root);
                        }
                        if fresh_highlighter {
                            highlighter.load_lazily(&super::cache_path(root));
                            if !reusing_bodies {
                                highlighter.warm_up();
                            }
                        }
                    },
                );
                let mut d = data.1;
                d.extend(templates.1);
                d.extend(assets.1);
                (data.0, templates.0, assets.0, d, t.elapsed())
            },
        );
        // The two halves of loading ran side by side: each for itself, then the phase.
        self.clock.part("load:content", content_time);
        self.clock.part("load:templates+static+data", other_time);
        let unloadable = content_diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.path.clone())
            .collect();
        self.diags.extend(content_diags);
        self.diags.extend(other_diags);
        self.clock.mark("load");
        Loaded {
            content,
            parse,
            data,
            templates,
            assets,
            unloadable,
        }
    }

    /// Adds the generated static files: the code stylesheet, responsive cover variants and
    /// the terminal's xterm.js.
    pub(super) fn generate(&mut self, content: &Content, assets: &mut Assets) -> Generated {
        let syntax_css = self
            .site
            .cfg
            .markdown
            .highlight
            .then(|| self.syntax_css(assets));
        let root = &self.site.root;
        let images = Images::new(root, content, assets);
        let covers = Covers::build(root, content, &images, &mut self.diags);
        let xterm = crate::xterm::add(root, &self.site.cfg, content, assets, &mut self.diags);
        let recordings = crate::recordings::add(content, assets, &mut self.diags);
        self.clock.mark("covers");
        Generated {
            covers,
            images,
            xterm,
            recordings,
            syntax_css,
        }
    }

    /// The code stylesheet, from the previous build when the theme names are the same; an
    /// unknown theme name is reported at its key in `folio.toml`.
    fn syntax_css(&mut self, assets: &mut Assets) -> SyntaxCss {
        let markdown = &self.site.cfg.markdown;
        let (light, dark) = (
            &markdown.highlight_theme_light,
            &markdown.highlight_theme_dark,
        );
        let css = match &self.prev.syntax_css {
            Some(s) if s.light_theme == *light && s.dark_theme == *dark => s.css.clone(),
            _ => highlight::stylesheet(light, dark),
        };
        match &css {
            Ok(css) => assets.add(
                "css/syntax.css",
                Payload::Bytes(css.clone().into_bytes().into()),
                "<generated>/css/syntax.css".into(),
                &mut self.diags,
            ),
            Err(e @ StylesheetError::UnknownTheme { slot, .. }) => {
                let text =
                    std::fs::read_to_string(self.site.root.join(CONFIG_FILE)).unwrap_or_default();
                self.diags.push(Diagnostic::error(
                    CONFIG_FILE,
                    folio_content::frontmatter::find_key(&text, slot.config_key()),
                    e.to_string(),
                ));
            }
        }
        SyntaxCss {
            light_theme: light.clone(),
            dark_theme: dark.clone(),
            css,
        }
    }
}

/// Refuses an output folder that holds the site, or lies inside one of its source folders.
fn check_output_path(root: &Path, output: &Path) -> Result<(), Diagnostics> {
    let out = output
        .canonicalize()
        .unwrap_or_else(|_| output.to_path_buf());
    if root.starts_with(&out) {
        return Err(Diagnostic::error(output, None, "refusing to build into a folder that contains the site itself; choose another --output").into());
    }
    for keep in ["content", "templates", "static", "data", "themes"] {
        if out.starts_with(root.join(keep)) {
            return Err(Diagnostic::error(
                output,
                None,
                format!(
                    "refusing to build into the site's {keep}/ folder; choose another --output"
                ),
            )
            .into());
        }
    }
    Ok(())
}
