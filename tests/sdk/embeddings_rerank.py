"""The official OpenAI Python SDK's embeddings, and rerank over plain HTTP (Cohere shape),
against a running Continuum router in front of a generic OpenAI-compatible upstream, a Gemini
upstream and a text-embeddings-inference upstream (the test upstreams of
tests/it/operations.rs, answering with the replies in tests/fixtures/).

Usage: python3 tests/sdk/embeddings_rerank.py http://127.0.0.1:PORT API_KEY
Run by the Rust integration test `sdk::official_openai_sdk_embeds_and_reranks_through_the_router`.
"""
import json
import os
import struct
import sys
import urllib.error
import urllib.request

import openai

base = sys.argv[1].rstrip("/")
key = sys.argv[2]
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


def fixture(path):
    with open(os.path.join(FIXTURES, path)) as f:
        return json.load(f)


def as_f32(numbers):
    """What a float32 holds of each number: base64 embeddings are float32s."""
    return [struct.unpack("<f", struct.pack("<f", x))[0] for x in numbers]


client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)

# --- A generic OpenAI-compatible backend: it sends floats, the router encodes base64. ---
floats = [d["embedding"] for d in fixture("embeddings/openai_float_reply.json")["data"]]
texts = ["The food was delicious", "and the waiter"]

# The SDK asks for base64 by default and decodes it.
raw = client.embeddings.with_raw_response.create(model="text-embedding-ada-002", input=texts)
assert raw.headers["x-continuum-backend"] == "gen", raw.headers
wire = raw.http_response.json()
assert all(isinstance(d["embedding"], str) for d in wire["data"]), wire
r = raw.parse()
got = [d.embedding for d in r.data]
assert got == [as_f32(v) for v in floats], got
assert got != floats, "the vectors went through float32, as base64 carries them"
assert [d.index for d in r.data] == [0, 1]
assert r.model == "text-embedding-ada-002", r.model
assert (r.usage.prompt_tokens, r.usage.total_tokens) == (8, 8), r.usage

# Floats asked for, with dimensions: the backend's numbers, exactly.
r = client.embeddings.create(
    model="text-embedding-ada-002", input=texts, encoding_format="float", dimensions=3
)
assert [d.embedding for d in r.data] == floats, r.data
assert r.usage.prompt_tokens == 8

# --- A Gemini backend: batchEmbedContents translated both ways. ---
gemini = [e["values"] for e in fixture("embeddings/gemini_batch_reply.json")["embeddings"]]
questions = fixture("embeddings/openai_batch_request.json")["input"]

r = client.embeddings.create(model="gemini-embedding-001", input=questions)
assert [d.embedding for d in r.data] == [as_f32(v) for v in gemini], r.data
assert [d.index for d in r.data] == [0, 1, 2]
assert r.model == "gemini-embedding-001", r.model
assert (r.usage.prompt_tokens, r.usage.total_tokens) == (0, 0), r.usage

r = client.embeddings.create(
    model="gemini-embedding-001", input=questions, encoding_format="float", dimensions=768
)
assert [d.embedding for d in r.data] == gemini, r.data

# The router refuses what it cannot serve, in OpenAI's error shape the SDK reads.
try:
    client.embeddings.create(model="gemini-embedding-001", input="x", encoding_format="int8")
    raise AssertionError("encoding_format int8 was accepted")
except openai.BadRequestError as e:
    assert e.body["message"] == 'encoding_format must be "float" or "base64"', e.body

# --- Rerank over plain HTTP (Cohere/Jina shape) on a text-embeddings-inference backend. ---


def post(path, body):
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.load(e)


request = fixture("rerank/cohere_v2_request.json")
docs = request["documents"]
status, headers, reply = post("/v1/rerank", request)
assert status == 200, reply
assert headers["x-continuum-backend"] == "tei", dict(headers)
assert [(x["index"], x["relevance_score"]) for x in reply["results"]] == [
    (3, 0.999071),
    (4, 0.7867867),
    (0, 0.32713068),
], reply
assert all("document" not in x for x in reply["results"]), reply
assert reply["model"] == "rerank-v4.0-pro", reply
assert reply["id"].startswith("rerank-"), reply

every = dict(request, return_documents=True)
del every["top_n"]
status, _, reply = post("/rerank", every)
assert status == 200, reply
order = [3, 4, 0, 1, 2]
assert [x["index"] for x in reply["results"]] == order, reply
assert [x["document"] for x in reply["results"]] == [{"text": docs[i]} for i in order], reply

status, _, reply = post("/v1/rerank", {"model": "rerank-v4.0-pro", "documents": docs})
assert status == 400, reply
assert reply["error"]["message"] == "query must be a non-empty string", reply
assert reply["error"]["type"] == "invalid_request_error", reply

print("embeddings and rerank ok")
