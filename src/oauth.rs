//! OAuth 2.0 for backends whose `auth.type` is `oauth`: the device authorization grant
//! (RFC 8628, through the `oauth2` crate) that `continuum auth login` runs, the token
//! store (a JSON file of mode 0600, one entry per backend), and the refresh `serve` does
//! before a token expires.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, DeviceAuthorizationUrl, RefreshToken, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use crate::backend::HttpClient;
use crate::config::operations::OAuthConfig;

/// What went wrong with a login, refresh or the token store.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A URL in the config is not usable.
    #[error("{0}")]
    Config(String),
    /// The user refused the authorization.
    #[error("the authorization was denied (access_denied)")]
    Denied,
    /// The device code expired before the user finished.
    #[error("the device code expired before the authorization finished (expired_token); run the login again")]
    Expired,
    /// The authorization server refused, with its error.
    #[error("the authorization server refused: {0}")]
    Refused(String),
    /// The authorization server could not be reached or answered nonsense.
    #[error("{0}")]
    Transport(String),
    /// The token store could not be read or written.
    #[error("token store {path}: {reason}")]
    Store {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A backend's tokens, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredToken {
    /// The bearer token sent to the backend.
    pub access_token: String,
    /// For getting a new access token without the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires (Unix seconds), if the server said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// When it was obtained (Unix seconds).
    pub obtained_at: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    #[serde(default)]
    backends: BTreeMap<String, StoredToken>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `~/` expanded (a store path that did not come through `config::load`).
fn expand(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => Path::new(&home).join(rest),
        _ => path.to_path_buf(),
    }
}

fn read_store(path: &Path) -> Result<StoreFile, OAuthError> {
    let path = expand(path);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| OAuthError::Store {
            path,
            reason: format!("not a token store: {e}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
        Err(e) => Err(OAuthError::Store {
            path,
            reason: e.to_string(),
        }),
    }
}

/// Writes the store through a temporary file created with mode 0600 and renamed into
/// place, so the tokens are never readable by others, not even for a moment.
fn write_store(path: &Path, store: &StoreFile) -> Result<(), OAuthError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = expand(path);
    let fail = |reason: String| OAuthError::Store {
        path: path.clone(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let text = serde_json::to_vec_pretty(store).map_err(|e| fail(e.to_string()))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail(e.to_string()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| fail(e.to_string()))?;
    f.write_all(&text).map_err(|e| fail(e.to_string()))?;
    f.sync_all().map_err(|e| fail(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| fail(e.to_string()))
}

/// The stored token of `backend`, if any.
pub fn load_token(store: &Path, backend: &str) -> Result<Option<StoredToken>, OAuthError> {
    Ok(read_store(store)?.backends.remove(backend))
}

/// Keeps `token` for `backend` (other backends' tokens stay).
pub fn save_token(store: &Path, backend: &str, token: &StoredToken) -> Result<(), OAuthError> {
    let mut file = read_store(store)?;
    file.backends.insert(backend.to_string(), token.clone());
    write_store(store, &file)
}

/// Forgets `backend`'s token; whether there was one.
pub fn remove_token(store: &Path, backend: &str) -> Result<bool, OAuthError> {
    let mut file = read_store(store)?;
    let had = file.backends.remove(backend).is_some();
    if had {
        write_store(store, &file)?;
    }
    Ok(had)
}

/// The `oauth2` crate's requests sent with the router's HTTP client.
#[derive(Clone)]
struct Http(HttpClient);

impl<'c> oauth2::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let req = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
            let resp = tokio::time::timeout(Duration::from_secs(30), self.0.request(req))
                .await
                .map_err(|_| HttpError("no answer within 30s".into()))?
                .map_err(|e| HttpError(crate::http::describe_client_error(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = http_body_util::Limited::new(body, 1 << 20)
                .collect()
                .await
                .map_err(|e| HttpError(e.to_string()))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        })
    }
}

/// A transport failure talking to the authorization server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

fn token_of(
    resp: &oauth2::basic::BasicTokenResponse,
    previous_refresh: Option<&str>,
) -> StoredToken {
    let now = unix_now();
    StoredToken {
        access_token: resp.access_token().secret().clone(),
        refresh_token: resp
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| previous_refresh.map(str::to_string)),
        expires_at: resp.expires_in().map(|d| now + d.as_secs()),
        obtained_at: now,
    }
}

fn transport<E: std::error::Error>(
    url: &str,
    e: RequestTokenError<E, impl oauth2::ErrorResponse>,
) -> OAuthError {
    match e {
        RequestTokenError::ServerResponse(r) => OAuthError::Refused(r.to_string()),
        RequestTokenError::Request(e) => OAuthError::Transport(format!("{url}: {e}")),
        RequestTokenError::Parse(e, _) => {
            OAuthError::Transport(format!("{url}: unexpected answer: {e}"))
        }
        RequestTokenError::Other(e) => OAuthError::Transport(format!("{url}: {e}")),
    }
}

/// Runs the device authorization grant: asks for a device code, hands the verification
/// URL and user code to `show` (opening nothing itself), then polls the token endpoint
/// at the server's interval (slower after `slow_down`) until the user approves, denies
/// or the code expires.
pub async fn device_login(
    cfg: &OAuthConfig,
    http: HttpClient,
    show: impl FnOnce(&StandardDeviceAuthorizationResponse),
) -> Result<StoredToken, OAuthError> {
    let mut client = BasicClient::new(ClientId::new(cfg.client_id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(cfg.device_authorization_url.clone())
                .map_err(|e| OAuthError::Config(format!("device_authorization_url: {e}")))?,
        )
        .set_token_uri(
            TokenUrl::new(cfg.token_url.clone())
                .map_err(|e| OAuthError::Config(format!("token_url: {e}")))?,
        );
    if let Some(secret) = &cfg.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    let http = Http(http);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(cfg.scopes.iter().cloned().map(Scope::new))
        .request_async(&http)
        .await
        .map_err(|e| transport(&cfg.device_authorization_url, e))?;
    show(&details);
    let token = client
        .exchange_device_access_token(&details)
        .request_async(&http, tokio::time::sleep, None)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => match r.error() {
                oauth2::DeviceCodeErrorResponseType::AccessDenied => OAuthError::Denied,
                oauth2::DeviceCodeErrorResponseType::ExpiredToken => OAuthError::Expired,
                _ => OAuthError::Refused(r.to_string()),
            },
            other => transport(&cfg.token_url, other),
        })?;
    Ok(token_of(&token, None))
}

