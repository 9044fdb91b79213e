//! `continuum config migrate`: rewrites outdated configs to the current schema, keeping
//! comments and key order. The older forms recognised:
//!
//! - top-level `bind_address` (a string or list) → `server.bind_address`;
//! - top-level `backend_urls` (a list of URLs) → `backends` entries named `backend-1`, …;
//! - durations written as bare integers of seconds (`interval: 30`) → `"30s"`, for every
//!   duration key of the schema;
//! - lower-case or snake_case strategy names (`round_robin`, `leastlatency`) →
//!   `RoundRobin`, `LeastLatency`, … in `selection_strategy` (top level and in
//!   `model_configs` entries);
//! - renamed keys: top-level `health_check` → `health_checks`,
//!   `timeouts.request.*.chunk_timeout` → `chunk_interval`,
//!   `circuit_breaker.reset_timeout` → `timeout`.
//!
//! YAML is edited line by line (block style; flow mappings such as `{interval: 30}` are
//! edited inside the braces), TOML through `toml_edit`. A migrated file migrates to
//! itself: a second run changes nothing.

use super::Format;

/// The result of a migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// The new text (equal to the old when nothing changed).
    pub text: String,
    /// What was changed, one line each, with the key path.
    pub changes: Vec<String>,
}

/// Duration keys, as dotted paths (`*` matches one key, `[]` a list item).
const DURATION_KEYS: &[&str] = &[
    "server.shutdown_grace",
    "server.queue_timeout",
    "server.header_read_timeout",
    "server.body_read_timeout",
    "server.keep_alive_timeout",
    "server.client_write_timeout",
    "health_checks.interval",
    "health_checks.timeout",
    "health_checks.warmup_check_interval",
    "health_checks.max_warmup_duration",
    "timeouts.connection",
    "timeouts.request.*.first_byte",
    "timeouts.request.*.total",
    "timeouts.request.*.chunk_interval",
    "timeouts.request.model_overrides.*.*.first_byte",
    "timeouts.request.model_overrides.*.*.total",
    "timeouts.request.model_overrides.*.*.chunk_interval",
    "timeouts.health_check.timeout",
    "timeouts.health_check.interval",
    "retry.initial_delay",
    "retry.max_delay",
    "backends.[].retry_override.initial_delay",
    "backends.[].retry_override.max_delay",
    "circuit_breaker.timeout",
    "cors.max_age",
    "cache.ttl",
    "hot_reload.poll_interval",
    "admin.stats.retention_window",
    "admin.stats.persistence.snapshot_interval",
    "admin.stats.persistence.max_age",
    "rate_limiting.redis.timeout",
];

/// Keys holding a strategy name.
const STRATEGY_KEYS: &[&str] = &["selection_strategy", "model_configs.[].selection_strategy"];

/// Renamed keys: (old path, new last segment).
const RENAMES: &[(&str, &str)] = &[
    ("health_check", "health_checks"),
    ("timeouts.request.*.chunk_timeout", "chunk_interval"),
    ("circuit_breaker.reset_timeout", "timeout"),
];

const STRATEGIES: [&str; 6] = [
    "RoundRobin",
    "WeightedRoundRobin",
    "LeastLatency",
    "Random",
    "ConsistentHash",
    "PrefixAwareHash",
];

fn matches(pattern: &str, path: &[String]) -> bool {
    let parts: Vec<&str> = pattern.split('.').collect();
    parts.len() == path.len()
        && parts
            .iter()
            .zip(path)
            .all(|(p, k)| *p == k || (*p == "*" && k != "[]"))
}

fn any_match(patterns: &[&str], path: &[String]) -> bool {
    patterns.iter().any(|p| matches(p, path))
}

/// The current spelling of an outdated strategy name (`None`: current or unknown).
fn strategy_name(old: &str) -> Option<&'static str> {
    let squashed: String = old
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    let name = STRATEGIES
        .iter()
        .find(|s| s.to_ascii_lowercase() == squashed)?;
    (*name != old).then_some(*name)
}

