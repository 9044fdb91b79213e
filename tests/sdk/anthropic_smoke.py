"""The official Anthropic Python SDK against a running Continuum router (mock backend),
as Claude Code would use it with ANTHROPIC_BASE_URL pointed at the router.

Usage: python3 tests/sdk/anthropic_smoke.py http://127.0.0.1:PORT
"""
import sys

import anthropic

base = sys.argv[1].rstrip("/")
client = anthropic.Anthropic(base_url=base, api_key="no-key-needed", max_retries=0)
messages = [{"role": "user", "content": "hello from the anthropic sdk"}]

msg = client.messages.create(model="mock-model", max_tokens=64, system="be brief", messages=messages)
assert msg.type == "message" and msg.role == "assistant", msg
assert msg.content[0].type == "text"
assert msg.content[0].text == "hello from the anthropic sdk", msg
assert msg.stop_reason == "end_turn"
assert msg.usage.output_tokens == 5, msg.usage

with client.messages.stream(model="mock-model", max_tokens=64, messages=messages) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
assert text == "hello from the anthropic sdk", text
assert final.stop_reason == "end_turn"

try:
    client.messages.create(model="no-such-model", max_tokens=8, messages=messages)
    raise AssertionError("unknown model was accepted")
except anthropic.NotFoundError as e:
    assert e.body["error"]["type"] == "not_found_error", e.body

print("anthropic sdk ok")
