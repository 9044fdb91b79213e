//! Reranking. Clients speak the Cohere/Jina shape (`POST /v1/rerank`, alias `/rerank`):
//! `{model, query, documents, top_n, return_documents}` where a document is a string or an
//! object with a `text` field (Jina and Cohere v1 also take other objects), answered with
//! `{id, model, results: [{index, relevance_score, document?}], usage?}`, best first.
//!
//! Backends that speak that shape — Cohere (`/v2/rerank`), Jina, vLLM and llama.cpp
//! (`/v1/rerank`) — get the client's body and their reply goes through
//! [`normalise_reply`], because they differ in the details: Cohere v2 never returns
//! documents, vLLM always does, llama.cpp may answer in document order. Hugging Face
//! text-embeddings-inference (`POST /rerank`) takes `{query, texts}` and answers
//! `[{index, score}]`: [`to_tei`] and [`from_tei`] translate it.
//!
//! The client's reply is the same whichever backend answered: results sorted by score,
//! highest first (ties keep document order), cut to `top_n`, each carrying the request's own
//! document when `return_documents` is true and none when it is false or absent (Cohere's
//! default), and an `id` and `model` when the backend gave none.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use super::input::{is_number, named, parse_reply, parse_request, to_bytes};

/// The path of text-embeddings-inference's rerank endpoint, relative to its base URL.
pub const TEI_PATH: &str = "/rerank";

/// A client's rerank request, checked: what the translations and the reply normalisation
/// need. Owned, so the pipeline can keep it while the backend answers.
#[derive(Debug, Clone)]
pub struct RerankRequest {
    /// `model`, when given (Jina's is optional).
    pub model: Option<String>,
    /// `query`, never empty.
    pub query: String,
    /// `documents`, never empty, in the client's order (result indices point here).
    pub documents: Vec<Document>,
    /// `top_n`, at least 1, when given.
    pub top_n: Option<usize>,
    /// `return_documents`; false when absent (Cohere's default).
    pub return_documents: bool,
}

/// One document as the client sent it.
#[derive(Debug, Clone)]
pub enum Document {
    /// A plain string.
    Text(String),
    /// An object (`{"text": ...}` or a Jina-style multimodal item), kept verbatim so a reply
    /// can return it as sent; `text` is its `text` field when it has one.
    Object {
        /// The object's JSON, verbatim.
        raw: Box<RawValue>,
        /// Its `text` field.
        text: Option<String>,
    },
}

impl Document {
    /// The text to rank, if the document has one.
    pub fn text(&self) -> Option<&str> {
        match self {
            Document::Text(s) => Some(s),
            Document::Object { text, .. } => text.as_deref(),
        }
    }

    fn read(i: usize, raw: Box<RawValue>) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Fields<'a> {
            #[serde(borrow, default)]
            text: Option<&'a RawValue>,
        }
        let json = raw.get();
        if json.starts_with('"') {
            let text: String = serde_json::from_str(json).map_err(|e| e.to_string())?;
            return Ok(Document::Text(text));
        }
        if !json.starts_with('{') {
            return Err(format!("documents[{i}] must be a string or an object"));
        }
        let fields: Fields = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let text = match fields.text {
            None => None,
            Some(t) => Some(
                serde_json::from_str::<String>(t.get())
                    .map_err(|_| format!("documents[{i}].text must be a string"))?,
            ),
        };
        Ok(Document::Object { raw, text })
    }

    /// The document as a reply carries it: `{"text": ...}` for a string, the object as sent.
    fn wire(&self) -> DocumentWire<'_> {
        match self {
            Document::Text(text) => DocumentWire::Text { text },
            Document::Object { raw, .. } => DocumentWire::Raw(raw),
        }
    }
}

impl RerankRequest {
    /// Reads and checks a Cohere/Jina rerank body: `query` a non-empty string, `documents` a
    /// non-empty array of strings and objects (an object's `text`, if any, a string), `top_n`
    /// an integer of at least 1, `return_documents` a boolean.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let wire: Wire = parse_request(body)?;
        let query = wire
            .query
            .filter(|q| !q.is_empty())
            .ok_or("query must be a non-empty string")?;
        let documents = wire
            .documents
            .filter(|d| !d.is_empty())
            .ok_or("documents must be a non-empty array")?
            .into_iter()
            .enumerate()
            .map(|(i, raw)| Document::read(i, raw))
            .collect::<Result<Vec<_>, _>>()?;
        let top_n = match wire.top_n {
            None => None,
            Some(0) => return Err("top_n must be an integer of at least 1".into()),
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        };
        Ok(RerankRequest {
            model: wire.model,
            query,
            documents,
            top_n,
            return_documents: wire.return_documents.unwrap_or(false),
        })
    }
}

