//! `global_prompts:` — system prompts the router adds to every chat request (names as in
//! the original Continuum Router). Files are read when the config is loaded (and again on
//! every reload), from `prompts_dir`, which they may not leave.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::reader::{child, Keys, Problem, Reader};

/// How a global prompt meets the client's own system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeStrategy {
    /// Global prompt, separator, then the client's.
    #[default]
    Prepend,
    /// The client's, separator, then the global prompt.
    Append,
    /// The global prompt instead of the client's.
    Replace,
}

/// One prompt: inline text or a file under `prompts_dir` (the file wins when both are set).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PromptSource {
    /// `prompt` (or `default`), then the file's text once loaded.
    pub text: Option<String>,
    /// `prompt_file` (or `default_file`), resolved under `prompts_dir` when loaded.
    pub file: Option<PathBuf>,
    /// The key path, for messages.
    pub path: String,
}

/// `global_prompts:` section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GlobalPromptsConfig {
    /// The section is present.
    pub enabled: bool,
    /// How prompts are merged.
    pub merge_strategy: MergeStrategy,
    /// Between the global and the client's prompt.
    pub separator: String,
    /// Base of the `*_file` paths (relative to the config file's directory).
    pub prompts_dir: Option<PathBuf>,
    /// For every request without a more specific prompt.
    pub default: Option<PromptSource>,
    /// Per backend name.
    pub backends: Vec<(String, PromptSource)>,
    /// Per model id (highest precedence).
    pub models: Vec<(String, PromptSource)>,
    /// The files have been read ([`GlobalPromptsConfig::load_files`]).
    pub loaded: bool,
}

impl GlobalPromptsConfig {
    /// The prompt for a request to `model` (as asked, or as sent upstream) on `backend`:
    /// model over backend over default.
    pub fn prompt_for(&self, models: [&str; 2], backend: &str) -> Option<&str> {
        fn find<'a>(list: &'a [(String, PromptSource)], name: &str) -> Option<&'a str> {
            list.iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, p)| p.text.as_deref())
        }
        models
            .iter()
            .find_map(|m| find(&self.models, m))
            .or_else(|| find(&self.backends, backend))
            .or_else(|| self.default.as_ref().and_then(|p| p.text.as_deref()))
    }

    /// Every prompt file, for the hot-reload watcher.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.default
            .iter()
            .chain(self.backends.iter().map(|(_, p)| p))
            .chain(self.models.iter().map(|(_, p)| p))
            .filter_map(|p| p.file.as_ref())
    }

    /// Reads every prompt file: `prompts_dir` from `base` (the config file's directory),
    /// each file from `prompts_dir`, refusing paths that leave it.
    pub fn load_files(&mut self, base: &Path) -> Vec<Problem> {
        let dir = match &self.prompts_dir {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => base.join(d),
            None => base.to_path_buf(),
        };
        self.prompts_dir = Some(dir.clone());
        self.loaded = true;
        let mut problems = Vec::new();
        let sources = self
            .default
            .iter_mut()
            .chain(self.backends.iter_mut().map(|(_, p)| p))
            .chain(self.models.iter_mut().map(|(_, p)| p));
        for p in sources {
            let Some(file) = p.file.clone() else { continue };
            let inside = !file.is_absolute()
                && file
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
            if !inside {
                problems.push(Problem {
                    path: p.path.clone(),
                    message: format!(
                        "'{}' must be a relative path inside prompts_dir ({}), without '..'",
                        file.display(),
                        dir.display()
                    ),
                });
                continue;
            }
            let full = dir.join(&file);
            // A symbolic link inside prompts_dir may not lead out of it either.
            if let (Ok(real), Ok(real_dir)) = (full.canonicalize(), dir.canonicalize()) {
                if !real.starts_with(&real_dir) {
                    problems.push(Problem {
                        path: p.path.clone(),
                        message: format!(
                            "'{}' leads outside prompts_dir ({}) through a symbolic link",
                            file.display(),
                            dir.display()
                        ),
                    });
                    continue;
                }
            }
            match std::fs::read_to_string(&full) {
                Ok(text) => {
                    p.text = Some(text.trim_end().to_string());
                    p.file = Some(full);
                }
                Err(e) => problems.push(Problem {
                    path: p.path.clone(),
                    message: format!("cannot read {}: {e}", full.display()),
                }),
            }
        }
        problems
    }
}

