//! Sparse (SPLADE-style) embeddings, served by Hugging Face text-embeddings-inference (TEI)
//! at `POST /embed_sparse`: `{"inputs": string | [string], "truncate", "truncation_direction",
//! "prompt_name"}` answered with one list of `{"index": u32, "value": f32}` per input.
//!
//! The router takes two client shapes: TEI's own (`POST /embed_sparse`, passed to a TEI
//! backend as it is once [`check_tei_request`] accepts it) and `POST /v1/sparse-embeddings`.
//! The original Continuum Router documents that endpoint's name but not its body, so the
//! router uses an OpenAI-like envelope (its own choice, not a copy of the original):
//!
//! ```json
//! {"model": "...", "input": "text" | ["text", ...], "truncate"?, "truncation_direction"?, "prompt_name"?}
//! {"object": "list", "model": "...", "usage": {"prompt_tokens": 0, "total_tokens": 0},
//!  "data": [{"object": "sparse_embedding", "index": 0, "indices": [1012, ...], "values": [0.99, ...]}]}
//! ```
//!
//! [`request_to_tei`] and [`reply_from_tei`] bring an envelope client to a TEI backend and
//! back; [`request_from_tei`] and [`reply_to_tei`] do the reverse, for a TEI-shaped client
//! whose backend speaks the envelope (another router). Values keep TEI's number text.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::input::{is_number, named, parse_reply, parse_request, to_bytes, Input};

/// The path of text-embeddings-inference's sparse embeddings endpoint.
pub const TEI_PATH: &str = "/embed_sparse";

/// Checks a TEI-shaped `/embed_sparse` request before it is passed on unchanged:
/// `inputs` strings or token-id lists (TEI takes both), the options of the right types.
pub fn check_tei_request(body: &[u8]) -> Result<(), String> {
    let wire: TeiRequestWire = parse_request(body)?;
    checked_input(wire.inputs, "inputs")?;
    Ok(())
}

/// The TEI `/embed_sparse` body for a `/v1/sparse-embeddings` request: `input` becomes
/// `inputs` (verbatim), `truncate`, `truncation_direction` and `prompt_name` are passed when
/// given; `model` only chose the backend and is dropped.
pub fn request_to_tei(body: &[u8]) -> Result<Bytes, String> {
    let wire: EnvelopeRequestWire = parse_request(body)?;
    let inputs = checked_input(wire.input, "input")?;
    Ok(to_bytes(&TeiRequest {
        inputs,
        truncate: wire.truncate,
        truncation_direction: wire.truncation_direction.as_deref(),
        prompt_name: wire.prompt_name.as_deref(),
    }))
}

/// The `/v1/sparse-embeddings` body for a TEI-shaped request, for a backend that speaks the
/// envelope: `inputs` becomes `input` (verbatim) beside `model`, the options are kept.
pub fn request_from_tei(body: &[u8], model: &str) -> Result<Bytes, String> {
    let wire: TeiRequestWire = parse_request(body)?;
    let input = checked_input(wire.inputs, "inputs")?;
    Ok(to_bytes(&EnvelopeRequest {
        model,
        input,
        truncate: wire.truncate,
        truncation_direction: wire.truncation_direction.as_deref(),
        prompt_name: wire.prompt_name.as_deref(),
    }))
}

