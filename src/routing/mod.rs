//! Model resolution and backend selection: which backends may answer a model name, and
//! which of them gets this request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::HeaderValue;

pub mod load_aware;
pub mod prefix_index;
pub mod prompt_text;
pub mod strategy;

use crate::backend::Backend;
use crate::config::metadata::{self, ModelConfig, ModelMetadata};
use crate::config::SelectionStrategy;
use crate::error::ProxyError;

/// One backend able to answer a requested model, and the model name it knows it by.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index into the router's backend list.
    pub backend: usize,
    /// The model name sent to the backend (the alias target, or the unpinned name).
    pub upstream_model: Arc<str>,
    /// `upstream_model` as a header value (`x-continuum-model`); `None` when the name
    /// cannot be a header value (control characters), in which case the header is left out.
    pub model_header: Option<HeaderValue>,
}

/// All targets of one requested name, with the rotation position and the smooth
/// weighted order.
#[derive(Debug)]
pub struct Route {
    targets: Box<[Target]>,
    next: AtomicUsize,
    weighted: Box<[u16]>,
    /// This model's own strategy (`model_configs[].selection_strategy`), if set.
    pub strategy: Option<SelectionStrategy>,
}

impl Route {
    fn new(
        targets: Vec<Target>,
        backends: &[Arc<Backend>],
        strategy: Option<SelectionStrategy>,
    ) -> Route {
        let weights: Vec<u32> = targets
            .iter()
            .map(|t| backends[t.backend].config.weight)
            .collect();
        Route {
            weighted: strategy::smooth_weighted_order(&weights).into_boxed_slice(),
            targets: targets.into_boxed_slice(),
            next: AtomicUsize::new(0),
            strategy,
        }
    }

    /// Picks the next target in turn (round robin), ignoring health.
    pub fn pick(&self) -> &Target {
        if self.targets.len() == 1 {
            return &self.targets[0];
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.targets[i % self.targets.len()]
    }

    /// Every target, in backend order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }
}

/// A model as listed by `/v1/models`.
#[derive(Debug, Clone)]
pub struct ListedModel {
    /// Model id (or alias).
    pub id: String,
    /// Names of the backends serving it.
    pub backends: Vec<String>,
    /// Type of the first backend serving it (`owned_by`).
    pub owned_by: &'static str,
    /// Its `model_configs` metadata, if any describes it.
    pub metadata: Option<ModelMetadata>,
}

/// Immutable lookup table from requested model names to routes; rebuilt whenever a
/// backend's model list changes and swapped in atomically.
#[derive(Debug, Default)]
pub struct ModelIndex {
    routes: HashMap<String, Route>,
    listed: Vec<ListedModel>,
}

impl ModelIndex {
    /// Builds the index over `backends`: every model and alias, plus `BACKEND/model` pins.
    /// A real model id wins over a pin of the same spelling.
    pub fn build(backends: &[Arc<Backend>], model_configs: &[ModelConfig]) -> ModelIndex {
        let mut pinned: HashMap<String, Vec<Target>> = HashMap::new();
        let mut plain: HashMap<String, Vec<Target>> = HashMap::new();
        let mut listed: Vec<ListedModel> = Vec::new();
        let mut list_pos: HashMap<String, usize> = HashMap::new();
        for (i, b) in backends.iter().enumerate() {
            let models = b.models();
            let aliases = b
                .config
                .model_aliases
                .iter()
                .map(|(a, t)| (a.as_str(), t.as_str()));
            let names = models
                .iter()
                .map(|m| (m.as_str(), m.as_str()))
                .chain(aliases);
            for (name, upstream) in names {
                let model_header = HeaderValue::from_str(upstream).ok();
                let target = Target {
                    backend: i,
                    upstream_model: Arc::from(upstream),
                    model_header,
                };
                let entry = plain.entry(name.to_string()).or_default();
                if entry.iter().any(|t| t.backend == i) {
                    continue;
                }
                entry.push(target.clone());
                pinned.insert(format!("{}/{name}", b.name()), vec![target]);
                match list_pos.get(name) {
                    Some(&pos) => listed[pos].backends.push(b.name().to_string()),
                    None => {
                        list_pos.insert(name.to_string(), listed.len());
                        let sources = [&b.config.model_configs[..], model_configs];
                        listed.push(ListedModel {
                            id: name.to_string(),
                            backends: vec![b.name().to_string()],
                            owned_by: b.config.kind.as_str(),
                            metadata: metadata::find(name, &sources).map(|c| c.metadata.clone()),
                        });
                    }
                }
            }
            if b.config.kind == crate::config::BackendType::Ollama {
                add_ollama_spellings(b, i, &models, &mut plain, &mut pinned);
            }
        }
        let mut routes: HashMap<String, Route> = HashMap::with_capacity(pinned.len() + plain.len());
        for (name, targets) in pinned.into_iter().chain(plain) {
            let strategy =
                metadata::find(&name, &[model_configs]).and_then(|c| c.selection_strategy);
            routes.insert(name, Route::new(targets, backends, strategy));
        }
        ModelIndex { routes, listed }
    }