const GLOBAL_PROMPTS: Keys = Keys {
    known: &[
        "merge_strategy",
        "separator",
        "default",
        "default_file",
        "prompts_dir",
        "backends",
        "models",
    ],
    unsupported: &[],
};

const PROMPT: Keys = Keys {
    known: &["prompt", "prompt_file"],
    unsupported: &[],
};

/// Reads the `global_prompts:` section (files are read later, by [`GlobalPromptsConfig::load_files`]).
pub fn read_global_prompts(v: Option<&Value>, r: &mut Reader) -> GlobalPromptsConfig {
    let p = "global_prompts";
    let mut c = GlobalPromptsConfig {
        separator: "\n\n".into(),
        ..Default::default()
    };
    let Some(m) = v.and_then(|v| r.section(v, p, &GLOBAL_PROMPTS)) else {
        return c;
    };
    c.enabled = true;
    c.merge_strategy = match r.string(m, p, "merge_strategy").as_deref() {
        None | Some("prepend") => MergeStrategy::Prepend,
        Some("append") => MergeStrategy::Append,
        Some("replace") => MergeStrategy::Replace,
        Some(other) => {
            r.error(
                child(p, "merge_strategy"),
                format!("'{other}' is not one of: prepend, append, replace"),
            );
            MergeStrategy::Prepend
        }
    };
    if let Some(s) = r.string(m, p, "separator") {
        c.separator = s;
    }
    c.prompts_dir = r
        .string(m, p, "prompts_dir")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from);
    let default = r.string(m, p, "default");
    let default_file = r.string(m, p, "default_file").filter(|s| !s.is_empty());
    if default.is_some() || default_file.is_some() {
        c.default = Some(PromptSource {
            path: child(
                p,
                if default_file.is_some() {
                    "default_file"
                } else {
                    "default"
                },
            ),
            text: default,
            file: default_file.map(PathBuf::from),
        });
    }
    c.backends = read_prompt_map(m.get("backends"), &child(p, "backends"), r);
    c.models = read_prompt_map(m.get("models"), &child(p, "models"), r);
    c
}

/// `{name: "text"}` or `{name: {prompt, prompt_file}}`.
fn read_prompt_map(v: Option<&Value>, path: &str, r: &mut Reader) -> Vec<(String, PromptSource)> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Vec::new();
    };
    let Value::Object(m) = v else {
        r.error(path, "expected a mapping of names to prompts");
        return Vec::new();
    };
    let mut out = Vec::with_capacity(m.len());
    for (name, entry) in m {
        let ep = child(path, name);
        let source = match entry {
            Value::String(s) => PromptSource {
                text: Some(s.clone()),
                file: None,
                path: ep,
            },
            Value::Object(_) => {
                let Some(e) = r.section(entry, &ep, &PROMPT) else {
                    continue;
                };
                let text = r.string(e, &ep, "prompt");
                let file = r.string(e, &ep, "prompt_file").filter(|s| !s.is_empty());
                if text.is_none() && file.is_none() {
                    r.error(ep.clone(), "give `prompt` or `prompt_file`");
                }
                PromptSource {
                    path: child(
                        &ep,
                        if file.is_some() {
                            "prompt_file"
                        } else {
                            "prompt"
                        },
                    ),
                    text,
                    file: file.map(PathBuf::from),
                }
            }
            _ => {
                r.error(ep, "expected a prompt string or {prompt | prompt_file}");
                continue;
            }
        };
        out.push((name.clone(), source));
    }
    out
}
