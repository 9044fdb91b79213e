//! Claude Code's per-request billing block: recognised, and left out of what is hashed,
//! cached or forwarded.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

/// How Claude Code's per-request attribution block begins, e.g.
/// `x-anthropic-billing-header: cc_version=2.1.37.fbe; cc_entrypoint=cli; cch=a112b;`
/// (`cch` changes on every request and is absent in some versions).
const BILLING_PREFIX: &str = "x-anthropic-billing-header:";

/// `text` without a leading billing-header line; None when nothing else is left.
pub(super) fn without_billing_line(text: &str) -> Option<&str> {
    let Some(rest) = text.strip_prefix(BILLING_PREFIX) else {
        return Some(text);
    };
    let rest = rest.split_once('\n').map_or("", |(_, after)| after);
    (!rest.trim().is_empty()).then_some(rest)
}

/// Whether a system text block is Claude Code's billing block
/// (`x-anthropic-billing-header: cc_version=…; cc_entrypoint=…; cch=…;`), which differs on
/// every request and so belongs in no cache or hashing key.
pub fn is_billing_block(text: &str) -> bool {
    without_billing_line(text).is_none()
}

/// The members of a JSON object in order, each value as its original text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Collect<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Collect<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'a RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Collect(PhantomData))
    }
}

/// A `system` value (JSON text) without the billing block: None when there is none,
/// `Some(None)` when nothing else is left, else the new value's JSON text (blocks kept
/// byte for byte).
fn system_without_billing(system: &RawValue) -> Option<Option<String>> {
    if let Ok(text) = serde_json::from_str::<String>(system.get()) {
        if !text.starts_with(BILLING_PREFIX) {
            return None;
        }
        return Some(without_billing_line(&text).map(|rest| Value::from(rest).to_string()));
    }
    let blocks: Vec<&RawValue> = serde_json::from_str(system.get()).ok()?;
    let mut kept = Vec::with_capacity(blocks.len());
    let mut changed = false;
    for raw in blocks {
        let mut block: Value = serde_json::from_str(raw.get()).ok()?;
        let text = match (block["type"].as_str(), block["text"].as_str()) {
            (Some("text"), Some(t)) if t.starts_with(BILLING_PREFIX) => t,
            _ => {
                kept.push(raw.get().to_string());
                continue;
            }
        };
        changed = true;
        if let Some(rest) = without_billing_line(text).map(str::to_string) {
            block["text"] = rest.into();
            kept.push(block.to_string());
        }
    }
    if !changed {
        return None;
    }
    Some((!kept.is_empty()).then(|| format!("[{}]", kept.join(","))))
}

/// An Anthropic `system` value (JSON text) as the prompt-cache strategies hash it: without
/// Claude Code's billing block, which changes on every request.
pub fn system_for_hashing(system: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let cut = std::str::from_utf8(system)
        .ok()
        .filter(|s| s.contains(BILLING_PREFIX))
        .and_then(|s| serde_json::from_str::<&RawValue>(s).ok())
        .and_then(system_without_billing);
    match cut {
        Some(rest) => std::borrow::Cow::Owned(rest.unwrap_or_default().into_bytes()),
        None => std::borrow::Cow::Borrowed(system),
    }
}

/// An Anthropic request body without Claude Code's billing block in `system` (a `system`
/// made only of it is removed); None when there is none or the body is no JSON object.
/// Every other member keeps its exact text.
pub fn strip_billing_header(body: &[u8]) -> Option<Bytes> {
    let Members(members) = serde_json::from_slice(body).ok()?;
    let mut changed = false;
    let mut out = Vec::with_capacity(body.len());
    out.push(b'{');
    for (key, value) in &members {
        let edited = match key.as_str() {
            "system" => system_without_billing(value),
            _ => None,
        };
        let value = match edited {
            None => Cow::Borrowed(value.get()),
            Some(None) => {
                changed = true;
                continue;
            }
            Some(Some(v)) => {
                changed = true;
                Cow::Owned(v)
            }
        };
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(Value::from(key.as_str()).to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
    }
    out.push(b'}');
    changed.then(|| Bytes::from(out))
}
