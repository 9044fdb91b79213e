"""The official Anthropic SDK, through the router, onto a real llama-server: messages.create
streamed and not. Assertions are about protocol (types, stop reasons, usage), never wording."""
import sys

import anthropic

client = anthropic.Anthropic(base_url=sys.argv[1], api_key="unused", max_retries=0)
msg = client.messages.create(
    model="smollm2",
    max_tokens=12,
    messages=[{"role": "user", "content": "Say hello."}],
)
assert msg.type == "message" and msg.role == "assistant", msg
assert msg.content and msg.content[0].type == "text", msg.content
assert msg.stop_reason in ("end_turn", "max_tokens"), msg.stop_reason
assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, msg.usage

events = []
with client.messages.stream(
    model="smollm2",
    max_tokens=12,
    system="You are terse.",
    messages=[{"role": "user", "content": "Count to three."}],
) as stream:
    for event in stream:
        events.append(event.type)
    final = stream.get_final_message()
assert events[0] == "message_start", events
assert "content_block_delta" in events and events[-1] == "message_stop", events
assert final.usage.output_tokens > 0, final.usage
assert final.stop_reason in ("end_turn", "max_tokens"), final.stop_reason
print("anthropic sdk on llama-server ok")
