//! Model metadata: `model_configs` entries (top level, per backend, or in
//! `model_metadata_file`) describing a model — display name, capabilities, pricing,
//! limits — shown in `/v1/models`; a top-level entry may also choose the model's
//! selection strategy.

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::SelectionStrategy;
use super::reader::{child, did_you_mean, Keys, Reader};

const ENTRY: Keys = Keys {
    known: &["id", "aliases", "metadata", "selection_strategy"],
    unsupported: &[],
};

const METADATA: Keys = Keys {
    known: &[
        "display_name",
        "summary",
        "capabilities",
        "knowledge_cutoff",
        "pricing",
        "limits",
    ],
    unsupported: &[],
};

const PRICING: Keys = Keys {
    known: &["input_tokens", "output_tokens"],
    unsupported: &[],
};

const LIMITS: Keys = Keys {
    known: &["context_window", "max_output"],
    unsupported: &[],
};

/// One `model_configs` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The model id it describes.
    pub id: String,
    /// Other ids (e.g. dated versions) that share this metadata.
    pub aliases: Vec<String>,
    /// What `/v1/models` shows about the model.
    pub metadata: ModelMetadata,
    /// Selection strategy for this model instead of the global one (top level only).
    pub selection_strategy: Option<SelectionStrategy>,
}

impl ModelConfig {
    /// Whether this entry describes `id` (its id or one of its aliases).
    pub fn describes(&self, id: &str) -> bool {
        self.id == id || self.aliases.iter().any(|a| a == id)
    }
}

/// Descriptive metadata of a model.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ModelMetadata {
    /// Human-friendly name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// One-line description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What it can do ("text", "image", "function_calling", …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Training data cut-off, as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge_cutoff: Option<String>,
    /// Price per 1,000 tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// Token limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

/// `metadata.pricing`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Pricing {
    /// Price of input (prompt) tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<f64>,
    /// Price of output (completion) tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<f64>,
}

/// `metadata.limits`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Limits {
    /// Context window in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// Longest output in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u64>,
}

/// Reads a `model_configs` list at `path`. `allow_strategy`: only top-level entries may
/// choose a selection strategy.
pub fn read_model_configs(
    v: &Value,
    path: &str,
    allow_strategy: bool,
    r: &mut Reader,
) -> Vec<ModelConfig> {
    let Value::Array(items) = v else {
        r.error(path, "expected a list of {id, aliases, metadata} entries");
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = r.section(item, &p, &ENTRY) else {
            continue;
        };
        let Some(id) = r.string(m, &p, "id").filter(|s| !s.is_empty()) else {
            r.missing(child(&p, "id"), "the model id");
            continue;
        };
        let aliases = r.string_list(m, &p, "aliases").unwrap_or_default();
        let metadata = m
            .get("metadata")
            .map(|v| read_metadata(v, &child(&p, "metadata"), r))
            .unwrap_or_default();
        let selection_strategy = match r.string(m, &p, "selection_strategy") {
            None => None,
            Some(_) if !allow_strategy => {
                r.error(
                    child(&p, "selection_strategy"),
                    "only top-level model_configs entries choose a selection strategy",
                );
                None
            }
            Some(name) => match SelectionStrategy::ALL.iter().find(|(n, _)| *n == name) {
                Some((_, s)) => Some(*s),
                None => {
                    let names = SelectionStrategy::ALL.iter().map(|(n, _)| *n);
                    let hint = did_you_mean(&name, names)
                        .map(|s| format!("; did you mean '{s}'?"))
                        .unwrap_or_default();
                    r.error(
                        child(&p, "selection_strategy"),
                        format!("unknown strategy '{name}'{hint}"),
                    );
                    None
                }
            },
        };
        out.push(ModelConfig {
            id,
            aliases,
            metadata,
            selection_strategy,
        });
    }
    out
}

fn read_metadata(v: &Value, p: &str, r: &mut Reader) -> ModelMetadata {
    let mut md = ModelMetadata::default();
    let Some(m) = r.section(v, p, &METADATA) else {
        return md;
    };
    md.display_name = r.string(m, p, "display_name");
    md.summary = r.string(m, p, "summary");
    md.capabilities = r.string_list(m, p, "capabilities").unwrap_or_default();
    md.knowledge_cutoff = r.string(m, p, "knowledge_cutoff");
    md.pricing = sub(m, p, "pricing", &PRICING, r).map(|(pm, pp)| Pricing {
        input_tokens: non_negative(r, pm, &pp, "input_tokens"),
        output_tokens: non_negative(r, pm, &pp, "output_tokens"),
    });
    md.limits = sub(m, p, "limits", &LIMITS, r).map(|(lm, lp)| Limits {
        context_window: r.integer(lm, &lp, "context_window"),
        max_output: r.integer(lm, &lp, "max_output"),
    });
    md
}

fn sub<'v>(
    m: &'v Map<String, Value>,
    p: &str,
    key: &str,
    keys: &Keys,
    r: &mut Reader,
) -> Option<(&'v Map<String, Value>, String)> {
    let path = child(p, key);
    let v = m.get(key)?;
    r.section(v, &path, keys).map(|sm| (sm, path))
}

fn non_negative(r: &mut Reader, m: &Map<String, Value>, p: &str, key: &str) -> Option<f64> {
    let f = r.number(m, p, key)?;
    if f < 0.0 || !f.is_finite() {
        r.error(child(p, key), format!("{f} is not a price"));
        return None;
    }
    Some(f)
}

/// Finds the entry describing `id` in `sources` (searched in order): by id or alias, then
/// by the base name of a namespaced id (`custom/gpt-4` → `gpt-4`).
pub fn find<'c>(id: &str, sources: &[&'c [ModelConfig]]) -> Option<&'c ModelConfig> {
    let base = id.rsplit('/').next().unwrap_or(id);
    for wanted in [id, base] {
        for list in sources {
            if let Some(c) = list.iter().find(|c| c.describes(wanted)) {
                return Some(c);
            }
        }
        if base == id {
            break;
        }
    }
    None
}