/// Gets a new access token with `refresh_token`.
pub async fn refresh(
    cfg: &OAuthConfig,
    http: HttpClient,
    refresh_token: &str,
) -> Result<StoredToken, OAuthError> {
    let mut client = BasicClient::new(ClientId::new(cfg.client_id.clone())).set_token_uri(
        TokenUrl::new(cfg.token_url.clone())
            .map_err(|e| OAuthError::Config(format!("token_url: {e}")))?,
    );
    if let Some(secret) = &cfg.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    let token = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
        .request_async(&Http(http))
        .await
        .map_err(|e| transport(&cfg.token_url, e))?;
    Ok(token_of(&token, Some(refresh_token)))
}

/// How long before expiry `serve` refreshes a token (at most; half the token's lifetime for
/// short-lived tokens, so a refreshed token is not refreshed again at once).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// When `token` should be refreshed: `None` when it has no expiry.
pub fn refresh_due(token: &StoredToken) -> Option<Duration> {
    let at = token.expires_at?;
    let lifetime = at.saturating_sub(token.obtained_at).max(1);
    let margin = REFRESH_MARGIN.as_secs().min(lifetime / 2);
    Some(Duration::from_secs(
        at.saturating_sub(margin).saturating_sub(unix_now()),
    ))
}

/// Whether `token` has expired.
fn expired(token: &StoredToken) -> bool {
    token.expires_at.is_some_and(|at| at <= unix_now())
}

/// Brings an OAuth backend's bearer token up to date: the stored token (re-read each
/// time, so a new `auth login` is picked up), refreshed first when it is about to expire.
/// Returns the wait before the next look.
pub async fn keep_fresh(client: &HttpClient, backend: &crate::backend::Backend) -> Duration {
    const AGAIN: Duration = Duration::from_secs(30);
    let Some(cfg) = &backend.config.oauth else {
        return Duration::from_secs(3600);
    };
    let name = backend.name();
    let token = match load_token(&cfg.token_store, name) {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::warn!(
                backend = name,
                "no OAuth token stored; run `continuum auth login --backend {name}`"
            );
            return AGAIN;
        }
        Err(e) => {
            tracing::warn!(backend = name, "{e}");
            return AGAIN;
        }
    };
    let token = match (refresh_due(&token), &token.refresh_token) {
        (Some(due), Some(refresh_token)) if due.is_zero() => {
            match refresh(cfg, client.clone(), refresh_token).await {
                Ok(new) => {
                    if let Err(e) = save_token(&cfg.token_store, name, &new) {
                        tracing::warn!(backend = name, "refreshed token not stored: {e}");
                    }
                    tracing::info!(backend = name, "OAuth token refreshed");
                    new
                }
                Err(e) => {
                    tracing::warn!(backend = name, "OAuth token refresh failed: {e}");
                    if let Err(e) = backend.set_oauth_token(&token.access_token) {
                        tracing::warn!(backend = name, "{e}");
                    }
                    return AGAIN;
                }
            }
        }
        (_, None) if expired(&token) => {
            tracing::warn!(backend = name, "the stored OAuth token has expired and there is no refresh token; run `continuum auth login --backend {name}`");
            if let Err(e) = backend.set_oauth_token(&token.access_token) {
                tracing::warn!(backend = name, "{e}");
            }
            return AGAIN;
        }
        _ => token,
    };
    if let Err(e) = backend.set_oauth_token(&token.access_token) {
        tracing::warn!(backend = name, "{e}");
    }
    refresh_due(&token).map_or(AGAIN, |d| d.clamp(Duration::from_millis(200), AGAIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_keeps_each_backend_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("continuum-oauth-{}", fastrand::u64(..)));
        let path = dir.join("nested/tokens.json");
        let t = |a: &str| StoredToken {
            access_token: a.into(),
            refresh_token: Some("r".into()),
            expires_at: Some(unix_now() + 3600),
            obtained_at: unix_now(),
        };
        save_token(&path, "one", &t("a1")).unwrap();
        save_token(&path, "two", &t("a2")).unwrap();
        assert_eq!(
            load_token(&path, "one").unwrap().unwrap().access_token,
            "a1"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(remove_token(&path, "one").unwrap());
        assert!(!remove_token(&path, "one").unwrap());
        assert_eq!(
            load_token(&path, "two").unwrap().unwrap().access_token,
            "a2"
        );
        assert!(refresh_due(&t("x")).unwrap() > Duration::from_secs(3000));
        let _ = std::fs::remove_dir_all(dir);
    }
}
