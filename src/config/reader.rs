//! A small reader over the parsed configuration tree that records every problem it meets
//! (with its key path) and keeps going, so `config validate` can report them all at once.
//! Serde derive stops at the first error, which is why the file is read this way.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value};

use super::types::{parse_byte_size, parse_duration};

/// One thing wrong (or doubtful) in a configuration, at a key path such as
/// `backends[2].url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path of the value at fault (empty for the whole file).
    pub path: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// The keys one section of the file may hold.
pub struct Keys {
    /// Keys this build reads.
    pub known: &'static [&'static str],
    /// Keys that belong to the schema but whose feature is not built yet: rejected with
    /// "not supported yet", never silently ignored.
    pub unsupported: &'static [&'static str],
}

/// Collects problems while a configuration tree is read.
#[derive(Default)]
pub struct Reader {
    /// Hard errors: the configuration cannot be used.
    pub errors: Vec<Problem>,
    /// Keys nobody knows (likely typos): errors in `config validate`, warnings in `serve`.
    pub unknown: Vec<Problem>,
    /// Paths whose value referenced an unset environment variable, with its name.
    pub unset: HashMap<String, String>,
    /// Doubtful but valid values (a URL built from a default because its variable is
    /// unset; an Ollama url's `/api` dropped), shown as warnings.
    pub notes: Vec<Problem>,
}

/// Joins a key onto a path: `server` + `workers` → `server.workers`.
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Levenshtein distance, for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).clamp(1, 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl Reader {
    /// Records an error at `path`.
    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records a value taken, but not as written (a warning, never an error).
    pub fn note(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.notes.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Records that a required key is missing, naming the unset variable when that is why.
    pub fn missing(&mut self, path: String, what: &str) {
        let message = match self.unset.get(&path) {
            Some(var) => format!("{what} is required, but environment variable {var} is not set"),
            None => format!("{what} is required"),
        };
        self.error(path, message);
    }

    /// Checks that `value` is a mapping and that its keys are allowed; returns it.
    pub fn section<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        keys: &Keys,
    ) -> Option<&'v Map<String, Value>> {
        let map = match value {
            Value::Object(map) => map,
            Value::Null => return None,
            other => {
                self.error(
                    path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                return None;
            }
        };
        for key in map.keys() {
            if keys.known.contains(&key.as_str()) {
                continue;
            }
            let key_path = child(path, key);
            if keys.unsupported.contains(&key.as_str()) {
                self.error(
                    key_path,
                    "not supported yet by this version of continuum; remove it (the feature is planned)",
                );
                continue;
            }
            let all = keys.known.iter().chain(keys.unsupported.iter()).copied();
            let message = match did_you_mean(key, all) {
                Some(s) => format!("unknown key; did you mean '{s}'?"),
                None => format!("unknown key (expected one of: {})", keys.known.join(", ")),
            };
            self.unknown.push(Problem {
                path: key_path,
                message,
            });
        }
        Some(map)
    }

    fn present<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
        map.get(key).filter(|v| !v.is_null())
    }

    /// A string value.
    pub fn string(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match Self::present(map, key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.error(
                    child(path, key),
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A non-negative integer (a numeric string, as `${VAR}` produces, is accepted).
    pub fn integer(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<u64> {
        match Self::present(map, key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            Value::String(s) if s.trim().parse::<u64>().is_ok() => s.trim().parse().ok(),
            other => {
                self.error(
                    child(path, key),
                    format!(
                        "expected a non-negative whole number, found {}",
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    /// A number (integer or decimal; a numeric string is accepted).
    pub fn number(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<f64> {
        match Self::present(map, key)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) if s.trim().parse::<f64>().is_ok() => s.trim().parse().ok(),
            other => {
                self.error(
                    child(path, key),
                    format!("expected a number, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A boolean (`"true"`/`"false"` strings accepted).
    pub fn boolean(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<bool> {
        match Self::present(map, key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" || s == "false" => Some(s == "true"),
            other => {
                self.error(
                    child(path, key),
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A duration string with a unit (`"30s"`).
    pub fn duration(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Duration> {
        match Self::present(map, key)? {
            Value::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.error(child(path, key), e);
                    None
                }
            },
            Value::Number(n) => {
                self.error(
                    child(path, key),
                    format!("durations need a unit; write \"{n}s\" for {n} seconds"),
                );
                None
            }
            other => {
                self.error(
                    child(path, key),
                    format!(
                        "expected a duration such as \"30s\", found {}",
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A byte size: `"32MB"` or a plain number of bytes.
    pub fn byte_size(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<u64> {
        let text = match Self::present(map, key)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                self.error(
                    child(path, key),
                    format!(
                        "expected a size such as \"32MB\", found {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        match parse_byte_size(&text) {
            Ok(n) => Some(n),
            Err(e) => {
                self.error(child(path, key), e);
                None
            }
        }
    }

    /// One string or a list of strings.
    pub fn string_or_list(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Vec<String>> {
        match Self::present(map, key)? {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(_) => self.string_list(map, path, key),
            other => {
                self.error(
                    child(path, key),
                    format!(
                        "expected a string or a list of strings, found {}",
                        type_name(other)
                    ),
                );
                None
            }
        }
    }

    /// A list of strings.
    pub fn string_list(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Vec<String>> {
        let items = match Self::present(map, key)? {
            Value::Array(items) => items,
            other => {
                self.error(
                    child(path, key),
                    format!("expected a list of strings, found {}", type_name(other)),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                Value::Number(n) => out.push(n.to_string()),
                Value::Null => {} // an unset ${VAR} in an optional list entry
                other => self.error(
                    format!("{}[{i}]", child(path, key)),
                    format!("expected a string, found {}", type_name(other)),
                ),
            }
        }
        Some(out)
    }

    /// A mapping of string to string, in file order.
    pub fn string_map(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Vec<(String, String)>> {
        let entries = match Self::present(map, key)? {
            Value::Object(m) => m,
            other => {
                self.error(
                    child(path, key),
                    format!(
                        "expected a mapping of names to strings, found {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match v {
                Value::String(s) => out.push((k.clone(), s.clone())),
                Value::Number(n) => out.push((k.clone(), n.to_string())),
                Value::Bool(b) => out.push((k.clone(), b.to_string())),
                Value::Null => {}
                other => self.error(
                    child(&child(path, key), k),
                    format!("expected a string, found {}", type_name(other)),
                ),
            }
        }
        Some(out)
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Number(n) => n.to_string(),
        other => type_name(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("bind_adress", ["bind_address", "workers"]),
            Some("bind_address")
        );
        assert_eq!(
            did_you_mean("intervall", ["interval", "timeout"]),
            Some("interval")
        );
        assert_eq!(did_you_mean("zzzzzz", ["interval", "timeout"]), None);
    }
}