/// Migrates `text` (of `format`); `Err` names what cannot be migrated automatically.
pub fn migrate(text: &str, format: Format) -> Result<Migration, String> {
    match format {
        Format::Yaml => yaml::migrate(text),
        Format::Toml => toml::migrate(text),
    }
}

/// When the file at `path` is written in an older form that `config migrate` rewrites,
/// the one-line hint to show with its problems: "this looks like an older config: run
/// `continuum config migrate FILE`" and the first forms found.
pub fn outdated_hint(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let migration = migrate(&text, Format::of_path(path)).ok()?;
    let first = migration.changes.first()?;
    let more = match migration.changes.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    Some(format!(
        "this looks like an older config ({first}{more}): run `continuum config migrate {}`",
        path.display()
    ))
}

mod yaml {
    use super::*;

    /// One line, split into indentation, list marker, key and the rest.
    struct Line<'a> {
        indent: usize,
        dash: bool,
        key: Option<&'a str>,
        /// After `key:` (value and comment), when `key` is set.
        rest: &'a str,
    }

    fn split(line: &str) -> Line<'_> {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let mut body = &line[indent..];
        let dash = body.starts_with("- ") || body == "-";
        if dash {
            body = body[1..].trim_start_matches(' ');
        }
        let key_end = body.find(':').filter(|i| {
            let k = &body[..*i];
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                && body[*i + 1..].chars().next().is_none_or(|c| c == ' ')
        });
        match key_end {
            Some(i) if !body.starts_with('#') => Line {
                indent,
                dash,
                key: Some(&body[..i]),
                rest: &body[i + 1..],
            },
            _ => Line {
                indent,
                dash,
                key: None,
                rest: body,
            },
        }
    }

    /// `value  # comment` → (value, "  # comment").
    fn value_and_comment(rest: &str) -> (&str, &str) {
        let trimmed = rest.trim_start();
        let lead = rest.len() - trimmed.len();
        let mut in_quote: Option<char> = None;
        for (i, c) in trimmed.char_indices() {
            match (in_quote, c) {
                (Some(q), c) if c == q => in_quote = None,
                (None, '"' | '\'') => in_quote = Some(c),
                (None, '#') if i == 0 => return ("", rest),
                (None, '#') if trimmed[..i].ends_with(' ') => {
                    let v = trimmed[..i].trim_end();
                    return (v, &rest[lead + v.len()..]);
                }
                _ => {}
            }
        }
        (trimmed.trim_end(), &rest[lead + trimmed.trim_end().len()..])
    }

    /// Edits a one-level flow mapping's `key: 30` pairs (`{interval: 30, timeout: 5}`)
    /// whose paths under `base` are duration keys; nested or quoted flow text is left alone.
    fn edit_flow(value: &str, base: &[String], changes: &mut Vec<String>) -> String {
        let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) else {
            return value.to_string();
        };
        if inner.contains(['{', '[', '"', '\'']) {
            return value.to_string();
        }
        let pairs: Vec<String> = inner
            .split(',')
            .map(|pair| {
                let Some((k, v)) = pair.split_once(':') else {
                    return pair.to_string();
                };
                let n = v.trim();
                let mut path = base.to_vec();
                path.push(k.trim().to_string());
                if !n.is_empty()
                    && n.chars().all(|c| c.is_ascii_digit())
                    && any_match(DURATION_KEYS, &path)
                {
                    changes.push(format!("{}: {n} → \"{n}s\"", path.join(".")));
                    let lead = &v[..v.len() - v.trim_start().len()];
                    let trail = &v[v.trim_end().len()..];
                    format!("{k}:{lead}\"{n}s\"{trail}")
                } else {
                    pair.to_string()
                }
            })
            .collect();
        format!("{{{}}}", pairs.join(","))
    }

    pub fn migrate(text: &str) -> Result<Migration, String> {
        if text.contains("\r\n") {
            let m = migrate(&text.replace("\r\n", "\n"))?;
            return Ok(Migration {
                text: m.text.replace('\n', "\r\n"),
                changes: m.changes,
            });
        }
        let mut changes = Vec::new();
        let lines: Vec<&str> = text.split('\n').collect();
        let mut out: Vec<String> = Vec::with_capacity(lines.len() + 4);
        // (key column, key) of the mapping keys enclosing the current line.
        let mut stack: Vec<(usize, String)> = Vec::new();
        // Top-level blocks moved elsewhere: (key, line range in `out`).
        let mut moved: Vec<(String, usize, usize)> = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let raw = lines[i];
            let l = split(raw);
            let Some(key) = l.key else {
                // A list item that is a plain value closes the mappings nested deeper.
                if l.dash {
                    while stack.last().is_some_and(|(c, _)| *c > l.indent) {
                        stack.pop();
                    }
                }
                out.push(raw.to_string());
                i += 1;
                continue;
            };
            if raw.trim_start().starts_with('#') {
                out.push(raw.to_string());
                i += 1;
                continue;
            }
            let column = if l.dash { l.indent + 2 } else { l.indent };
            if l.dash {
                while stack.last().is_some_and(|(c, _)| *c > l.indent) {
                    stack.pop();
                }
                stack.push((l.indent + 1, "[]".into()));
            }
            while stack.last().is_some_and(|(c, _)| *c >= column) {
                stack.pop();
            }
            let mut path: Vec<String> = stack.iter().map(|(_, k)| k.clone()).collect();
            path.push(key.to_string());
            let (value, comment) = value_and_comment(l.rest);
            let prefix = &raw[..raw.len() - raw.trim_start_matches([' ', '-']).len()];
            let prefix = if l.dash {
                format!("{}- ", " ".repeat(l.indent))
            } else {
                prefix.to_string()
            };

            // Top-level keys that move: remember their block.
            if column == 0 && (key == "bind_address" || key == "backend_urls") {
                let (next, start, end) = copy_block(&lines, i, &mut out);
                i = next;
                moved.push((key.to_string(), start, end));
                stack.clear();
                continue;
            }

            let mut new_key = key.to_string();
            if let Some((_, to)) = RENAMES
                .iter()
                .find(|(from, _)| matches(from, &path))
                .filter(|(_, to)| !sibling_exists(&lines, i, column, to))
            {
                changes.push(format!("{}: renamed to {to}", path.join(".")));
                new_key = to.to_string();
                path.pop();
                path.push(new_key.clone());
            }
            let new_value = edit_value(value, &path, &mut changes);
            if new_key != key || new_value != value {
                let space = if new_value.is_empty() { "" } else { " " };
                out.push(format!("{prefix}{new_key}:{space}{new_value}{comment}"));
            } else {
                out.push(raw.to_string());
            }
            stack.push((column, key.to_string()));
            if new_key != key {
                if let Some(top) = stack.last_mut() {
                    top.1 = new_key;
                }
            }
            i += 1;
        }
        apply_moves(out, moved, &mut changes).map(|lines| Migration {
            text: lines.join("\n"),
            changes,
        })
    }

    /// Copies the top-level block starting at line `i` (that line, then the indented,
    /// blank and indented comment lines after it) into `out`. Returns the index of the
    /// line after the block and the block's range in `out`, trailing blank lines left out.
    fn copy_block(lines: &[&str], mut i: usize, out: &mut Vec<String>) -> (usize, usize, usize) {
        let start = out.len();
        out.push(lines[i].to_string());
        i += 1;
        while i < lines.len() {
            let next = lines[i];
            let t = next.trim_start();
            let indented = next.starts_with(' ') || next.starts_with("- ") || next == "-";
            if t.is_empty() || indented || (t.starts_with('#') && next.starts_with(' ')) {
                out.push(next.to_string());
                i += 1;
            } else {
                break;
            }
        }
        // Trailing blank lines stay where they are.
        let mut end = out.len();
        while end > start + 1 && out[end - 1].trim().is_empty() {
            end -= 1;
        }
        (i, start, end)
    }

    /// The value of the key at `path`, migrated: a bare number of seconds as a duration
    /// string, an old strategy name as the new one, a flow mapping edited inside.
    fn edit_value(value: &str, path: &[String], changes: &mut Vec<String>) -> String {
        let mut new_value = value.to_string();
        if !value.is_empty()
            && value.chars().all(|c| c.is_ascii_digit())
            && any_match(DURATION_KEYS, path)
        {
            changes.push(format!("{}: {value} → \"{value}s\"", path.join(".")));
            new_value = format!("\"{value}s\"");
        } else if any_match(STRATEGY_KEYS, path) {
            let bare = value.trim_matches(['"', '\'']);
            if let Some(name) = strategy_name(bare) {
                changes.push(format!("{}: {bare} → {name}", path.join(".")));
                new_value = name.to_string();
            }
        } else if value.starts_with('{') {
            new_value = edit_flow(value, path, changes);
        }
        new_value
    }

    /// The index of top-level `key:`'s line in `out`.
    fn top_level(out: &[String], key: &str) -> Option<usize> {
        out.iter().position(|l| {
            let s = split(l);
            s.indent == 0 && !s.dash && s.key == Some(key)
        })
    }

    /// Whether the mapping holding line `at` (keys at `column`) already has `key`.
    fn sibling_exists(lines: &[&str], at: usize, column: usize, key: &str) -> bool {
        let scan = |range: &mut dyn Iterator<Item = usize>| {
            for j in range {
                let raw = lines[j];
                let t = raw.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                let l = split(raw);
                let (c, k) = (if l.dash { l.indent + 2 } else { l.indent }, l.key);
                if c < column || (l.dash && l.indent < column) {
                    return false;
                }
                if c == column && k == Some(key) {
                    return true;
                }
            }
            false
        };
        scan(&mut (at + 1..lines.len())) || scan(&mut (0..at).rev())
    }

    /// One pass over `out` that writes the moved top-level blocks in their new form: a
    /// `bind_address` block under `server` (its children's indentation), a `backend_urls`
    /// block as `backends` entries where it stood.
    fn apply_moves(
        out: Vec<String>,
        moved: Vec<(String, usize, usize)>,
        changes: &mut Vec<String>,
    ) -> Result<Vec<String>, String> {
        let block = |key: &str| {
            moved
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, s, e)| out[*s..*e].to_vec())
        };
        let bind = block("bind_address");
        let urls = block("backend_urls");
        let server = top_level(&out, "server");
        if urls.is_some() && top_level(&out, "backends").is_some() {
            return Err(
                "both backend_urls and backends are set: merge them into backends by hand".into(),
            );
        }
        if let (Some(s), Some(_)) = (server, &bind) {
            let (value, _) = value_and_comment(split(&out[s]).rest);
            if !value.is_empty() {
                return Err(
                    "top-level bind_address and a one-line `server:` mapping: move bind_address into server by hand".into(),
                );
            }
        }
        let indent_by = |lines: &[String], n: usize| -> Vec<String> {
            lines
                .iter()
                .map(|l| {
                    if l.is_empty() {
                        String::new()
                    } else {
                        format!("{}{l}", " ".repeat(n))
                    }
                })
                .collect()
        };
        let child_indent = server
            .and_then(|s| {
                out[s + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                    .map(|l| split(l).indent)
            })
            .filter(|n| *n > 0)
            .unwrap_or(2);
        let mut result = Vec::with_capacity(out.len() + 8);
        let mut i = 0;
        while i < out.len() {
            if let Some((key, _, end)) = moved.iter().find(|(_, s, _)| *s == i) {
                match key.as_str() {
                    "bind_address" => {
                        changes.push("bind_address: moved into server".into());
                        if server.is_none() {
                            result.push("server:".to_string());
                            result.extend(indent_by(&out[i..*end], 2));
                        }
                    }
                    _ => result.extend(expand_backend_urls(&out[i..*end], changes)?),
                }
                i = *end;
                continue;
            }
            result.push(out[i].clone());
            if Some(i) == server {
                if let Some(b) = &bind {
                    result.extend(indent_by(b, child_indent));
                }
            }
            i += 1;
        }
        Ok(result)
    }

    /// A `backend_urls` block as `backends` entries (its comment lines kept above).
    fn expand_backend_urls(
        block: &[String],
        changes: &mut Vec<String>,
    ) -> Result<Vec<String>, String> {
        let text = block.join("\n");
        let (_, comment) = value_and_comment(split(&block[0]).rest);
        let tree: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| format!("backend_urls: {e}"))?;
        let urls: Vec<String> = match tree.get("backend_urls") {
            Some(serde_yaml::Value::Sequence(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("backend_urls: expected a list of URLs")?,
            Some(serde_yaml::Value::String(s)) => {
                s.split(',').map(|u| u.trim().to_string()).collect()
            }
            _ => return Err("backend_urls: expected a list of URLs".into()),
        };
        let mut lines: Vec<String> = block[1..]
            .iter()
            .filter(|l| l.trim_start().starts_with('#'))
            .map(|l| l.trim_start().to_string())
            .collect();
        lines.push(format!("backends:{comment}"));
        for (n, url) in urls.iter().enumerate() {
            lines.push(format!("  - name: backend-{}", n + 1));
            lines.push(format!("    url: \"{url}\""));
        }
        changes.push(format!("backend_urls: {} URL(s) → backends", urls.len()));
        Ok(lines)
    }
}

