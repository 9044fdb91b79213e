//! Where the router of a config listens, read leniently for the client commands (`chat`,
//! `models list`, `bench`, `health-check`): they need `server.bind_address` only, so a
//! config whose other parts are incomplete here (a cloud key's variable unset in this
//! shell, say) still tells them where its router is.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::interpolate::{self, EnvSource};
use super::types::BindAddr;
use super::{parse_tree, ConfigError, Format};

/// The address a config's router listens on, and where that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddress {
    /// The first configured address.
    pub addr: BindAddr,
    /// Where it came from, for messages: `server.bind_address in FILE`,
    /// `CONTINUUM_BIND_ADDRESS`, or `the default address`.
    pub origin: String,
}

/// The address the router configured by `file` (or by the defaults, with no file) listens
/// on, after `CONTINUUM_BIND_ADDRESS`. Reads nothing but the bind address (the original's
/// top-level `bind_address` included).
pub fn listen_address(
    file: Option<&Path>,
    env: &dyn EnvSource,
) -> Result<ListenAddress, ConfigError> {
    let parse = |text: &str, origin: String| {
        BindAddr::parse(text)
            .map(|addr| ListenAddress {
                addr,
                origin: origin.clone(),
            })
            .map_err(|message| ConfigError::Override { origin, message })
    };
    if let Some(v) = env
        .var("CONTINUUM_BIND_ADDRESS")
        .filter(|v| !v.trim().is_empty())
    {
        let first = v.split(',').next().unwrap_or_default().to_string();
        return parse(&first, "CONTINUUM_BIND_ADDRESS".into());
    }
    let Some(file) = file else {
        return parse("127.0.0.1:8080", "the default address".into());
    };
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        path: PathBuf::from(file),
        source,
    })?;
    let mut tree =
        parse_tree(&text, Format::of_path(file)).map_err(|message| ConfigError::Syntax {
            file: file.display().to_string(),
            message,
        })?;
    let (key, value) = if let Some(v) = tree.pointer_mut("/server/bind_address") {
        ("server.bind_address", v.take())
    } else if let Some(v) = tree.get_mut("bind_address") {
        ("bind_address", v.take())
    } else {
        return parse("127.0.0.1:8080", "the default address".into());
    };
    let first = match value {
        Value::Array(items) => items.into_iter().next().unwrap_or(Value::Null),
        other => other,
    };
    let origin = format!("{key} in {}", file.display());
    let Value::String(text) = first else {
        return Err(ConfigError::Override {
            origin,
            message: "is not a \"host:port\" string".into(),
        });
    };
    let text = interpolate::substitute(&text, env)
        .map_err(|message| ConfigError::Override {
            origin: origin.clone(),
            message,
        })?
        .unwrap_or(text);
    parse(&text, origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("continuum-listen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_the_first_address_and_ignores_the_rest_of_the_file() {
        let env = HashMap::<String, String>::new();
        let f = write(
            "a.yaml",
            "server:\n  bind_address: [\"0.0.0.0:9000\", \"unix:/x\"]\nbackends: ${UNSET_EVERYWHERE}\n",
        );
        let l = listen_address(Some(&f), &env).unwrap();
        assert_eq!(l.addr, BindAddr::parse("0.0.0.0:9000").unwrap());
        assert!(
            l.origin.starts_with("server.bind_address in "),
            "{}",
            l.origin
        );
        let f = write(
            "b.toml",
            "[server]\nbind_address = \"${PORTLESS:-127.0.0.1:7000}\"\n",
        );
        let l = listen_address(Some(&f), &env).unwrap();
        assert_eq!(l.addr, BindAddr::parse("127.0.0.1:7000").unwrap());
        let f = write("old.yaml", "bind_address: 127.0.0.1:7001\n");
        assert_eq!(
            listen_address(Some(&f), &env).unwrap().addr,
            BindAddr::parse("127.0.0.1:7001").unwrap()
        );
        let f = write("none.yaml", "backends: []\n");
        assert_eq!(
            listen_address(Some(&f), &env).unwrap().origin,
            "the default address"
        );
    }

    #[test]
    fn the_environment_wins_and_bad_values_are_named() {
        let env: HashMap<String, String> = [(
            "CONTINUUM_BIND_ADDRESS".to_string(),
            "127.0.0.1:7002,[::1]:7003".to_string(),
        )]
        .into();
        let l = listen_address(None, &env).unwrap();
        assert_eq!(l.addr, BindAddr::parse("127.0.0.1:7002").unwrap());
        assert_eq!(l.origin, "CONTINUUM_BIND_ADDRESS");
        let f = write("bad.yaml", "server:\n  bind_address: 8080\n");
        let e = listen_address(Some(&f), &HashMap::<String, String>::new()).unwrap_err();
        assert!(e.to_string().contains("server.bind_address in"), "{e}");
    }
}