    /// Adds the top-level `model_aliases` (names clients hard-code → routable models):
    /// an alias routes like its target and is listed with the target's backends. An alias
    /// is explicit, so it wins over a model of the same name; one whose target is not
    /// served (yet) is left out, and returned so the caller can say so.
    pub fn with_aliases(
        mut self,
        aliases: &[(String, String)],
        backends: &[Arc<Backend>],
    ) -> (ModelIndex, Vec<String>) {
        let mut missing = Vec::new();
        for (alias, target) in aliases {
            let Some(route) = self.routes.get(target.as_str()) else {
                missing.push(format!("{alias} -> {target}"));
                continue;
            };
            let targets = route.targets.to_vec();
            let strategy = route.strategy;
            let listed = self
                .listed
                .iter()
                .find(|m| m.id == *target)
                .map(|m| ListedModel {
                    id: alias.clone(),
                    ..m.clone()
                });
            self.routes
                .insert(alias.clone(), Route::new(targets, backends, strategy));
            if let Some(l) = listed {
                self.listed.retain(|m| m.id != *alias);
                self.listed.push(l);
            }
        }
        (self, missing)
    }

    /// The route for a requested model name, or `model_not_found`.
    pub fn resolve(&self, model: &str) -> Result<&Route, ProxyError> {
        self.routes
            .get(model)
            .ok_or_else(|| ProxyError::ModelNotFound(model.to_string()))
    }

