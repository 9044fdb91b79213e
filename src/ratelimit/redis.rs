//! Rate-limit buckets in Redis, so several router instances share one limit. Each decision
//! is one atomic Lua script (GCRA on Redis's own clock) sent with `EVAL` over a small RESP
//! connection that each worker thread opens on first use (a connection belongs to the
//! runtime that made it). A Redis that cannot be reached in time answers `Err`; the caller
//! fails open or closed as configured.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use super::Decision;
use crate::config::access::Rate;

/// GCRA in one step, on Redis's clock (microseconds). Returns
/// `{allowed, remaining, reset_us, retry_after_us}`.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local window = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > window then
  return {0, 0, tat - now, ahead - window}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(ahead / 1000) + 1)
return {1, math.floor((window - ahead) / interval), ahead, 0}
";

/// Why Redis gave no decision.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting, writing or reading failed or took too long.
    #[error("redis at {addr} is unreachable: {reason}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// Redis answered with an error.
    #[error("redis refused the rate-limit script: {0}")]
    Refused(String),
}

/// A Redis server's address and one connection per worker.
#[derive(Debug)]
pub struct RedisStore {
    addr: String,
    prefix: String,
    timeout: Duration,
    conns: Box<[Mutex<Option<BufReader<TcpStream>>>]>,
}

impl RedisStore {
    /// A store for `redis://host:port` with keys under `prefix`, for `workers` worker
    /// threads (a connection slot each).
    pub fn new(url: &str, prefix: &str, timeout: Duration, workers: usize) -> Result<Self, String> {
        let addr = parse_url(url)?;
        Ok(RedisStore {
            addr,
            prefix: prefix.to_string(),
            timeout,
            conns: (0..workers.max(1) + 1).map(|_| Mutex::new(None)).collect(),
        })
    }

    /// Decides one request against the bucket `key` at `rate`, on worker `shard`'s
    /// connection.
    pub async fn check(&self, shard: usize, key: &str, rate: Rate) -> Result<Decision, StoreError> {
        let interval_us = (1e6 / rate.per_second).max(1.0);
        let full_key = format!("{}{}", self.prefix, key);
        let args = [
            "EVAL",
            SCRIPT,
            "1",
            &full_key,
            &format!("{interval_us:.0}"),
            &rate.burst.to_string(),
        ];
        let slot = &self.conns[shard % self.conns.len()];
        let mut conn = slot.lock().await;
        let reply = tokio::time::timeout(self.timeout, self.call(&mut conn, &args)).await;
        let reply = match reply {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                *conn = None;
                return Err(e);
            }
            Err(_) => {
                // A late reply would arrive on the next call: start over.
                *conn = None;
                return Err(self.unreachable(format!("no answer within {:?}", self.timeout)));
            }
        };
        let [allowed, remaining, reset_us, retry_us] = reply;
        Ok(Decision {
            allowed: allowed == 1,
            limit: rate.burst,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            reset: Duration::from_micros(reset_us.max(0) as u64),
            retry_after: Duration::from_micros(retry_us.max(0) as u64),
        })
    }

    fn unreachable(&self, reason: String) -> StoreError {
        StoreError::Unreachable {
            addr: self.addr.clone(),
            reason,
        }
    }

    async fn call(
        &self,
        conn: &mut Option<BufReader<TcpStream>>,
        args: &[&str],
    ) -> Result<[i64; 4], StoreError> {
        if conn.is_none() {
            let stream = TcpStream::connect(&self.addr)
                .await
                .map_err(|e| self.unreachable(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            *conn = Some(BufReader::new(stream));
        }
        let Some(stream) = conn.as_mut() else {
            return Err(self.unreachable("no connection".into()));
        };
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let io = |e: std::io::Error| self.unreachable(e.to_string());
        stream.get_mut().write_all(&out).await.map_err(io)?;
        let header = read_line(stream).await.map_err(io)?;
        match header.as_bytes().first() {
            Some(b'*') if header[1..].trim() == "4" => {}
            Some(b'-') => return Err(StoreError::Refused(header[1..].trim().to_string())),
            _ => return Err(StoreError::Refused(format!("unexpected reply '{header}'"))),
        }
        let mut values = [0i64; 4];
        for v in &mut values {
            let line = read_line(stream).await.map_err(io)?;
            *v = line
                .strip_prefix(':')
                .and_then(|n| n.trim().parse().ok())
                .ok_or_else(|| StoreError::Refused(format!("unexpected value '{line}'")))?;
        }
        Ok(values)
    }
}

async fn read_line(stream: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    let n = (&mut *stream).take(64 * 1024).read_line(&mut line).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "redis closed the connection",
        ));
    }
    Ok(line.trim_end().to_string())
}

/// `redis://host:port` (or `host:port`) → `host:port`; the port defaults to 6379.
pub fn parse_url(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("redis://").unwrap_or(url);
    if rest.contains('@') {
        return Err(format!(
            "'{url}': Redis passwords in the URL are not supported yet"
        ));
    }
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("'{url}' has no host (redis://host:port)"));
    }
    Ok(if host.contains(':') && !host.ends_with(']') {
        host.to_string()
    } else {
        format!("{host}:6379")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("redis://127.0.0.1:6380").unwrap(),
            "127.0.0.1:6380"
        );
        assert_eq!(parse_url("redis://cache/0").unwrap(), "cache:6379");
        assert!(parse_url("redis://user:pw@host").is_err());
        assert!(parse_url("redis://").is_err());
    }
}
