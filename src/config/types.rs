//! Value types of the configuration file that need parsing beyond what YAML/TOML give:
//! durations with units, byte sizes, bind addresses.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Parses a duration written with a unit: `"250ms"`, `"30s"`, `"5m"`, `"24h"`, `"7d"`
/// (a decimal number is allowed: `"1.5s"`). Bare numbers are refused because their unit
/// would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("'{text}' has no unit; write it with one, e.g. \"{t}s\" or \"{t}ms\"")
        })?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as \"250ms\", \"30s\" or \"5m\""))?;
    let seconds_per_unit = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}' (use ms, s, m, h or d)"
            ))
        }
    };
    let secs = value * seconds_per_unit;
    if !secs.is_finite() || secs > 1e12 {
        return Err(format!("'{text}' is too large a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a byte size: `"32MB"`, `"512KB"`, `"1GiB"` or a plain number of bytes.
/// `KB`/`MB`/`GB` are binary (1024-based), like `KiB`/`MiB`/`GiB`, as users of body-size
/// limits in nginx and friends expect.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size such as \"32MB\" or \"512KB\""))?;
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        other => {
            return Err(format!(
                "'{text}' has an unknown unit '{other}' (use B, KB, MB or GB)"
            ))
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// Where the router listens: a TCP address or a Unix domain socket path (`unix:/path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    /// `host:port` on TCP.
    Tcp(SocketAddr),
    /// A filesystem path for a Unix domain socket.
    Unix(PathBuf),
}

impl BindAddr {
    /// Parses `"127.0.0.1:8080"`, `"[::1]:8080"`, `"localhost:8080"` or `"unix:/run/x.sock"`.
    pub fn parse(text: &str) -> Result<BindAddr, String> {
        let t = text.trim();
        if let Some(path) = t.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!("'{text}' names no socket path after 'unix:'"));
            }
            return Ok(BindAddr::Unix(PathBuf::from(path)));
        }
        if let Ok(addr) = t.parse::<SocketAddr>() {
            return Ok(BindAddr::Tcp(addr));
        }
        if let Some(port) = t.strip_prefix("localhost:") {
            if let Ok(port) = port.parse::<u16>() {
                return Ok(BindAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], port))));
            }
        }
        Err(format!(
            "'{text}' is not a bind address; use \"host:port\" (e.g. \"127.0.0.1:8080\") or \"unix:/path/to.sock\""
        ))
    }
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp(a) => write!(f, "{a}"),
            BindAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A secret string (an API key): never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `scheme://user:password@host/...` → `scheme://user:***@host/...` — for
/// anything shown or logged.
pub fn redact_url(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            redact_url("http://user:pw@host:8000/v1"),
            "http://user:***@host:8000/v1"
        );
        assert_eq!(redact_url("http://host/a@b"), "http://host/a@b");
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("30 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("32MB").unwrap(), 32 << 20);
        assert_eq!(parse_byte_size("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_byte_size("100").unwrap(), 100);
        assert!(parse_byte_size("32XB").is_err());
        assert!(parse_byte_size("99999999999999GB").is_err());
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(
            BindAddr::parse("127.0.0.1:8080").unwrap(),
            BindAddr::Tcp("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            BindAddr::parse("unix:/tmp/x.sock").unwrap(),
            BindAddr::Unix("/tmp/x.sock".into())
        );
        assert!(BindAddr::parse("unix:").is_err());
        assert!(BindAddr::parse("nonsense").is_err());
    }

    #[test]
    fn secrets_do_not_debug_print() {
        assert_eq!(format!("{:?}", Secret::new("sk-123")), "Secret(***)");
    }
}
