//! `continuum auth login|status|logout`: the OAuth device flow for backends whose
//! `auth.type` is `oauth`, and their stored tokens.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use continuum::config::{self, BackendConfig, Overrides, ProcessEnv, Strictness};

use super::output::outln;
use super::target::runtime;
use super::AuthCommand;

/// Runs `continuum auth …`.
pub fn run(command: AuthCommand) -> ExitCode {
    let result = match command {
        AuthCommand::Login { backend, config } => login(&backend, config.as_deref()),
        AuthCommand::Status { config } => status(config.as_deref()),
        AuthCommand::Logout { backend, config } => logout(&backend, config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn backends(config: Option<&Path>) -> Result<Vec<BackendConfig>, String> {
    let loaded = config::load(
        config,
        &Overrides::default(),
        &ProcessEnv,
        Strictness::Serve,
    )
    .map_err(|e| e.to_string())?;
    Ok(loaded.config.backends)
}

/// The OAuth backend `name`, and the config key path of its OAuth settings
/// (`backends[2].auth.oauth`) for messages.
fn oauth_backend(name: &str, config: Option<&Path>) -> Result<(BackendConfig, String), String> {
    let all = backends(config)?;
    let Some((i, b)) = all.iter().enumerate().find(|(_, b)| b.name == name) else {
        let names: Vec<&str> = all.iter().map(|b| b.name.as_str()).collect();
        return Err(format!(
            "no backend named '{name}' (backends: {})",
            names.join(", ")
        ));
    };
    if b.oauth.is_none() {
        return Err(format!(
            "backend '{name}' does not use OAuth (set backends[{i}].auth: {{type: oauth, oauth: {{...}}}})"
        ));
    }
    Ok((b.clone(), format!("backends[{i}].auth.oauth")))
}

/// A login or logout failure as one sentence naming the backend and the config key to
/// check.
fn oauth_error(
    action: &str,
    name: &str,
    key: &str,
    cfg: &continuum::config::operations::OAuthConfig,
    e: &continuum::oauth::OAuthError,
) -> String {
    use continuum::oauth::OAuthError;
    let field = match e {
        OAuthError::Config(m) => m.split(':').next().map(str::to_string),
        OAuthError::Transport(m) if m.starts_with(&cfg.device_authorization_url) => {
            Some("device_authorization_url".into())
        }
        OAuthError::Transport(m) if m.starts_with(&cfg.token_url) => Some("token_url".into()),
        OAuthError::Refused(_) => Some("client_id".into()),
        OAuthError::Store { .. } => Some("token_store".into()),
        OAuthError::Denied | OAuthError::Expired | OAuthError::Transport(_) => None,
    };
    match field {
        Some(f) => format!("{action} for backend '{name}' failed: {e}; check {key}.{f}"),
        None => format!("{action} for backend '{name}' failed: {e}"),
    }
}

fn login(name: &str, config: Option<&Path>) -> Result<(), String> {
    let (backend, key) = oauth_backend(name, config)?;
    let Some(cfg) = &backend.oauth else {
        return Err(format!("backend '{name}' does not use OAuth"));
    };
    let rt = runtime()?;
    let http = continuum::backend::build_client(2, Duration::from_secs(10));
    let token = rt
        .block_on(continuum::oauth::device_login(cfg, http, |details| {
            outln!(
                "To authorize continuum for backend '{name}', open\n\n    {}\n\nand enter the code\n\n    {}\n",
                details.verification_uri().as_str(),
                details.user_code().secret()
            );
            if let Some(complete) = details.verification_uri_complete() {
                outln!("(or open {} directly)", complete.secret());
            }
            outln!(
                "Waiting for the authorization (the code expires in {}s)…",
                details.expires_in().as_secs()
            );
        }))
        .map_err(|e| oauth_error("login", name, &key, cfg, &e))?;
    continuum::oauth::save_token(&cfg.token_store, name, &token)
        .map_err(|e| oauth_error("login", name, &key, cfg, &e))?;
    outln!(
        "Logged in: the token for '{name}' is stored in {}{}",
        cfg.token_store.display(),
        token
            .expires_at
            .map(|_| " (`continuum serve` refreshes it before it expires)")
            .unwrap_or("")
    );
    Ok(())
}

fn status(config: Option<&Path>) -> Result<(), String> {
    let all = backends(config)?;
    let oauth: Vec<&BackendConfig> = all.iter().filter(|b| b.oauth.is_some()).collect();
    if oauth.is_empty() {
        outln!("no backend uses OAuth (backends[].auth.type: oauth)");
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["backend", "token", "expires", "refresh token", "store"]);
    for b in oauth {
        let Some(cfg) = &b.oauth else { continue };
        let token =
            continuum::oauth::load_token(&cfg.token_store, &b.name).map_err(|e| e.to_string())?;
        let (state, expires, refresh) = match &token {
            None => (
                "none (run auth login)".to_string(),
                "-".to_string(),
                "-".to_string(),
            ),
            Some(tok) => (
                "stored".to_string(),
                match tok.expires_at {
                    None => "never said".to_string(),
                    Some(at) if at <= now => "expired".to_string(),
                    Some(at) => format!("in {}s", at - now),
                },
                if tok.refresh_token.is_some() {
                    "yes"
                } else {
                    "no"
                }
                .to_string(),
            ),
        };
        t.add_row([
            b.name.clone(),
            state,
            expires,
            refresh,
            cfg.token_store.display().to_string(),
        ]);
    }
    outln!("{t}");
    Ok(())
}

fn logout(name: &str, config: Option<&Path>) -> Result<(), String> {
    let (backend, key) = oauth_backend(name, config)?;
    let Some(cfg) = &backend.oauth else {
        return Err(format!("backend '{name}' does not use OAuth"));
    };
    if continuum::oauth::remove_token(&cfg.token_store, name)
        .map_err(|e| oauth_error("logout", name, &key, cfg, &e))?
    {
        outln!(
            "removed the token of '{name}' from {}",
            cfg.token_store.display()
        );
    } else {
        outln!(
            "no token of '{name}' was stored in {}",
            cfg.token_store.display()
        );
    }
    Ok(())
}
