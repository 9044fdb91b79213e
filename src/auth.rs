//! API keys at run time: a presented key (`Authorization: Bearer`, or `x-api-key` from
//! Anthropic clients) is hashed and compared in constant time against every configured
//! key's SHA-256, then checked for `enabled`, `expires_at`, scope and its own rate limit.
//! Keys themselves are never kept, logged or shown; a key is named by its `id`.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use crate::config::access::{ApiKeyConfig, ApiKeysConfig, AuthMode, Scope};
use crate::ratelimit::{Decision, Gcra};

/// A configured key, ready for requests.
#[derive(Debug)]
pub struct ApiKey {
    /// Its configuration.
    pub config: ApiKeyConfig,
    /// Its id, shared (rate-limit subjects).
    pub id: Arc<str>,
    /// Its own rate limit, when it has one.
    limiter: Option<Gcra>,
}

impl ApiKey {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Whether the key may use `model` (its `allowed_models` globs; none: every model).
    pub fn allows_model(&self, model: &str) -> bool {
        self.config.allowed_models.is_empty()
            || self
                .config
                .allowed_models
                .iter()
                .any(|g| glob_match(g, model))
    }

    /// Whether the key holds `scope`.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.config.scopes.contains(&scope)
    }
}

/// Who is calling: the key a request authenticated with (absent for anonymous callers in
/// permissive mode). Handlers read it from the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<ApiKey>);

impl Caller {
    /// Who owns what this caller stores (responses, files): the key's `user_id`, else its id.
    pub fn owner(&self) -> &str {
        self.0.config.user_id.as_deref().unwrap_or(self.0.id())
    }
}

/// The owner of what a request stores: its key's (see [`Caller::owner`]), or `""` for
/// requests without an API key.
pub fn owner_of(extensions: &http::Extensions) -> String {
    extensions
        .get::<Caller>()
        .map_or_else(String::new, |c| c.owner().to_string())
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No valid key (401), with the reason.
    Unauthenticated(&'static str),
    /// The key may not do this (403), with the reason.
    Forbidden(String),
    /// The key's own rate limit (429).
    RateLimited(Decision),
}

/// What an endpoint needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Listing models: `read`.
    Read,
    /// Chat inference: `write` or `chat`.
    Chat,
    /// Embeddings: `write` or `embeddings`.
    Embeddings,
    /// Images: `write` or `images`.
    Images,
    /// The admin API (`admin.auth.method: api_key`): `admin`.
    Admin,
    /// The Files API: the scope `files.auth.required_scope` names (when its method is
    /// `api_key`), else any key.
    Files,
    /// A key holding this scope.
    Scope(crate::config::access::Scope),
    /// Any valid key.
    Any,
}

/// The configured keys.
#[derive(Debug)]
pub struct Keys {
    mode: AuthMode,
    keys: Vec<(/* digest */ [u8; 32], Arc<ApiKey>)>,
}

impl Keys {
    /// The keys of an `api_keys:` section; `None` when the section is absent (no
    /// authentication at all).
    /// `local_limits`: keys' own rate limits are kept here (false when the rate limits
    /// keep them in Redis).
    pub fn from_config(c: &ApiKeysConfig, epoch: Instant, local_limits: bool) -> Option<Keys> {
        c.enabled.then(|| Keys {
            mode: c.mode,
            keys: c
                .keys
                .iter()
                .map(|k| {
                    let key = ApiKey {
                        id: Arc::from(k.id.as_str()),
                        config: k.clone(),
                        limiter: k
                            .rate_limit
                            .filter(|_| local_limits)
                            .map(|r| Gcra::new(r, epoch)),
                    };
                    (k.digest, Arc::new(key))
                })
                .collect(),
        })
    }

    /// The key presented in `headers`, checked for `need` at `now`. `Ok(None)`: an
    /// anonymous caller that permissive mode lets through.
    pub fn check(
        &self,
        headers: &HeaderMap,
        need: Need,
        now: Instant,
    ) -> Result<Option<Arc<ApiKey>>, Refusal> {
        let Some(presented) = presented_key(headers) else {
            return match self.mode {
                AuthMode::Permissive => Ok(None),
                AuthMode::Blocking => Err(Refusal::Unauthenticated(
                    "an API key is required (Authorization: Bearer KEY, or x-api-key)",
                )),
            };
        };
        let key = self
            .find(presented)
            .ok_or(Refusal::Unauthenticated("invalid API key"))?;
        if !key.config.enabled {
            return Err(Refusal::Unauthenticated("this API key is disabled"));
        }
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if key.config.expires_at.is_some_and(|t| unix_now >= t) {
            return Err(Refusal::Unauthenticated("this API key has expired"));
        }
        let allowed = match need {
            Need::Read => key.has_scope(Scope::Read),
            Need::Chat => key.has_scope(Scope::Write) || key.has_scope(Scope::Chat),
            Need::Embeddings => key.has_scope(Scope::Write) || key.has_scope(Scope::Embeddings),
            Need::Images => key.has_scope(Scope::Write) || key.has_scope(Scope::Images),
            Need::Admin => key.has_scope(Scope::Admin),
            Need::Files => key.has_scope(Scope::Files),
            Need::Scope(s) => key.has_scope(s),
            Need::Any => true,
        };
        if !allowed {
            let what = match need {
                Need::Read => "the 'read' scope",
                Need::Chat => "the 'write' or 'chat' scope",
                Need::Embeddings => "the 'write' or 'embeddings' scope",
                Need::Images => "the 'write' or 'images' scope",
                Need::Admin => "the 'admin' scope",
                Need::Files => "the 'files' scope",
                Need::Scope(s) => {
                    return Err(Refusal::Forbidden(format!(
                        "API key '{}' lacks the '{}' scope",
                        key.id(),
                        s.as_str()
                    )))
                }
                Need::Any => "nothing",
            };
            return Err(Refusal::Forbidden(format!(
                "API key '{}' lacks {what}",
                key.id()
            )));
        }
        if let Some(limiter) = &key.limiter {
            let d = limiter.check(now);
            if !d.allowed {
                return Err(Refusal::RateLimited(d));
            }
        }
        Ok(Some(key))
    }

    /// The key whose digest matches, compared in constant time against every key so the
    /// time taken says nothing about which bytes matched.
    fn find(&self, presented: &[u8]) -> Option<Arc<ApiKey>> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for (d, key) in &self.keys {
            if constant_time_eq(d, &digest) {
                found = Some(key.clone());
            }
        }
        found
    }
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths (secrets are
/// compared with this, so timing says nothing about which bytes matched).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The key in `Authorization: Bearer …`, else `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.as_bytes();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ") {
            return Some(v[7..].trim_ascii()).filter(|k| !k.is_empty());
        }
    }
    headers
        .get("x-api-key")
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|k| !k.is_empty())
}

/// `*` matches any run of characters, `?` any one; everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("gpt-*", "gpt-4o"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("claude-?-5", "claude-4-5"));
        assert!(glob_match("*mini*", "o4-mini-high"));
        assert!(!glob_match("gpt-*", "claude"));
        assert!(!glob_match("gpt-4", "gpt-4o"));
    }

    #[test]
    fn keys_come_from_either_header() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer  sk-one ".parse().unwrap());
        assert_eq!(presented_key(&h), Some(&b"sk-one"[..]));
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk-two".parse().unwrap());
        assert_eq!(presented_key(&h), Some(&b"sk-two"[..]));
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }
}
