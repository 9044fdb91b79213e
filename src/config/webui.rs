//! The admin web UI's settings: the original's top-level `webui:` section (`enabled`,
//! `path_prefix`) and `admin.webui.enabled`, which mean the same.

use serde_json::{Map, Value};

use super::reader::{child, Keys, Reader};

const WEBUI: Keys = Keys {
    known: &["enabled", "path_prefix"],
    unsupported: &[],
};
const ADMIN_WEBUI: Keys = Keys {
    known: &["enabled"],
    unsupported: &[],
};

/// Paths the UI's prefix may not take (the router's own routes live there).
const TAKEN: &[&str] = &[
    "/v1",
    "/admin",
    "/anthropic",
    "/health",
    "/healthz",
    "/metrics",
    "/openapi.json",
];

/// The admin web UI.
#[derive(Debug, Clone, PartialEq)]
pub struct WebUiConfig {
    /// Served (default: when the config has an `admin` section).
    pub enabled: bool,
    /// Where (`/webui`: the page is `/webui/`).
    pub path_prefix: String,
}

/// Reads `webui:` and `admin.webui`.
pub fn read_webui(top: &Map<String, Value>, r: &mut Reader) -> WebUiConfig {
    let mut c = WebUiConfig {
        enabled: top.get("admin").is_some_and(|a| !a.is_null()),
        path_prefix: "/webui".into(),
    };
    let mut set: Option<(bool, &str)> = None;
    if let Some(m) = top.get("webui").and_then(|v| r.section(v, "webui", &WEBUI)) {
        if let Some(b) = r.boolean(m, "webui", "enabled") {
            set = Some((b, "webui.enabled"));
        }
        if let Some(p) = r.string(m, "webui", "path_prefix") {
            match check_prefix(&p) {
                Ok(p) => c.path_prefix = p,
                Err(e) => r.error(child("webui", "path_prefix"), e),
            }
        }
    }
    let admin_webui = top
        .get("admin")
        .and_then(|a| a.get("webui"))
        .and_then(|v| r.section(v, "admin.webui", &ADMIN_WEBUI));
    if let Some(m) = admin_webui {
        if let Some(b) = r.boolean(m, "admin.webui", "enabled") {
            match set {
                Some((other, path)) if other != b => r.error(
                    "admin.webui.enabled",
                    format!("says {b} but {path} says {other}; keep one of them"),
                ),
                _ => set = Some((b, "admin.webui.enabled")),
            }
        }
    }
    if let Some((b, _)) = set {
        c.enabled = b;
    }
    c
}

/// A path prefix: starts with `/`, one or more plain segments, no trailing `/`, not one
/// of the router's own paths.
fn check_prefix(p: &str) -> Result<String, String> {
    let trimmed = p.trim_end_matches('/');
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && s != "."
            && s != ".."
    };
    if !trimmed.starts_with('/') || !trimmed[1..].split('/').all(plain) {
        return Err(format!(
            "'{p}' is not a path prefix such as /webui (a '/', then letters, digits, '-', '_' or '.', in segments)"
        ));
    }
    if let Some(t) = TAKEN
        .iter()
        .find(|t| trimmed == **t || trimmed.starts_with(&format!("{t}/")))
    {
        return Err(format!(
            "'{p}' is the router's own {t}; choose another prefix"
        ));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> (WebUiConfig, Vec<String>) {
        let v: Value = serde_yaml::from_str(yaml).unwrap();
        let mut r = Reader::default();
        let c = read_webui(v.as_object().unwrap(), &mut r);
        (
            c,
            r.errors
                .iter()
                .map(|p| format!("{}: {}", p.path, p.message))
                .collect(),
        )
    }

    #[test]
    fn on_with_an_admin_section_unless_either_spelling_says_off() {
        assert!(!read("backends: []").0.enabled);
        assert!(read("admin: {auth: {method: none}}").0.enabled);
        assert!(!read("admin: {webui: {enabled: false}}").0.enabled);
        assert!(!read("admin: {}\nwebui: {enabled: false}").0.enabled);
        assert!(read("webui: {enabled: true}").0.enabled);
        let (_, e) = read("admin: {webui: {enabled: true}}\nwebui: {enabled: false}");
        assert!(
            e[0].contains("admin.webui.enabled: says true but webui.enabled says false"),
            "{e:?}"
        );
    }

    #[test]
    fn prefixes_are_checked() {
        assert_eq!(read("webui: {path_prefix: /ui/}").0.path_prefix, "/ui");
        assert_eq!(
            read("webui: {path_prefix: /ops/console}").0.path_prefix,
            "/ops/console"
        );
        for bad in ["ui", "/", "/a//b", "/v1", "/admin/ui", "/x y", "/.."] {
            let (_, e) = read(&format!("webui: {{path_prefix: \"{bad}\"}}"));
            assert!(
                e.iter().any(|e| e.starts_with("webui.path_prefix")),
                "{bad}: {e:?}"
            );
        }
    }
}