mod toml {
    use super::*;
    use toml_edit::{DocumentMut, Item, Key, Table, Value};

    pub fn migrate(text: &str) -> Result<Migration, String> {
        let mut doc: DocumentMut = text.parse().map_err(|e| format!("invalid TOML: {e}"))?;
        let mut changes = Vec::new();
        let root = doc.as_table_mut();
        // Comments above a key that moves stay at the top of the file.
        let mut moved_comments = String::new();
        for key in ["bind_address", "backend_urls"] {
            if let Some((k, _)) = root.get_key_value(key) {
                if let Some(prefix) = k.leaf_decor().prefix().and_then(|p| p.as_str()) {
                    moved_comments.push_str(prefix);
                }
            }
        }
        if let Some(bind) = root.remove("bind_address") {
            let server = root
                .entry("server")
                .or_insert_with(|| Item::Table(Table::new()));
            let Some(server) = server.as_table_like_mut() else {
                return Err("server is not a table".into());
            };
            server.insert("bind_address", bind);
            changes.push("bind_address: moved into server".into());
        }
        if let Some(urls) = root.remove("backend_urls") {
            if root.contains_key("backends") {
                return Err(
                    "both backend_urls and backends are set: merge them into backends by hand"
                        .into(),
                );
            }
            let list: Vec<String> = match urls.as_value() {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("backend_urls: expected a list of URLs")?,
                Some(Value::String(s)) => {
                    s.value().split(',').map(|u| u.trim().to_string()).collect()
                }
                _ => return Err("backend_urls: expected a list of URLs".into()),
            };
            let mut tables = toml_edit::ArrayOfTables::new();
            for (n, url) in list.iter().enumerate() {
                let mut t = Table::new();
                t.insert("name", toml_edit::value(format!("backend-{}", n + 1)));
                t.insert("url", toml_edit::value(url.as_str()));
                tables.push(t);
            }
            root.insert("backends", Item::ArrayOfTables(tables));
            changes.push(format!("backend_urls: {} URL(s) → backends", list.len()));
        }
        walk(root, &mut Vec::new(), &mut changes);
        let mut text = doc.to_string();
        if !moved_comments.trim().is_empty() && !text.starts_with(moved_comments.as_str()) {
            text.insert_str(0, &moved_comments);
        }
        Ok(Migration { text, changes })
    }

