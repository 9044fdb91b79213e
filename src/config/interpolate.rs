//! `${VAR}` and `${VAR:-default}` substitution, applied to each string value after the
//! file is parsed (never to the raw text, so a value cannot inject structure).

use std::collections::HashMap;

use serde_json::Value;

/// Where environment variables come from. Injected so tests never touch the process
/// environment.
pub trait EnvSource: Sync {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// What substitution found besides the new values.
#[derive(Debug, Default)]
pub struct Substitution {
    /// Key paths whose value referenced an unset variable with no default, with that
    /// variable's name. The value became null ("unset").
    pub unset: HashMap<String, String>,
    /// Key paths with a malformed `${...}` reference, with the reason.
    pub errors: Vec<(String, String)>,
    /// URL keys (`…url`) built from a `${VAR:-default}` whose variable is unset: key
    /// path, variable, default. Often a forgotten `export`, so they are warned about.
    pub defaulted: Vec<(String, String, String)>,
}

/// Replaces every `${VAR}` / `${VAR:-default}` in every string of `value`, in place.
pub fn substitute_tree(value: &mut Value, env: &dyn EnvSource) -> Substitution {
    let mut out = Substitution::default();
    walk(value, String::new(), env, &mut out);
    out
}

fn walk(value: &mut Value, path: String, env: &dyn EnvSource, out: &mut Substitution) {
    match value {
        Value::String(s) if s.contains("${") => match substitute(s, env) {
            Ok(Some(new)) => {
                if path.to_ascii_lowercase().ends_with("url") {
                    out.defaulted.extend(
                        defaulted_vars(s, env)
                            .into_iter()
                            .map(|(var, default)| (path.clone(), var, default)),
                    );
                }
                *s = new;
            }
            Ok(None) => {
                let var = first_var_name(s).unwrap_or_default();
                out.unset.insert(path, var);
                *value = Value::Null;
            }
            Err(e) => out.errors.push((path, e)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, format!("{path}[{i}]"), env, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, child, env, out);
            }
        }
        _ => {}
    }
}

/// The `${VAR:-default}` references of `s` whose variable is unset: (VAR, default).
fn defaulted_vars(s: &str, env: &dyn EnvSource) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        if let Some((name, default)) = after[..end].split_once(":-") {
            if env.var(name).filter(|v| !v.is_empty()).is_none() {
                found.push((name.to_string(), default.to_string()));
            }
        }
        rest = &after[end + 1..];
    }
    found
}

fn first_var_name(s: &str) -> Option<String> {
    let start = s.find("${")? + 2;
    let end = s[start..].find('}')? + start;
    let inner = &s[start..end];
    Some(inner.split(":-").next().unwrap_or(inner).to_string())
}

/// Substitutes one string. `Ok(None)` means a variable without default was unset, so the
/// whole value is unset.
pub fn substitute(text: &str, env: &dyn EnvSource) -> Result<Option<String>, String> {
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        result.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated '${{' in \"{text}\""))?;
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "'${{{inner}}}' in \"{text}\" is not a variable reference; use ${{NAME}} or ${{NAME:-default}}"
            ));
        }
        match (env.var(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => result.push_str(&v),
            (None, Some(d)) => result.push_str(d),
            (None, None) => return Ok(None),
        }
        rest = &after[end + 1..];
    }
    result.push_str(rest);
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        HashMap::from([("KEY".to_string(), "sk-1".to_string())])
    }

    #[test]
    fn substitutes_set_default_and_unset() {
        assert_eq!(substitute("${KEY}", &env()).unwrap().unwrap(), "sk-1");
        assert_eq!(
            substitute("Bearer ${KEY}!", &env()).unwrap().unwrap(),
            "Bearer sk-1!"
        );
        assert_eq!(
            substitute("${NOPE:-http://x}", &env()).unwrap().unwrap(),
            "http://x"
        );
        assert_eq!(substitute("${NOPE:-}", &env()).unwrap().unwrap(), "");
        assert_eq!(substitute("${NOPE}", &env()).unwrap(), None);
        assert!(substitute("${KEY", &env()).is_err());
        assert!(substitute("${bad name}", &env()).is_err());
    }

    #[test]
    fn tree_records_unset_paths() {
        let mut v = serde_json::json!({"backends": [{"api_key": "${MISSING}", "url": "${KEY}"}]});
        let s = substitute_tree(&mut v, &env());
        assert_eq!(s.unset.get("backends[0].api_key").unwrap(), "MISSING");
        assert_eq!(v["backends"][0]["api_key"], Value::Null);
        assert_eq!(v["backends"][0]["url"], "sk-1");
    }
}