/// The text-embeddings-inference `/rerank` body: `query`, the documents' texts as `texts`,
/// `return_text: false` (documents come from the request) and `truncate: true`, since Cohere
/// and Jina truncate long documents rather than refuse them. A document object without a
/// `text` field is refused, naming its index: TEI ranks text only.
pub fn to_tei(req: &RerankRequest) -> Result<Bytes, String> {
    let texts = req
        .documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.text().ok_or_else(|| {
                format!(
                    "documents[{i}] has no text field; text-embeddings-inference ranks text only"
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(to_bytes(&TeiRequest {
        query: &req.query,
        texts,
        return_text: false,
        truncate: true,
    }))
}

/// The client's reply for text-embeddings-inference's `[{"index", "score"}]`: `score`
/// becomes `relevance_score` (its number text kept), results are sorted, cut to `top_n` and
/// given documents as the module describes, with a fresh `rerank-…` id and the request's
/// `model`. TEI reports no usage, so the reply has none.
pub fn from_tei(reply: &[u8], req: &RerankRequest) -> Result<Bytes, String> {
    const WHAT: &str = "text-embeddings-inference reply";
    let ranks: Vec<TeiRank> = parse_reply(reply, WHAT)?;
    let scored = ranks
        .iter()
        .enumerate()
        .map(|(i, r)| scored(WHAT, &format!("[{i}]"), r.index, r.score, "score", req))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(to_bytes(&Reply {
        id: new_id(),
        model: req.model.as_deref(),
        results: rank(scored, req),
    }))
}

/// Normalises a Cohere/Jina-shaped backend reply (Cohere, Jina, vLLM, llama.cpp) to what
/// the client asked: `results` sorted by `relevance_score`, highest first, keeping each
/// document's original `index` (ties keep document order), cut to `top_n`, with the request's
/// document attached when `return_documents` and removed otherwise. An `id` and the request's
/// `model` are added when the backend left them out; every other field (`usage`, Cohere's
/// `meta`) is kept verbatim.
pub fn normalise_reply(reply: &[u8], req: &RerankRequest) -> Result<Bytes, String> {
    const WHAT: &str = "rerank reply";
    let top: BTreeMap<String, &RawValue> = parse_reply(reply, WHAT)?;
    let results = top
        .get("results")
        .ok_or_else(|| format!("{WHAT} has no results"))?;
    let items: Vec<ResultWire> = serde_json::from_str(results.get())
        .map_err(|_| format!("{WHAT}: results must be an array of objects"))?;
    let scored = items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            scored(
                WHAT,
                &format!("results[{i}]"),
                r.index,
                r.relevance_score,
                "relevance_score",
                req,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ranked = serde_json::value::to_raw_value(&rank(scored, req)).map_err(|e| e.to_string())?;
    let mut out: BTreeMap<String, Cow<'_, RawValue>> = top
        .into_iter()
        .map(|(k, v)| (k, Cow::Borrowed(v)))
        .collect();
    out.insert("results".to_owned(), Cow::Owned(ranked));
    if !out.contains_key("id") {
        let id = serde_json::value::to_raw_value(&new_id()).map_err(|e| e.to_string())?;
        out.insert("id".to_owned(), Cow::Owned(id));
    }
    if let (false, Some(model)) = (out.contains_key("model"), &req.model) {
        let model = serde_json::value::to_raw_value(model).map_err(|e| e.to_string())?;
        out.insert("model".to_owned(), Cow::Owned(model));
    }
    Ok(to_bytes(&out))
}

// ---------------------------------------------------------------------------------------
// Wire types

#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct Wire {
    #[serde(default, deserialize_with = "model")]
    model: Option<String>,
    #[serde(default, deserialize_with = "query")]
    query: Option<String>,
    #[serde(default, deserialize_with = "documents")]
    documents: Option<Vec<Box<RawValue>>>,
    #[serde(default, deserialize_with = "top_n")]
    top_n: Option<u64>,
    #[serde(default, deserialize_with = "return_documents")]
    return_documents: Option<bool>,
}

fn model<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    named(d, "model must be a string")
}

fn query<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    named(d, "query must be a non-empty string")
}

fn documents<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Box<RawValue>>>, D::Error> {
    named(d, "documents must be a non-empty array")
}

fn top_n<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    named(d, "top_n must be an integer of at least 1")
}