    /// Models for `/v1/models`, in backend order.
    pub fn listed(&self) -> &[ListedModel] {
        &self.listed
    }
}

/// Ollama's own convention: a name without a tag means `:latest`. So `llama3.2` reaches a
/// backend model `llama3.2:latest` and `llama3.2:latest` one listed as `llama3.2`, sent
/// by the name the backend lists. Neither spelling is listed again, and a model of the
/// other spelling on the same backend keeps its own route.
fn add_ollama_spellings(
    b: &Backend,
    i: usize,
    models: &[String],
    plain: &mut HashMap<String, Vec<Target>>,
    pinned: &mut HashMap<String, Vec<Target>>,
) {
    for m in models {
        let other = match m.strip_suffix(":latest") {
            Some(bare) => bare.to_string(),
            None if !m.contains(':') => format!("{m}:latest"),
            None => continue,
        };
        let entry = plain.entry(other.clone()).or_default();
        if entry.iter().any(|t| t.backend == i) {
            continue;
        }
        let target = Target {
            backend: i,
            upstream_model: Arc::from(m.as_str()),
            model_header: HeaderValue::from_str(m).ok(),
        };
        entry.push(target.clone());
        pinned
            .entry(format!("{}/{other}", b.name()))
            .or_insert_with(|| vec![target]);
    }
}

/// The error for a model no route knows: 404 `model_not_found`, unless backends whose
/// model lists are unknown (no `models` configured, discovery failing) might serve it —
/// then 503 naming each of them and its URL. A `BACKEND/model` pin only looks at its
/// backend.
pub fn not_found(backends: &[Arc<Backend>], model: &str) -> ProxyError {
    let pinned = model
        .split_once('/')
        .and_then(|(b, _)| backends.iter().find(|x| x.name() == b));
    let candidates: Vec<String> = match pinned {
        Some(b) => b.models_unknown().into_iter().collect(),
        None => backends.iter().filter_map(|b| b.models_unknown()).collect(),
    };
    if candidates.is_empty() {
        return ProxyError::ModelNotFound(model.to_string());
    }
    ProxyError::ModelsUnknown {
        model: model.to_string(),
        backends: candidates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackendConfig, BackendType};

    fn backend(name: &str, models: &[&str], aliases: &[(&str, &str)]) -> Arc<Backend> {
        let mut c = BackendConfig::new(name, BackendType::Mock);
        c.models = Some(models.iter().map(|m| m.to_string()).collect());
        c.model_aliases = aliases
            .iter()
            .map(|(a, t)| (a.to_string(), t.to_string()))
            .collect();
        Arc::new(Backend::new(c, &Default::default()).unwrap())
    }

    #[test]
    fn resolves_models_aliases_and_pins_round_robin() {
        let index = ModelIndex::build(
            &[
                backend("a", &["m", "org/x"], &[("fast", "m")]),
                backend("b", &["m"], &[]),
            ],
            &[],
        );
        let route = index.resolve("m").unwrap();
        let picks: Vec<usize> = (0..4).map(|_| route.pick().backend).collect();
        assert_eq!(picks, [0, 1, 0, 1]);
        assert_eq!(&*index.resolve("fast").unwrap().pick().upstream_model, "m");
        let pinned = index.resolve("b/m").unwrap();
        assert_eq!(pinned.targets().len(), 1);
        assert_eq!(pinned.pick().backend, 1);
        assert_eq!(index.resolve("org/x").unwrap().pick().backend, 0);
        assert!(matches!(
            index.resolve("nope"),
            Err(ProxyError::ModelNotFound(_))
        ));
        let ids: Vec<&str> = index.listed().iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["m", "org/x", "fast"]);
        assert_eq!(index.listed()[0].backends, ["a", "b"]);
    }

    #[test]
    fn ollama_names_without_a_tag_mean_latest() {
        let mut c = BackendConfig::new("o", BackendType::Ollama);
        c.url = Some("http://localhost:11434".into());
        c.models = Some(vec![
            "llama3.2:latest".into(),
            "qwen3".into(),
            "phi4:14b".into(),
        ]);
        let o = Arc::new(Backend::new(c, &Default::default()).unwrap());
        let index = ModelIndex::build(&[o, backend("m", &["qwen3:latest"], &[])], &[]);
        let upstream = |name: &str| {
            let route = index.resolve(name).unwrap();
            route
                .targets()
                .iter()
                .map(|t| (t.backend, t.upstream_model.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(upstream("llama3.2"), [(0, "llama3.2:latest".to_string())]);
        assert_eq!(upstream("o/llama3.2"), [(0, "llama3.2:latest".to_string())]);
        assert_eq!(
            upstream("llama3.2:latest"),
            [(0, "llama3.2:latest".to_string())]
        );
        // The other spelling reaches the Ollama backend too; a mock backend's own
        // `qwen3:latest` is its own model, not renamed.
        assert_eq!(
            upstream("qwen3:latest"),
            [(0, "qwen3".to_string()), (1, "qwen3:latest".to_string())]
        );
        assert_eq!(upstream("qwen3"), [(0, "qwen3".to_string())]);
        assert!(index.resolve("phi4").is_err(), "only :latest is implied");
        let ids: Vec<&str> = index.listed().iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            ["llama3.2:latest", "qwen3", "phi4:14b", "qwen3:latest"]
        );
    }
}
