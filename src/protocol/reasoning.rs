//! `reasoning_effort` normalised per backend. Clients ask in OpenAI's words
//! (`reasoning_effort`, or Responses-style `reasoning.effort`; Anthropic clients'
//! `thinking.budget_tokens` is turned into a level on the way in). Each target takes the
//! nearest level it supports — from a capability table per backend type and model family,
//! below — and when the level had to change or be dropped, the response says so in
//! `x-continuum-reasoning-effort: requested=X; applied=Y`.
//!
//! | target | levels | native form |
//! |---|---|---|
//! | `openai` o-series | low, medium, high | `reasoning_effort` |
//! | `openai` GPT-5 family | minimal, low, medium, high (xhigh on `*-max` models) | `reasoning_effort` |
//! | `openai` other models | none (dropped) | — |
//! | `anthropic` | low, medium, high, xhigh | `thinking.budget_tokens` 1024 / 4096 / 16384 / 32768 |
//! | `gemini` 2.5 Pro | low, medium, high, xhigh | `thinkingConfig.thinkingBudget` 1024 / 8192 / 24576 / 32768 |
//! | `gemini` 2.5 Flash | low, medium, high | `thinkingBudget` 1024 / 8192 / 24576 |
//! | `gemini` 3.x | low, high | `thinkingConfig.thinkingLevel` |
//! | `ollama` gpt-oss | low, medium, high | `think: "low"…` |
//! | `ollama` other | on | `think: true` |
//! | self-hosted OpenAI-compatible | as sent | `reasoning_effort` (passed through) |

use serde_json::{Map, Value};

use crate::config::BackendType;

/// A reasoning level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effort {
    /// Almost none.
    Minimal,
    /// Little.
    Low,
    /// Some.
    Medium,
    /// Much.
    High,
    /// The most the model offers.
    Xhigh,
}

impl Effort {
    /// Parses a level name.
    pub fn parse(s: &str) -> Option<Effort> {
        match s.trim().to_ascii_lowercase().as_str() {
            "minimal" | "none" => Some(Effort::Minimal),
            "low" => Some(Effort::Low),
            "medium" => Some(Effort::Medium),
            "high" => Some(Effort::High),
            "xhigh" | "max" => Some(Effort::Xhigh),
            _ => None,
        }
    }

    /// The level's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::Xhigh => "xhigh",
        }
    }

    /// The level an Anthropic thinking budget stands for.
    pub fn from_budget(budget: u64) -> Effort {
        match budget {
            0..=2048 => Effort::Low,
            2049..=8192 => Effort::Medium,
            8193..=24576 => Effort::High,
            _ => Effort::Xhigh,
        }
    }

    /// Anthropic `thinking.budget_tokens` for this level (at least 1024, growing).
    pub fn anthropic_budget(self) -> u64 {
        match self {
            Effort::Minimal | Effort::Low => 1024,
            Effort::Medium => 4096,
            Effort::High => 16384,
            Effort::Xhigh => 32768,
        }
    }

    /// Gemini 2.5 `thinkingBudget` for this level.
    pub fn gemini_budget(self) -> u64 {
        match self {
            Effort::Minimal | Effort::Low => 1024,
            Effort::Medium => 8192,
            Effort::High => 24576,
            Effort::Xhigh => 32768,
        }
    }
}

use Effort::*;

/// The levels a backend type and model take; `None`: passed through as sent.
fn levels(kind: BackendType, model: &str) -> Option<&'static [Effort]> {
    let m = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    let o_series = m.starts_with('o') && m.chars().nth(1).is_some_and(|c| c.is_ascii_digit());
    Some(match kind {
        BackendType::Openai if m.starts_with("gpt-5") && m.contains("-max") => {
            &[Minimal, Low, Medium, High, Xhigh]
        }
        BackendType::Openai if m.starts_with("gpt-5") => &[Minimal, Low, Medium, High],
        BackendType::Openai if o_series => &[Low, Medium, High],
        BackendType::Openai => &[],
        BackendType::Anthropic => &[Low, Medium, High, Xhigh],
        BackendType::Gemini if m.starts_with("gemini-3") => &[Low, High],
        BackendType::Gemini if m.contains("flash") => &[Low, Medium, High],
        BackendType::Gemini => &[Low, Medium, High, Xhigh],
        BackendType::Ollama if m.starts_with("gpt-oss") => &[Low, Medium, High],
        BackendType::Ollama => &[High],
        _ => return None,
    })
}

/// vLLM and llama.cpp render thinking through the model's chat template:
/// `chat_template_kwargs.enable_thinking` (Qwen3 and similar; off for `minimal`) and
/// `chat_template_kwargs.reasoning_effort` (gpt-oss: low, medium or high). Kwargs the
/// client set itself win; templates ignore the ones they do not use.
fn template_kwargs(level: Effort, req: &mut Map<String, Value>) {
    let entry = req
        .entry("chat_template_kwargs")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(kwargs) = entry.as_object_mut() else {
        return;
    };
    let template_level = match level {
        Minimal | Low => "low",
        Medium => "medium",
        High | Xhigh => "high",
    };
    kwargs
        .entry("enable_thinking")
        .or_insert(Value::Bool(level != Minimal));
    kwargs
        .entry("reasoning_effort")
        .or_insert_with(|| Value::String(template_level.into()));
}