    /// Renames `from` to `to` in `table`, keeping its place and decoration.
    fn rename(table: &mut Table, from: &str, to: &str) {
        let entries: Vec<(Key, Item)> = table
            .iter()
            .filter_map(|(k, _)| table.get_key_value(k).map(|(k, v)| (k.clone(), v.clone())))
            .collect();
        table.clear();
        for (k, v) in entries {
            let k = if k.get() == from {
                Key::new(to).with_leaf_decor(k.leaf_decor().clone())
            } else {
                k
            };
            table.insert_formatted(&k, v);
        }
    }

    fn walk(table: &mut Table, path: &mut Vec<String>, changes: &mut Vec<String>) {
        let keys: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
        for key in keys {
            path.push(key.clone());
            let mut current = key.clone();
            if let Some((_, to)) = RENAMES.iter().find(|(from, _)| matches(from, path)) {
                if !table.contains_key(to) {
                    rename(table, &key, to);
                    changes.push(format!("{}: renamed to {to}", path.join(".")));
                    current = to.to_string();
                    path.pop();
                    path.push(current.clone());
                }
            }
            if let Some(item) = table.get_mut(&current) {
                edit_item(item, path, changes);
            }
            path.pop();
        }
    }

    fn edit_item(item: &mut Item, path: &mut Vec<String>, changes: &mut Vec<String>) {
        match item {
            Item::Table(t) => walk(t, path, changes),
            Item::ArrayOfTables(a) => {
                path.push("[]".into());
                for t in a.iter_mut() {
                    walk(t, path, changes);
                }
                path.pop();
            }
            Item::Value(Value::InlineTable(t)) => {
                let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
                for key in keys {
                    path.push(key.clone());
                    if let Some(v) = t.get_mut(&key) {
                        edit_value(v, path, changes);
                    }
                    path.pop();
                }
            }
            Item::Value(v) => edit_value(v, path, changes),
            Item::None => {}
        }
    }