/// The `/v1/sparse-embeddings` reply for TEI's `[[{"index", "value"}]]`, one `data` item per
/// input in TEI's order, as `model`. TEI's body reports no token counts, so `usage` is zero.
pub fn reply_from_tei(reply: &[u8], model: &str) -> Result<Bytes, String> {
    const WHAT: &str = "text-embeddings-inference reply";
    let vectors: Vec<Vec<TeiValueWire>> = parse_reply(reply, WHAT)?;
    let data = vectors
        .iter()
        .enumerate()
        .map(|(i, vector)| {
            let mut indices = Vec::with_capacity(vector.len());
            let mut values = Vec::with_capacity(vector.len());
            for (j, v) in vector.iter().enumerate() {
                indices.push(
                    v.index
                        .and_then(|x| serde_json::from_str::<u32>(x.get()).ok())
                        .ok_or_else(|| {
                            format!("{WHAT}: [{i}][{j}].index must be a non-negative integer")
                        })?,
                );
                values.push(
                    v.value
                        .filter(|x| is_number(x))
                        .ok_or_else(|| format!("{WHAT}: [{i}][{j}].value must be a number"))?,
                );
            }
            Ok(SparseItem {
                object: "sparse_embedding",
                index: i,
                indices,
                values,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(to_bytes(&EnvelopeReply {
        object: "list",
        data,
        model,
        usage: Usage {
            prompt_tokens: 0,
            total_tokens: 0,
        },
    }))
}

/// TEI's `[[{"index", "value"}]]` for a `/v1/sparse-embeddings` reply, vectors in `data`'s
/// `index` order (position order where an item has none), values' number text kept.
pub fn reply_to_tei(reply: &[u8]) -> Result<Bytes, String> {
    const WHAT: &str = "sparse embeddings reply";
    let wire: EnvelopeReplyWire = parse_reply(reply, WHAT)?;
    let items = wire.data.ok_or_else(|| format!("{WHAT} has no data"))?;
    let mut vectors = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let order = match item.index {
                None => i,
                Some(x) => serde_json::from_str::<usize>(x.get()).map_err(|_| {
                    format!("{WHAT}: data[{i}].index must be a non-negative integer")
                })?,
            };
            let indices: Vec<u32> = item
                .indices
                .and_then(|x| serde_json::from_str(x.get()).ok())
                .ok_or_else(|| {
                    format!("{WHAT}: data[{i}].indices must be an array of non-negative integers")
                })?;
            let values: Vec<&RawValue> = item
                .values
                .and_then(|x| serde_json::from_str(x.get()).ok())
                .filter(|v: &Vec<&RawValue>| v.iter().all(|x| is_number(x)))
                .ok_or_else(|| format!("{WHAT}: data[{i}].values must be an array of numbers"))?;
            if indices.len() != values.len() {
                return Err(format!(
                    "{WHAT}: data[{i}].indices and data[{i}].values differ in length"
                ));
            }
            let vector: Vec<TeiValue> = indices
                .into_iter()
                .zip(values)
                .map(|(index, value)| TeiValue { index, value })
                .collect();
            Ok((order, vector))
        })
        .collect::<Result<Vec<_>, String>>()?;
    vectors.sort_by_key(|(order, _)| *order);
    let vectors: Vec<Vec<TeiValue>> = vectors.into_iter().map(|(_, v)| v).collect();
    Ok(to_bytes(&vectors))
}

// ---------------------------------------------------------------------------------------
// Wire types

/// `input`/`inputs` checked as strings or token-id lists, returned verbatim.
fn checked_input<'a>(raw: Option<&'a RawValue>, field: &str) -> Result<&'a RawValue, String> {
    let raw = raw.ok_or_else(|| format!("{field} is required"))?;
    let input: Input = serde_json::from_str(raw.get()).map_err(|e| e.to_string())?;
    input.check(field, true, "text-embeddings-inference")?;
    Ok(raw)
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct EnvelopeRequestWire<'a> {
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "truncate")]
    truncate: Option<bool>,
    #[serde(default, deserialize_with = "truncation_direction")]
    truncation_direction: Option<String>,
    #[serde(default, deserialize_with = "prompt_name")]
    prompt_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct TeiRequestWire<'a> {
    #[serde(borrow, default)]
    inputs: Option<&'a RawValue>,
    #[serde(default, deserialize_with = "truncate")]
    truncate: Option<bool>,
    #[serde(default, deserialize_with = "truncation_direction")]
    truncation_direction: Option<String>,
    #[serde(default, deserialize_with = "prompt_name")]
    prompt_name: Option<String>,
}

fn truncate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    named(d, "truncate must be a boolean")
}

/// TEI's `truncation_direction`, `left` or `right` (its OpenAPI spells them `Left`/`Right`
/// and defaults to `right`): the case is the client's, passed on as written.
fn truncation_direction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    const MESSAGE: &str = "truncation_direction must be \"left\" or \"right\"";
    let direction: Option<String> = named(d, MESSAGE)?;
    match direction {
        Some(s) if !s.eq_ignore_ascii_case("left") && !s.eq_ignore_ascii_case("right") => {
            Err(serde::de::Error::custom(MESSAGE))
        }
        other => Ok(other),
    }
}