/// The supported level nearest to `wanted`: the highest one not above it, else the lowest.
fn nearest(wanted: Effort, levels: &[Effort]) -> Option<Effort> {
    levels
        .iter()
        .rev()
        .find(|l| **l <= wanted)
        .or(levels.first())
        .copied()
}

/// What normalisation did: the level to apply (if any) and the header to send when it
/// differs from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalised {
    /// The level the client asked for.
    pub requested: Effort,
    /// The level the backend gets.
    pub applied: Option<Effort>,
    /// `requested=X; applied=Y` when the level was clamped or dropped.
    pub header: Option<String>,
}

/// Normalises the OpenAI chat request `req` for `kind`/`model` in place: reads
/// `reasoning_effort` (or `reasoning.effort`), and leaves `reasoning_effort` set to the
/// level the target takes, or removes it. Returns `None` when no effort was asked for.
pub fn normalise(
    kind: BackendType,
    model: &str,
    req: &mut Map<String, Value>,
) -> Option<Normalised> {
    let from_responses = req
        .remove("reasoning")
        .and_then(|r| r.get("effort").and_then(Value::as_str).map(str::to_string));
    let asked = req
        .get("reasoning_effort")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or(from_responses)?;
    let requested = Effort::parse(&asked)?;
    let Some(levels) = levels(kind, model) else {
        if matches!(kind, BackendType::Vllm | BackendType::Llamacpp) {
            template_kwargs(requested, req);
        }
        req.insert("reasoning_effort".into(), Value::String(asked));
        return Some(Normalised {
            requested,
            applied: Some(requested),
            header: None,
        });
    };
    let applied = nearest(requested, levels);
    match applied {
        Some(level) => req.insert(
            "reasoning_effort".into(),
            Value::String(level.as_str().into()),
        ),
        None => req.remove("reasoning_effort"),
    };
    let header = (applied != Some(requested)).then(|| {
        format!(
            "requested={}; applied={}",
            requested.as_str(),
            applied.map_or("none", Effort::as_str)
        )
    });
    Some(Normalised {
        requested,
        applied,
        header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(kind: BackendType, model: &str, req: Value) -> (Value, Option<Normalised>) {
        let Value::Object(mut m) = req else {
            unreachable!()
        };
        let n = normalise(kind, model, &mut m);
        (Value::Object(m), n)
    }

    #[test]
    fn vllm_and_llamacpp_get_chat_template_kwargs() {
        for kind in [BackendType::Vllm, BackendType::Llamacpp] {
            let (body, n) = run(kind, "qwen3-8b", json!({"reasoning_effort": "xhigh"}));
            assert_eq!(
                body["chat_template_kwargs"],
                json!({"enable_thinking": true, "reasoning_effort": "high"})
            );
            assert_eq!(body["reasoning_effort"], "xhigh");
            assert_eq!(n.unwrap().header, None);
            let (body, _) = run(
                kind,
                "qwen3-8b",
                json!({"reasoning_effort": "minimal", "chat_template_kwargs": {"enable_thinking": true, "x": 1}}),
            );
            assert_eq!(
                body["chat_template_kwargs"],
                json!({"enable_thinking": true, "x": 1, "reasoning_effort": "low"}),
                "the client's own kwargs win"
            );
        }
        let (body, _) = run(
            BackendType::Lmstudio,
            "qwen3-8b",
            json!({"reasoning_effort": "high"}),
        );
        assert!(body.get("chat_template_kwargs").is_none());
    }

    #[test]
    fn clamps_and_says_so() {
        let (body, n) = run(
            BackendType::Openai,
            "o3-mini",
            json!({"reasoning_effort": "xhigh"}),
        );
        assert_eq!(body["reasoning_effort"], "high");
        assert_eq!(
            n.unwrap().header.as_deref(),
            Some("requested=xhigh; applied=high")
        );
        let (body, n) = run(
            BackendType::Openai,
            "gpt-4o",
            json!({"reasoning_effort": "low"}),
        );
        assert!(body.get("reasoning_effort").is_none());
        assert_eq!(
            n.unwrap().header.as_deref(),
            Some("requested=low; applied=none")
        );
        let (_, n) = run(
            BackendType::Openai,
            "gpt-5",
            json!({"reasoning": {"effort": "minimal"}}),
        );
        assert_eq!(
            n.unwrap(),
            Normalised {
                requested: Minimal,
                applied: Some(Minimal),
                header: None
            }
        );
        let (_, n) = run(
            BackendType::Gemini,
            "gemini-3-pro-preview",
            json!({"reasoning_effort": "medium"}),
        );
        assert_eq!(
            n.unwrap().header.as_deref(),
            Some("requested=medium; applied=low")
        );
        let (body, n) = run(
            BackendType::Vllm,
            "qwen3",
            json!({"reasoning_effort": "xhigh"}),
        );
        assert_eq!(
            (body["reasoning_effort"].as_str(), n.unwrap().header),
            (Some("xhigh"), None)
        );
        assert_eq!(
            run(BackendType::Openai, "o3", json!({"messages": []})).1,
            None
        );
    }

    #[test]
    fn budgets_grow_with_the_level() {
        let levels = [Low, Medium, High, Xhigh];
        assert!(levels
            .windows(2)
            .all(|w| w[0].anthropic_budget() < w[1].anthropic_budget()));
        assert!(Low.anthropic_budget() >= 1024);
        assert_eq!(Effort::from_budget(Medium.anthropic_budget()), Medium);
        assert_eq!(Effort::from_budget(Xhigh.anthropic_budget()), Xhigh);
    }
}
