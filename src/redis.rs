//! A small Redis (RESP2) client: one connection per worker thread, opened on first use
//! (a connection belongs to the runtime that made it), every call bounded by a timeout.
//! Shared rate limits and the response cache use it; a connection that failed or timed
//! out is dropped so a late reply can never answer the next call.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Connecting, writing or reading failed or took too long.
    #[error("redis at {addr} is unreachable: {reason}")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// Redis answered with an error, or with something this client does not expect.
    #[error("redis refused: {0}")]
    Refused(String),
}

/// A reply.
#[derive(Debug, PartialEq)]
pub enum Reply {
    /// `+OK` and friends.
    Status(String),
    /// `:n`.
    Int(i64),
    /// `$n` (`None`: the null bulk string, e.g. a missing key).
    Bulk(Option<Bytes>),
    /// `*n`.
    Array(Vec<Reply>),
}

/// Replies bigger than this are refused rather than buffered.
const MAX_BULK: usize = 64 << 20;

/// A Redis server's address and one connection per worker.
#[derive(Debug)]
pub struct RedisClient {
    addr: String,
    timeout: Duration,
    conns: Box<[Mutex<Option<BufReader<TcpStream>>>]>,
}

impl RedisClient {
    /// A client for `redis://host:port` with `slots` connection slots (one per worker).
    pub fn new(url: &str, timeout: Duration, slots: usize) -> Result<RedisClient, String> {
        Ok(RedisClient {
            addr: parse_url(url)?,
            timeout,
            conns: (0..slots.max(1)).map(|_| Mutex::new(None)).collect(),
        })
    }

    fn unreachable(&self, reason: impl Into<String>) -> RedisError {
        RedisError::Unreachable {
            addr: self.addr.clone(),
            reason: reason.into(),
        }
    }

    /// Sends one command on slot `shard`'s connection and reads its reply.
    pub async fn call(&self, shard: usize, args: &[&[u8]]) -> Result<Reply, RedisError> {
        let slot = &self.conns[shard % self.conns.len()];
        let mut conn = slot.lock().await;
        match tokio::time::timeout(self.timeout, self.exchange(&mut conn, args)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => {
                *conn = None;
                Err(e)
            }
            Err(_) => {
                *conn = None;
                Err(self.unreachable(format!("no answer within {:?}", self.timeout)))
            }
        }
    }

    async fn exchange(
        &self,
        conn: &mut Option<BufReader<TcpStream>>,
        args: &[&[u8]],
    ) -> Result<Reply, RedisError> {
        if conn.is_none() {
            let stream = TcpStream::connect(&self.addr)
                .await
                .map_err(|e| self.unreachable(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            *conn = Some(BufReader::new(stream));
        }
        let Some(stream) = conn.as_mut() else {
            return Err(self.unreachable("no connection"));
        };
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        let io = |e: std::io::Error| self.unreachable(e.to_string());
        stream.get_mut().write_all(&out).await.map_err(io)?;
        let header = read_line(stream).await.map_err(io)?;
        match read_head(stream, &header).await.map_err(io)? {
            Head::Value(v) => Ok(v),
            Head::Error(e) => Err(RedisError::Refused(e)),
            Head::Array(n) => {
                // One level of nesting is all the router's commands produce.
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    let line = read_line(stream).await.map_err(io)?;
                    match read_head(stream, &line).await.map_err(io)? {
                        Head::Value(v) => values.push(v),
                        Head::Error(e) => return Err(RedisError::Refused(e)),
                        Head::Array(_) => {
                            return Err(RedisError::Refused(
                                "nested arrays are not expected".into(),
                            ))
                        }
                    }
                }
                Ok(Reply::Array(values))
            }
        }
    }
}

/// What a reply's first line says.
enum Head {
    /// A whole value.
    Value(Reply),
    /// An array of this many items, which follow.
    Array(usize),
    /// An error reply, or one this client does not understand.
    Error(String),
}

/// Reads a reply's value from its first line (and, for a bulk string, its bytes).
async fn read_head(stream: &mut BufReader<TcpStream>, line: &str) -> std::io::Result<Head> {
    let bad = || Ok(Head::Error(format!("unexpected reply '{line}'")));
    let (kind, rest) = match (line.as_bytes().first(), line.get(1..)) {
        (Some(k), Some(rest)) => (*k, rest),
        _ => return bad(),
    };
    Ok(Head::Value(match kind {
        b'+' => Reply::Status(rest.to_string()),
        b'-' => return Ok(Head::Error(rest.to_string())),
        b':' => match rest.trim().parse() {
            Ok(n) => Reply::Int(n),
            Err(_) => return bad(),
        },
        b'$' => match rest.trim().parse::<i64>() {
            Ok(-1) => Reply::Bulk(None),
            Ok(n) if n >= 0 && (n as usize) <= MAX_BULK => {
                let mut buf = vec![0u8; n as usize + 2];
                stream.read_exact(&mut buf).await?;
                buf.truncate(n as usize);
                Reply::Bulk(Some(Bytes::from(buf)))
            }
            _ => return bad(),
        },
        b'*' => match rest.trim().parse::<i64>() {
            Ok(-1) => Reply::Bulk(None),
            Ok(n) if (0..=1024).contains(&n) => return Ok(Head::Array(n as usize)),
            _ => return bad(),
        },
        _ => return bad(),
    }))
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
    let (host, db) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(db, "" | "0") {
        return Err(format!(
            "'{url}': selecting database {db} is not supported yet; use database 0 and a key_prefix"
        ));
    }
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
        assert!(parse_url("redis://cache/2").is_err());
        assert!(parse_url("redis://").is_err());
    }
}