fn prompt_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    named(d, "prompt_name must be a string")
}

#[derive(Serialize)]
struct TeiRequest<'a> {
    inputs: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncation_direction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_name: Option<&'a str>,
}

#[derive(Serialize)]
struct EnvelopeRequest<'a> {
    model: &'a str,
    input: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncation_direction: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_name: Option<&'a str>,
}

#[derive(Deserialize)]
struct TeiValueWire<'a> {
    #[serde(borrow, default)]
    index: Option<&'a RawValue>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct TeiValue<'a> {
    index: u32,
    value: &'a RawValue,
}

#[derive(Serialize)]
struct EnvelopeReply<'a> {
    object: &'static str,
    data: Vec<SparseItem<'a>>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct SparseItem<'a> {
    object: &'static str,
    index: usize,
    indices: Vec<u32>,
    values: Vec<&'a RawValue>,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[derive(Deserialize)]
struct EnvelopeReplyWire<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<EnvelopeItemWire<'a>>>,
}

#[derive(Deserialize)]
struct EnvelopeItemWire<'a> {
    #[serde(borrow, default)]
    index: Option<&'a RawValue>,
    #[serde(borrow, default)]
    indices: Option<&'a RawValue>,
    #[serde(borrow, default)]
    values: Option<&'a RawValue>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn value(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    const MODEL: &str = "naver/efficient-splade-VI-BT-large-query";
    const ENVELOPE_REQUEST: &str =
        include_str!("../../tests/fixtures/sparse/envelope_request.json");
    const TEI_REQUEST: &str = include_str!("../../tests/fixtures/sparse/tei_request.json");
    const TEI_REPLY: &str = include_str!("../../tests/fixtures/sparse/tei_reply.json");
    const ENVELOPE_REPLY: &str = include_str!("../../tests/fixtures/sparse/envelope_reply.json");

    #[test]
    fn envelope_client_reaches_tei_and_gets_its_shape_back() {
        let body = request_to_tei(ENVELOPE_REQUEST.as_bytes()).unwrap();
        assert_eq!(value(&body), fixture(TEI_REQUEST));
        let reply = reply_from_tei(TEI_REPLY.as_bytes(), MODEL).unwrap();
        assert_eq!(value(&reply), fixture(ENVELOPE_REPLY));
        // TEI's number text is kept digit for digit.
        assert!(std::str::from_utf8(&reply).unwrap().contains("10.9970703"));
    }

    #[test]
    fn tei_client_reaches_an_envelope_backend_and_gets_its_shape_back() {
        check_tei_request(TEI_REQUEST.as_bytes()).unwrap();
        let body = request_from_tei(TEI_REQUEST.as_bytes(), MODEL).unwrap();
        assert_eq!(value(&body), fixture(ENVELOPE_REQUEST));
        let reply = reply_to_tei(ENVELOPE_REPLY.as_bytes()).unwrap();
        assert_eq!(value(&reply), fixture(TEI_REPLY));
    }

    #[test]
    fn single_inputs_and_token_ids_pass_verbatim() {
        let body = request_to_tei(br#"{"model":"m","input":"What is Deep Learning?"}"#).unwrap();
        assert_eq!(value(&body), json!({"inputs": "What is Deep Learning?"}));
        let body = request_to_tei(
            br#"{"model":"m","input":[[101,2054,102],[101,102]],"prompt_name":"query"}"#,
        )
        .unwrap();
        assert_eq!(
            value(&body),
            json!({"inputs": [[101, 2054, 102], [101, 102]], "prompt_name": "query"})
        );
        let body = request_from_tei(
            br#"{"inputs":[101,2054,102],"truncation_direction":"Left"}"#,
            "m",
        )
        .unwrap();
        assert_eq!(
            value(&body),
            json!({"model": "m", "input": [101, 2054, 102], "truncation_direction": "Left"})
        );
    }

    #[test]
    fn data_order_follows_index_not_position() {
        let reply = json!({"object": "list", "model": "m", "data": [
            {"object": "sparse_embedding", "index": 1, "indices": [7], "values": [0.5]},
            {"object": "sparse_embedding", "index": 0, "indices": [3, 9], "values": [1.25, 2]}
        ]});
        assert_eq!(
            value(&reply_to_tei(reply.to_string().as_bytes()).unwrap()),
            json!([[{"index": 3, "value": 1.25}, {"index": 9, "value": 2}], [{"index": 7, "value": 0.5}]])
        );
    }

    #[test]
    fn empty_vectors_are_kept() {
        // A query of stop words can have no active terms.
        let out = value(&reply_from_tei(b"[[]]", "m").unwrap());
        assert_eq!(out["data"][0]["indices"], json!([]));
        assert_eq!(out["data"][0]["values"], json!([]));
        assert_eq!(
            value(&reply_to_tei(out.to_string().as_bytes()).unwrap()),
            json!([[]])
        );
    }

    #[test]
    fn requests_are_refused_naming_the_field() {
        let e = |body: &str| request_to_tei(body.as_bytes()).unwrap_err();
        assert_eq!(e(r#"{"model":"m"}"#), "input is required");
        assert_eq!(e(r#"{"input":[]}"#), "input must not be an empty array");
        assert_eq!(e(r#"{"input":""}"#), "input must not be an empty string");
        assert_eq!(e(r#"{"input":["a",{"b":1}]}"#), "input[1] must be a string");
        assert_eq!(
            e(r#"{"input":{"b":1}}"#),
            "input must be a string or an array of strings"
        );
        assert_eq!(
            e(r#"{"input":"a","truncate":1}"#),
            "truncate must be a boolean"
        );
        assert_eq!(
            e(r#"{"input":"a","truncation_direction":"up"}"#),
            "truncation_direction must be \"left\" or \"right\""
        );
        assert_eq!(
            e(r#"{"input":"a","prompt_name":5}"#),
            "prompt_name must be a string"
        );
        assert_eq!(
            check_tei_request(br#"{"input":"a"}"#).unwrap_err(),
            "inputs is required"
        );
        assert_eq!(
            check_tei_request(br#"{"inputs":["a",""]}"#).unwrap_err(),
            "inputs[1] must not be an empty string"
        );
        assert_eq!(
            check_tei_request(b"[]").unwrap_err(),
            "request body must be a JSON object"
        );
    }

    #[test]
    fn bad_replies_name_the_field() {
        let t = |r: &str| reply_from_tei(r.as_bytes(), "m").unwrap_err();
        assert_eq!(
            t(r#"[[{"index":1,"value":0.5}],[{"index":-2,"value":0.5}]]"#),
            "text-embeddings-inference reply: [1][0].index must be a non-negative integer"
        );
        assert_eq!(
            t(r#"[[{"index":1,"value":"x"}]]"#),
            "text-embeddings-inference reply: [0][0].value must be a number"
        );
        assert!(t(r#"{"error":"Inference failed","error_type":"backend"}"#)
            .starts_with("text-embeddings-inference reply: invalid type: map"));
        let o = |r: &str| reply_to_tei(r.as_bytes()).unwrap_err();
        assert_eq!(
            o(r#"{"object":"list"}"#),
            "sparse embeddings reply has no data"
        );
        assert_eq!(
            o(r#"{"data":[{"indices":[1,2],"values":[0.5]}]}"#),
            "sparse embeddings reply: data[0].indices and data[0].values differ in length"
        );
        assert_eq!(
            o(r#"{"data":[{"indices":[1,-2],"values":[0.5,1]}]}"#),
            "sparse embeddings reply: data[0].indices must be an array of non-negative integers"
        );
        assert_eq!(
            o(r#"{"data":[{"indices":[1],"values":[null]}]}"#),
            "sparse embeddings reply: data[0].values must be an array of numbers"
        );
        assert_eq!(
            o(r#"{"data":[{"index":"0","indices":[1],"values":[1]}]}"#),
            "sparse embeddings reply: data[0].index must be a non-negative integer"
        );
    }
}
