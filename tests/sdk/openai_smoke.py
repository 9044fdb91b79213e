"""The official OpenAI Python SDK against a running Continuum router (mock backend).

Usage: python3 tests/sdk/openai_smoke.py http://127.0.0.1:PORT
Run by the Rust integration test `sdk::official_openai_sdk_talks_to_the_router`.
"""
import sys

import openai

base = sys.argv[1].rstrip("/")
client = openai.OpenAI(base_url=base + "/v1", api_key="no-key-needed", max_retries=0)
messages = [{"role": "user", "content": "hello from the sdk"}]

reply = client.chat.completions.create(model="mock-model", messages=messages)
assert reply.object == "chat.completion", reply
assert reply.choices[0].message.role == "assistant"
assert reply.choices[0].message.content == "hello from the sdk", reply
assert reply.choices[0].finish_reason == "stop"
assert reply.usage.completion_tokens == 4, reply.usage

raw = client.chat.completions.with_raw_response.create(model="mock", messages=messages)
assert raw.headers["x-continuum-backend"] == "demo"
assert raw.headers["x-continuum-model"] == "mock-model"

stream = client.chat.completions.create(
    model="mock-model", messages=messages, stream=True, stream_options={"include_usage": True}
)
text, usage = "", None
for chunk in stream:
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage:
        usage = chunk.usage
assert text == "hello from the sdk", text
assert usage is not None and usage.completion_tokens == 4, usage

ids = [m.id for m in client.models.list()]
assert "mock-model" in ids, ids
assert client.models.retrieve("mock-model").id == "mock-model"

try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    raise AssertionError("unknown model was accepted")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e.body

try:
    client.chat.completions.create(model="", messages=messages)
    raise AssertionError("empty model was accepted")
except openai.BadRequestError as e:
    assert "model" in str(e)

print("openai sdk ok")