    fn edit_value(v: &mut Value, path: &mut Vec<String>, changes: &mut Vec<String>) {
        if let Value::InlineTable(t) = v {
            let keys: Vec<String> = t.iter().map(|(k, _)| k.to_string()).collect();
            for key in keys {
                path.push(key.clone());
                if let Some(inner) = t.get_mut(&key) {
                    edit_value(inner, path, changes);
                }
                path.pop();
            }
            return;
        }
        if any_match(DURATION_KEYS, path) {
            if let Some(n) = v.as_integer() {
                let decor = v.decor().clone();
                let mut new = Value::from(format!("{n}s"));
                *new.decor_mut() = decor;
                *v = new;
                changes.push(format!("{}: {n} → \"{n}s\"", path.join(".")));
            }
        } else if any_match(STRATEGY_KEYS, path) {
            if let Some(name) = v.as_str().and_then(strategy_name) {
                let decor = v.decor().clone();
                let old = v.as_str().unwrap_or("").to_string();
                let mut new = Value::from(name);
                *new.decor_mut() = decor;
                *v = new;
                changes.push(format!("{}: {old} → {name}", path.join(".")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Migration {
        let m = migrate(text, Format::Yaml).unwrap();
        let again = migrate(&m.text, Format::Yaml).unwrap();
        assert!(
            again.changes.is_empty(),
            "not idempotent: {:?}\n{}",
            again.changes,
            m.text
        );
        m
    }

    #[test]
    fn both_moves_with_server_above_them() {
        let m = yaml("server:\n    workers: 2\n\nbackend_urls:\n  - http://a\n  - http://b\n\nbind_address: 0.0.0.0:8080\n");
        assert_eq!(
            m.text,
            "server:\n    bind_address: 0.0.0.0:8080\n    workers: 2\n\nbackends:\n  - name: backend-1\n    url: \"http://a\"\n  - name: backend-2\n    url: \"http://b\"\n\n"
        );
        let v: serde_yaml::Value = serde_yaml::from_str(&m.text).unwrap();
        assert_eq!(v["backends"][1]["url"], "http://b");
    }

    #[test]
    fn crlf_files_and_renames_onto_existing_keys() {
        let m = yaml("bind_address: \"0:1\"\r\nserver:\r\n  workers: 1\r\n");
        assert_eq!(
            m.text,
            "server:\r\n  bind_address: \"0:1\"\r\n  workers: 1\r\n"
        );
        // The new name is taken: the old key is left for the user (validation names it).
        let m = yaml("circuit_breaker:\n  reset_timeout: 60\n  timeout: 30s\n");
        assert!(m.text.contains("reset_timeout"), "{}", m.text);
        assert!(!m.changes.iter().any(|c| c.contains("renamed")));
    }

    #[test]
    fn strategies() {
        assert_eq!(strategy_name("round_robin"), Some("RoundRobin"));
        assert_eq!(strategy_name("leastlatency"), Some("LeastLatency"));
        assert_eq!(strategy_name("prefix-aware-hash"), Some("PrefixAwareHash"));
        assert_eq!(strategy_name("RoundRobin"), None);
        assert_eq!(strategy_name("fastest"), None);
    }
}
