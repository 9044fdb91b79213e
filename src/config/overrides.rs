//! The command line and the environment applied over the file (`--bind`, `--backends`,
//! `CONTINUUM_*`), key by key.

use super::*;

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Applies the command line and the environment over the file, key by key: a flag given
/// on the command line wins and its environment variable is then not read at all.
pub(super) fn apply_env_and_overrides(
    config: &mut Config,
    env: &dyn EnvSource,
    o: &Overrides,
) -> Result<(), ConfigError> {
    let urls: Vec<String> = o.backends.iter().flat_map(|b| split_list(b)).collect();
    if !o.bind.is_empty() {
        set_bind(config, &o.bind, "--bind")?;
    } else if let Some(v) = env
        .var("CONTINUUM_BIND_ADDRESS")
        .filter(|v| !v.trim().is_empty())
    {
        set_bind(config, &split_list(&v), "CONTINUUM_BIND_ADDRESS")?;
    }
    if let Some(port) = o.port {
        let mut tcp = config
            .server
            .bind_address
            .iter_mut()
            .filter_map(|a| match a {
                BindAddr::Tcp(addr) => Some(addr),
                BindAddr::Unix(_) => None,
            })
            .peekable();
        if tcp.peek().is_none() {
            return Err(ConfigError::Override {
                origin: "--port".into(),
                message: "the router listens on unix sockets only; use --bind HOST:PORT".into(),
            });
        }
        tcp.for_each(|addr| addr.set_port(port));
    }
    if !o.backends.is_empty() {
        set_backends(config, &urls, "--backends")?;
    } else if let Some(v) = env
        .var("CONTINUUM_BACKEND_URLS")
        .filter(|v| !v.trim().is_empty())
    {
        set_backends(config, &split_list(&v), "CONTINUUM_BACKEND_URLS")?;
    }
    let level = match &o.log_level {
        Some(l) => Some((l.clone(), "--log-level")),
        None => env
            .var("CONTINUUM_LOG_LEVEL")
            .filter(|l| !l.trim().is_empty())
            .map(|l| (l, "CONTINUUM_LOG_LEVEL")),
    };
    if let Some((level, origin)) = level {
        config.logging.level =
            Some(
                parse_log_level(&level).map_err(|message| ConfigError::Override {
                    origin: origin.into(),
                    message,
                })?,
            );
    }
    if let Some(secs) = o.health_check_interval {
        if secs == 0 {
            return Err(ConfigError::Override {
                origin: "--health-check-interval".into(),
                message: "must be at least 1 second".into(),
            });
        }
        config.health_checks.interval = std::time::Duration::from_secs(secs);
    }
    if let Some(format) = &o.log_format {
        config.logging.format =
            parse_log_format(format).map_err(|message| ConfigError::Override {
                origin: "--log-format".into(),
                message,
            })?;
    }
    Ok(())
}

fn set_bind(config: &mut Config, list: &[String], origin: &str) -> Result<(), ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::Override {
            origin: origin.into(),
            message: "names no address".into(),
        });
    }
    let addrs = list
        .iter()
        .map(|a| BindAddr::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| ConfigError::Override {
            origin: origin.into(),
            message,
        })?;
    config.server.bind_address = addrs;
    Ok(())
}

fn set_backends(config: &mut Config, urls: &[String], origin: &str) -> Result<(), ConfigError> {
    if urls.is_empty() {
        return Err(ConfigError::Override {
            origin: origin.into(),
            message: "names no backend URL".into(),
        });
    }
    let mut backends = Vec::with_capacity(urls.len());
    for (i, url) in urls.iter().enumerate() {
        let root = normalize_url(url).map_err(|message| ConfigError::Override {
            origin: origin.into(),
            message,
        })?;
        let mut b = BackendConfig::new(format!("backend-{}", i + 1), BackendType::Generic);
        b.url = Some(root);
        backends.push(b);
    }
    config.backends = backends;
    Ok(())
}
