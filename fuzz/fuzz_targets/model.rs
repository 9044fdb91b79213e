//! Model-name resolution: the routing fields read from a body, the model name spliced
//! into it for a backend (a second read must find exactly that name), the lookup through
//! models, aliases and `backend/model` pins, metadata, Gemini ids and reasoning levels.
#![no_main]

// The allocation guard (see `continuum_fuzz::MAX_ALLOCATION`).
extern crate continuum_fuzz;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use continuum::backend::{gemini, Backend};
use continuum::config::metadata::{self, ModelConfig};
use continuum::config::{BackendConfig, BackendType};
use continuum::pipeline::fields::{parse_routing, require_messages, splice_model};
use continuum::protocol::reasoning;
use continuum::routing::ModelIndex;
use libfuzzer_sys::fuzz_target;

struct Index {
    models: ModelIndex,
    configs: Vec<ModelConfig>,
}

fn backend(
    name: &str,
    kind: BackendType,
    models: &[&str],
    aliases: &[(&str, &str)],
) -> Arc<Backend> {
    let mut c = BackendConfig::new(name, kind);
    c.models = Some(models.iter().map(|m| m.to_string()).collect());
    c.model_aliases = aliases
        .iter()
        .map(|(a, t)| (a.to_string(), t.to_string()))
        .collect();
    Arc::new(Backend::new(c, &Default::default()).expect("a mock backend"))
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let backends = [
            backend(
                "a",
                BackendType::Mock,
                &["gpt-4o", "org/x", "m"],
                &[("fast", "gpt-4o")],
            ),
            backend("b", BackendType::Mock, &["gpt-4o", "claude-sonnet-4"], &[]),
        ];
        let configs = vec![ModelConfig {
            id: "gpt-4o".into(),
            aliases: vec!["gpt-4o-2024-08-06".into()],
            metadata: Default::default(),
            selection_strategy: None,
        }];
        let aliases = [
            ("smart".to_string(), "gpt-4o".to_string()),
            ("ghost".into(), "nope".into()),
        ];
        let (models, _) = ModelIndex::build(&backends, &configs).with_aliases(&aliases, &backends);
        Index { models, configs }
    })
}

fn resolve(name: &str) {
    let index = index();
    if let Ok(route) = index.models.resolve(name) {
        let target = route.pick();
        assert!(!target.upstream_model.is_empty());
    }
    let _ = metadata::find(name, &[&index.configs]);
    let _ = gemini::bare_model_id(name);
    for (_, kind) in BackendType::ALL {
        let mut req = serde_json::Map::new();
        req.insert("reasoning_effort".into(), "high".into());
        let _ = reasoning::normalise(kind, name, &mut req);
    }
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    if let Ok(routing) = parse_routing(&body) {
        let _ = require_messages(&body, &routing);
        resolve(&routing.model);
        let spliced = splice_model(&body, routing.model_span, "gpt-4o-mini");
        let again = parse_routing(&spliced).expect("a body with its model replaced still routes");
        assert_eq!(again.model, "gpt-4o-mini");
        assert_eq!(again.stream, routing.stream);
    }
    // The input as a model name: resolved, and spliced into a request.
    if let Ok(name) = std::str::from_utf8(data).map(str::trim_end) {
        resolve(name);
        if name.is_empty() {
            return;
        }
        let template = Bytes::from_static(br#"{"model":"x","messages":[],"stream":true}"#);
        let spliced = splice_model(&template, (9, 12), name);
        let again = parse_routing(&spliced).expect("any name splices into valid JSON");
        assert_eq!(again.model, name);
    }
});
