//! Rate-limit buckets in Redis, so several router instances share one limit. Each decision
//! is one atomic Lua script (GCRA on Redis's own clock) sent with `EVAL` (see
//! `crate::redis`). A Redis that cannot be reached in time answers `Err`; the caller fails
//! open or closed as configured.

use std::time::Duration;

use crate::redis::{RedisClient, Reply};

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
pub type StoreError = crate::redis::RedisError;

/// Rate-limit buckets in one Redis, under a key prefix.
#[derive(Debug)]
pub struct RedisStore {
    client: RedisClient,
    prefix: String,
}

impl RedisStore {
    /// A store for `redis://host:port` with keys under `prefix`, for `workers` worker
    /// threads (a connection slot each).
    pub fn new(url: &str, prefix: &str, timeout: Duration, workers: usize) -> Result<Self, String> {
        Ok(RedisStore {
            client: RedisClient::new(url, timeout, workers + 1)?,
            prefix: prefix.to_string(),
        })
    }

    /// Decides one request against the bucket `key` at `rate`, on worker `shard`'s
    /// connection.
    pub async fn check(&self, shard: usize, key: &str, rate: Rate) -> Result<Decision, StoreError> {
        let interval_us = format!("{:.0}", (1e6 / rate.per_second).max(1.0));
        let full_key = format!("{}{}", self.prefix, key);
        let burst = rate.burst.to_string();
        let args: [&[u8]; 6] = [
            b"EVAL",
            SCRIPT.as_bytes(),
            b"1",
            full_key.as_bytes(),
            interval_us.as_bytes(),
            burst.as_bytes(),
        ];
        let reply = self.client.call(shard, &args).await?;
        let values = match reply {
            Reply::Array(items) if items.len() == 4 => items
                .iter()
                .map(|v| match v {
                    Reply::Int(n) => Ok(*n),
                    other => Err(StoreError::Refused(format!("unexpected value {other:?}"))),
                })
                .collect::<Result<Vec<i64>, _>>()?,
            other => {
                return Err(StoreError::Refused(format!(
                    "the rate-limit script answered {other:?}"
                )))
            }
        };
        let (allowed, remaining, reset_us, retry_us) = (values[0], values[1], values[2], values[3]);
        Ok(Decision {
            allowed: allowed == 1,
            limit: rate.burst,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            reset: Duration::from_micros(reset_us.max(0) as u64),
            retry_after: Duration::from_micros(retry_us.max(0) as u64),
        })
    }
}