fn return_documents<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    named(d, "return_documents must be a boolean")
}

#[derive(Serialize)]
struct TeiRequest<'a> {
    query: &'a str,
    texts: Vec<&'a str>,
    return_text: bool,
    truncate: bool,
}

#[derive(Deserialize)]
struct TeiRank<'a> {
    #[serde(borrow, default)]
    index: Option<&'a RawValue>,
    #[serde(borrow, default)]
    score: Option<&'a RawValue>,
}

/// One result of a Cohere/Jina-shaped reply; any `document` the backend sent is dropped
/// (the request's own is attached instead).
#[derive(Deserialize)]
struct ResultWire<'a> {
    #[serde(borrow, default)]
    index: Option<&'a RawValue>,
    #[serde(borrow, default, alias = "score")]
    relevance_score: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct Reply<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    results: Vec<Ranked<'a>>,
}

#[derive(Serialize)]
struct Ranked<'a> {
    index: usize,
    relevance_score: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<DocumentWire<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DocumentWire<'a> {
    Text { text: &'a str },
    Raw(&'a RawValue),
}

/// A backend result's document index and score, checked: the index must point into the
/// request's documents, the score must be a number.
fn scored<'a>(
    what: &str,
    at: &str,
    index: Option<&RawValue>,
    score: Option<&'a RawValue>,
    score_name: &str,
    req: &RerankRequest,
) -> Result<(usize, f64, &'a RawValue), String> {
    let n = req.documents.len();
    let index = index
        .and_then(|i| serde_json::from_str::<usize>(i.get()).ok())
        .filter(|i| *i < n)
        .ok_or_else(|| format!("{what}: {at}.index must be an integer below {n}"))?;
    let raw = score
        .filter(|s| is_number(s))
        .ok_or_else(|| format!("{what}: {at}.{score_name} must be a number"))?;
    let value = serde_json::from_str::<f64>(raw.get())
        .map_err(|_| format!("{what}: {at}.{score_name} must be a number"))?;
    Ok((index, value, raw))
}

/// Sorts by score, highest first (ties by document index), cuts to `top_n` and attaches
/// documents when asked.
fn rank<'a>(
    mut scored: Vec<(usize, f64, &'a RawValue)>,
    req: &'a RerankRequest,
) -> Vec<Ranked<'a>> {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if let Some(n) = req.top_n {
        scored.truncate(n);
    }
    scored
        .into_iter()
        .map(|(index, _, relevance_score)| Ranked {
            index,
            relevance_score,
            document: req.return_documents.then(|| req.documents[index].wire()),
        })
        .collect()
}

