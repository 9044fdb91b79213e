//! `continuum models list`: what a router (or a config) can route — a table of id,
//! backends, health, context window and pricing, or `/v1/models` as JSON for scripts.

use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

use super::output::outln;
use super::target::{connect, runtime};
use super::ModelsListArgs;

/// Runs `continuum models list`.
pub fn list(args: ModelsListArgs) -> ExitCode {
    let fail = |e: &str| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let e = &args.endpoint;
    let result = rt.block_on(async {
        let target = connect(
            e.remote.url.as_deref(),
            e.remote.api_key.as_deref(),
            e.config.as_deref(),
            e.in_process,
        )
        .await?;
        let models = target.client.models().await.map_err(|e| e.to_string())?;
        // Health comes from the admin API when this caller may read it.
        let backends = target
            .client
            .get_json("/admin/backends", Duration::from_secs(10))
            .await
            .ok();
        Ok::<_, String>((models, backends))
    });
    let (models, backends) = match result {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&models).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    // Without admin access, health comes from what /v1/models says is down.
    let backends = backends.or_else(|| health_from_models(&models));
    outln!("{}", table(&models, backends.as_ref()));
    for (down, listed) in unavailable(&models) {
        if listed {
            outln!("{down}; its models get no traffic from it now");
        } else {
            outln!("{down}; its models are not listed");
        }
    }
    ExitCode::SUCCESS
}

/// The backends a `/v1/models` answer says are down (its `unavailable` extension): each
/// as "backend 'x' (URL) is down: it is unhealthy (…)", and whether its models are in
/// the list.
pub fn unavailable(models: &Value) -> Vec<(String, bool)> {
    models["unavailable"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let line = format!(
                "backend '{}' ({}) is down: it {}",
                b["backend"].as_str().unwrap_or("?"),
                b["url"].as_str().unwrap_or("?"),
                b["reason"].as_str().unwrap_or("does not answer")
            );
            (line, b["models_listed"].as_bool().unwrap_or(false))
        })
        .collect()
}

/// An `/admin/backends`-like health list built from `/v1/models`: a backend named in its
/// `unavailable` list has that status, any other one it names is healthy.
fn health_from_models(models: &Value) -> Option<Value> {
    let down = models["unavailable"].as_array();
    let mut list: Vec<Value> = Vec::new();
    let names = models["data"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|m| m["backends"].as_array().into_iter().flatten())
        .filter_map(Value::as_str);
    for name in names {
        if list.iter().any(|b| b["name"] == name) {
            continue;
        }
        let status = down
            .into_iter()
            .flatten()
            .find(|b| b["backend"] == name)
            .map_or("healthy", |b| match b["status"].as_str() {
                Some("healthy") | None => "unavailable",
                Some(s) => s,
            });
        list.push(serde_json::json!({"name": name, "status": status}));
    }
    Some(serde_json::json!({ "backends": list }))
}

fn health_of(backends: Option<&Value>, names: &[&str]) -> String {
    let Some(list) = backends.and_then(|b| b["backends"].as_array()) else {
        return "?".into();
    };
    let statuses: Vec<&str> = list
        .iter()
        .filter(|b| b["name"].as_str().is_some_and(|n| names.contains(&n)))
        .filter_map(|b| b["status"].as_str())
        .collect();
    let healthy = statuses.iter().filter(|s| **s == "healthy").count();
    match (healthy, statuses.len()) {
        (_, 0) => "?".into(),
        (h, n) if h == n => "healthy".into(),
        (0, _) => statuses.first().copied().unwrap_or("unhealthy").into(),
        (h, n) => format!("{h}/{n} healthy"),
    }
}

/// The table of `models` (a `/v1/models` answer), with health from `/admin/backends`.
pub fn table(models: &Value, backends: Option<&Value>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header([
        "id",
        "backends",
        "health",
        "context window",
        "pricing (per 1K in/out)",
    ]);
    for m in models["data"].as_array().into_iter().flatten() {
        let names: Vec<&str> = m["backends"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let meta = &m["metadata"];
        let context = meta["limits"]["context_window"]
            .as_u64()
            .map_or_else(|| "-".to_string(), |n| n.to_string());
        let price = &meta["pricing"];
        let pricing = match (
            price["input_tokens"].as_f64(),
            price["output_tokens"].as_f64(),
        ) {
            (None, None) => "-".to_string(),
            (i, o) => format!(
                "{} / {}",
                i.map_or("-".into(), |v| v.to_string()),
                o.map_or("-".into(), |v| v.to_string())
            ),
        };
        t.add_row([
            m["id"].as_str().unwrap_or("").to_string(),
            names.join(", "),
            health_of(backends, &names),
            context,
            pricing,
        ]);
    }
    t
}