/// A reply id in vLLM's style, for backends that give none.
fn new_id() -> String {
    format!("rerank-{:032x}", fastrand::u128(..))
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

    /// The reply without its generated id, after checking the id's shape.
    fn without_id(bytes: &[u8]) -> Value {
        let mut v = value(bytes);
        let id = v["id"].as_str().expect("an id").to_owned();
        assert!(id.starts_with("rerank-") && id.len() == 39, "{id}");
        v.as_object_mut().unwrap().remove("id");
        v
    }

    fn request(v: Value) -> RerankRequest {
        RerankRequest::parse(v.to_string().as_bytes()).unwrap()
    }

    const COHERE_REQUEST: &str = include_str!("../../tests/fixtures/rerank/cohere_v2_request.json");

    #[test]
    fn cohere_request_parses() {
        let req = RerankRequest::parse(COHERE_REQUEST.as_bytes()).unwrap();
        assert_eq!(req.model.as_deref(), Some("rerank-v4.0-pro"));
        assert_eq!(req.query, "What is the capital of the United States?");
        assert_eq!(req.documents.len(), 5);
        assert_eq!(req.top_n, Some(3));
        assert!(!req.return_documents);
        assert_eq!(
            req.documents[0].text(),
            Some("Carson City is the capital city of the American state of Nevada.")
        );
    }

    #[test]
    fn cohere_v2_reply_is_normalised() {
        let req = RerankRequest::parse(COHERE_REQUEST.as_bytes()).unwrap();
        let out = normalise_reply(
            include_bytes!("../../tests/fixtures/rerank/cohere_v2_reply.json"),
            &req,
        )
        .unwrap();
        // Cohere's id and meta are kept; the model is added.
        assert_eq!(
            value(&out),
            fixture(include_str!(
                "../../tests/fixtures/rerank/cohere_v2_normalised.json"
            ))
        );
    }

    #[test]
    fn vllm_reply_loses_documents_not_asked_for() {
        let req = RerankRequest::parse(include_bytes!(
            "../../tests/fixtures/rerank/vllm_request.json"
        ))
        .unwrap();
        let out = normalise_reply(
            include_bytes!("../../tests/fixtures/rerank/vllm_reply.json"),
            &req,
        )
        .unwrap();
        assert_eq!(
            value(&out),
            fixture(include_str!(
                "../../tests/fixtures/rerank/vllm_normalised.json"
            ))
        );
    }

    #[test]
    fn llamacpp_reply_is_sorted_cut_and_given_documents() {
        let req = RerankRequest::parse(include_bytes!(
            "../../tests/fixtures/rerank/llamacpp_request.json"
        ))
        .unwrap();
        let out = normalise_reply(
            include_bytes!("../../tests/fixtures/rerank/llamacpp_reply.json"),
            &req,
        )
        .unwrap();
        assert_eq!(
            without_id(&out),
            fixture(include_str!(
                "../../tests/fixtures/rerank/llamacpp_normalised.json"
            ))
        );
    }

    #[test]
    fn tei_request_and_reply_match_the_golden_bodies() {
        let req = RerankRequest::parse(COHERE_REQUEST.as_bytes()).unwrap();
        assert_eq!(
            value(&to_tei(&req).unwrap()),
            fixture(include_str!("../../tests/fixtures/rerank/tei_request.json"))
        );
        let out = from_tei(
            include_bytes!("../../tests/fixtures/rerank/tei_reply.json"),
            &req,
        )
        .unwrap();
        assert_eq!(
            without_id(&out),
            fixture(include_str!(
                "../../tests/fixtures/rerank/tei_normalised.json"
            ))
        );
    }

    #[test]
    fn ties_keep_document_order_and_top_n_may_exceed_the_documents() {
        let req = request(json!({
            "model": "m", "query": "q", "documents": ["a", "b", "c", "d"],
            "top_n": 10, "return_documents": true
        }));
        let reply = json!([
            {"index": 3, "score": 0.5},
            {"index": 1, "score": 0.5},
            {"index": 2, "score": 0.9},
            {"index": 0, "score": 0.5}
        ]);
        let out = value(&from_tei(reply.to_string().as_bytes(), &req).unwrap());
        let order: Vec<u64> = out["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect();
        assert_eq!(order, [2, 0, 1, 3]);
        assert_eq!(out["results"][1]["document"], json!({"text": "a"}));
        assert_eq!(out["results"][0]["relevance_score"], json!(0.9));
        assert_eq!(out["model"], "m");
        assert!(out.get("usage").is_none());
    }

    #[test]
    fn negative_scores_sort_below_positive_ones() {
        let req = request(json!({"query": "q", "documents": ["a", "b", "c"]}));
        let reply = json!({"results": [
            {"index": 0, "relevance_score": -5.5},
            {"index": 1, "relevance_score": 8.25},
            {"index": 2, "relevance_score": -0.5}
        ]});
        let out = value(&normalise_reply(reply.to_string().as_bytes(), &req).unwrap());
        assert_eq!(
            out["results"],
            json!([
                {"index": 1, "relevance_score": 8.25},
                {"index": 2, "relevance_score": -0.5},
                {"index": 0, "relevance_score": -5.5}
            ])
        );
        // No model in the request and none in the reply: none is invented.
        assert!(out.get("model").is_none());
    }

    #[test]
    fn object_documents_return_as_sent_and_need_text_for_tei() {
        let req = request(json!({
            "query": "q", "return_documents": true,
            "documents": [{"text": "alpha", "id": "a1"}, "beta", {"image": "https://example.com/x.png"}]
        }));
        assert_eq!(
            to_tei(&req).unwrap_err(),
            "documents[2] has no text field; text-embeddings-inference ranks text only"
        );
        let reply = json!({"results": [
            {"index": 2, "relevance_score": 0.1},
            {"index": 0, "relevance_score": 0.7, "document": {"text": "alpha"}},
            {"index": 1, "relevance_score": 0.4, "document": "beta"}
        ]});
        let out = value(&normalise_reply(reply.to_string().as_bytes(), &req).unwrap());
        assert_eq!(
            out["results"],
            json!([
                {"index": 0, "relevance_score": 0.7, "document": {"text": "alpha", "id": "a1"}},
                {"index": 1, "relevance_score": 0.4, "document": {"text": "beta"}},
                {"index": 2, "relevance_score": 0.1, "document": {"image": "https://example.com/x.png"}}
            ])
        );
        let texts = request(json!({"query": "q", "documents": [{"text": "alpha"}, "beta"]}));
        assert_eq!(
            value(&to_tei(&texts).unwrap()),
            json!({"query": "q", "texts": ["alpha", "beta"], "return_text": false, "truncate": true})
        );
    }

    #[test]
    fn requests_are_refused_naming_the_field() {
        let err = |v: Value| RerankRequest::parse(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            err(json!({"documents": ["a"]})),
            "query must be a non-empty string"
        );
        assert_eq!(
            err(json!({"query": "", "documents": ["a"]})),
            "query must be a non-empty string"
        );
        assert_eq!(
            err(json!({"query": 7, "documents": ["a"]})),
            "query must be a non-empty string"
        );
        assert_eq!(
            err(json!({"query": "q"})),
            "documents must be a non-empty array"
        );
        assert_eq!(
            err(json!({"query": "q", "documents": []})),
            "documents must be a non-empty array"
        );
        assert_eq!(
            err(json!({"query": "q", "documents": "a"})),
            "documents must be a non-empty array"
        );
        assert_eq!(
            err(json!({"query": "q", "documents": ["a", "b", 3]})),
            "documents[2] must be a string or an object"
        );
        assert_eq!(
            err(json!({"query": "q", "documents": ["a", {"text": 5}]})),
            "documents[1].text must be a string"
        );
        for top_n in [json!(0), json!(-1), json!(1.5), json!("3")] {
            assert_eq!(
                err(json!({"query": "q", "documents": ["a"], "top_n": top_n})),
                "top_n must be an integer of at least 1"
            );
        }
        assert_eq!(
            err(json!({"query": "q", "documents": ["a"], "return_documents": "yes"})),
            "return_documents must be a boolean"
        );
        assert_eq!(
            err(json!({"model": 1, "query": "q", "documents": ["a"]})),
            "model must be a string"
        );
        assert_eq!(
            RerankRequest::parse(b"[]").unwrap_err(),
            "request body must be a JSON object"
        );
        assert!(RerankRequest::parse(b"{")
            .unwrap_err()
            .starts_with("request body is not valid JSON"));
    }

    #[test]
    fn bad_backend_replies_name_the_field() {
        let req = request(json!({"query": "q", "documents": ["a", "b"]}));
        let n = |v: Value| normalise_reply(v.to_string().as_bytes(), &req).unwrap_err();
        assert_eq!(n(json!({"data": []})), "rerank reply has no results");
        assert_eq!(
            n(json!({"results": {}})),
            "rerank reply: results must be an array of objects"
        );
        assert_eq!(
            n(
                json!({"results": [{"index": 0, "relevance_score": 1}, {"index": 2, "relevance_score": 1}]})
            ),
            "rerank reply: results[1].index must be an integer below 2"
        );
        assert_eq!(
            n(json!({"results": [{"index": 0, "relevance_score": "high"}]})),
            "rerank reply: results[0].relevance_score must be a number"
        );
        let t = |v: Value| from_tei(v.to_string().as_bytes(), &req).unwrap_err();
        assert_eq!(
            t(json!([{"index": -1, "score": 0.5}])),
            "text-embeddings-inference reply: [0].index must be an integer below 2"
        );
        assert_eq!(
            t(json!([{"index": 0}])),
            "text-embeddings-inference reply: [0].score must be a number"
        );
        assert!(
            t(json!({"error": "Model is overloaded", "error_type": "overloaded"}))
                .starts_with("text-embeddings-inference reply: invalid type: map")
        );
    }
}
