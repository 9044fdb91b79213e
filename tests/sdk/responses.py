"""The official OpenAI Python SDK's Responses API through the router.

Usage: python3 tests/sdk/responses.py http://127.0.0.1:PORT KIND MODEL KEY OTHER_KEY
Run by `sdk::official_openai_sdk_responses_on_*` in front of a test upstream of KIND
(`tests/it/responses.rs`, `Provider`): `openai` takes /v1/responses itself (ids resp_up_N),
the others (vllm, anthropic, gemini, ollama) are translated. The upstream says
"Hello from KIND." to anything, calls get_weather(location="Paris") when given tools, answers
a tool result R with "It is R in Paris.", and gives {"city": "Paris", "temperature": 15}
when asked for JSON. KEY and OTHER_KEY are API keys of two different users.
"""
import json
import sys

import openai

base, kind, model, key, other_key = sys.argv[1:6]
base = base.rstrip("/") + "/v1"
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
other = openai.OpenAI(base_url=base, api_key=other_key, max_retries=0)
passthrough = kind == "openai"
hello = f"Hello from {kind}."
made = 0  # responses created so far (the passthrough upstream numbers its ids)


def check_id(rid):
    global made
    made += 1
    if passthrough:
        assert rid == f"resp_up_{made}", (rid, made)
    else:
        assert len(rid) == 37 and rid.startswith("resp_") and all(c in "0123456789abcdef" for c in rid[5:]), rid


def check_usage(usage):
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (11, 5, 16), usage


def not_found(call):
    try:
        call()
    except openai.NotFoundError as e:
        return e
    raise AssertionError("expected a 404")


# -- client.responses.create, whole ------------------------------------------------------
first = client.responses.create(model=model, input="Say hello")
check_id(first.id)
assert first.object == "response" and first.status == "completed", first
assert first.model == model, first.model
assert first.output_text == hello, first.output_text
assert [o.type for o in first.output] == ["message"], first.output
assert first.output[0].role == "assistant" and first.output[0].status == "completed", first.output
check_usage(first.usage)

# -- client.responses.create, streamed -------------------------------------------------
events = list(client.responses.create(model=model, input="Say hello", stream=True))
assert [e.sequence_number for e in events] == list(range(len(events))), events
assert [e.type for e in events] == [
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
], [e.type for e in events]
assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Hello", " from ", f"{kind}."]
streamed = events[-1].response
check_id(streamed.id)
assert events[0].response.id == streamed.id and events[0].response.status == "in_progress"
assert streamed.status == "completed" and streamed.output_text == hello, streamed
check_usage(streamed.usage)

# -- the client.responses.stream helper --------------------------------------------------
with client.responses.stream(model=model, input="Say hello") as stream:
    deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    final = stream.get_final_response()
check_id(final.id)
assert deltas == ["Hello", " from ", f"{kind}."], deltas
assert final.output_text == hello and final.status == "completed", final

# -- a function tool round trip, whole ---------------------------------------------------
tools = [{"type": "function", "name": "get_weather", "description": "Current weather", "strict": True,
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                         "required": ["location"], "additionalProperties": False}}]
asked = client.responses.create(model=model, input="What's the weather in Paris?", tools=tools)
check_id(asked.id)
assert [o.type for o in asked.output] == ["function_call"], asked.output
call = asked.output[0]
assert call.name == "get_weather" and json.loads(call.arguments) == {"location": "Paris"}, call
assert call.status == "completed" and call.call_id, call
answer = client.responses.create(
    model=model, previous_response_id=asked.id, tools=tools,
    input=[{"type": "function_call_output", "call_id": call.call_id, "output": "15 degrees"}],
)
check_id(answer.id)
assert answer.output_text == "It is 15 degrees in Paris.", answer.output_text
assert answer.previous_response_id == asked.id, answer.previous_response_id

# Another user cannot continue it.
e = not_found(lambda: other.responses.create(
    model=model, previous_response_id=asked.id, tools=tools,
    input=[{"type": "function_call_output", "call_id": call.call_id, "output": "15 degrees"}],
))

# -- a function tool round trip, streamed (the stream helper) ----------------------------
with client.responses.stream(model=model, input="What's the weather in Paris?", tools=tools) as stream:
    argument_deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
    asked2 = stream.get_final_response()
check_id(asked2.id)
assert json.loads("".join(argument_deltas)) == {"location": "Paris"}, argument_deltas
calls = [o for o in asked2.output if o.type == "function_call"]
assert len(calls) == 1 and calls[0].name == "get_weather", asked2.output
assert calls[0].parsed_arguments == {"location": "Paris"}, calls[0]
with client.responses.stream(
    model=model, previous_response_id=asked2.id, tools=tools,
    input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "17 degrees"}],
) as stream:
    text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    answer2 = stream.get_final_response()
check_id(answer2.id)
assert text == "It is 17 degrees in Paris." == answer2.output_text, (text, answer2.output_text)

# -- structured output -------------------------------------------------------------------
schema = {"type": "object", "properties": {"city": {"type": "string"}, "temperature": {"type": "integer"}},
          "required": ["city", "temperature"], "additionalProperties": False}
fmt = {"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}}
structured = client.responses.create(model=model, input="The weather in Paris as JSON", text=fmt)
check_id(structured.id)
assert json.loads(structured.output_text) == {"city": "Paris", "temperature": 15}, structured.output_text
assert structured.text.format.type == "json_schema" and structured.text.format.name == "weather", structured.text
with client.responses.stream(model=model, input="The weather in Paris as JSON", text=fmt) as stream:
    structured2 = stream.get_final_response()
check_id(structured2.id)
assert json.loads(structured2.output_text) == {"city": "Paris", "temperature": 15}, structured2.output_text

# -- retrieve, input items, another user's 404, delete -----------------------------------
got = client.responses.retrieve(first.id)
assert got.id == first.id and got.output_text == hello and got.status == "completed", got
got = client.responses.retrieve(answer2.id)
assert got.output_text == "It is 17 degrees in Paris.", got

items = client.responses.input_items.list(first.id)
assert len(items.data) == 1 and not items.has_more, items
item = items.data[0]
assert item.type == "message" and item.role == "user", item
assert [(c.type, c.text) for c in item.content] == [("input_text", "Say hello")], item.content
assert items.first_id == items.last_id == item.id, items

items = client.responses.input_items.list(answer.id)
assert [(i.type, i.call_id, i.output) for i in items.data] == [("function_call_output", call.call_id, "15 degrees")], items

for attempt in (lambda: other.responses.retrieve(first.id),
                lambda: other.responses.input_items.list(first.id),
                lambda: other.responses.delete(first.id)):
    not_found(attempt)
assert client.responses.retrieve(first.id).id == first.id, "another user's delete must not delete it"

assert client.responses.delete(first.id) is None
not_found(lambda: client.responses.retrieve(first.id))
not_found(lambda: client.responses.delete(first.id))
not_found(lambda: client.responses.retrieve("resp_never_made"))

print("responses sdk ok", json.dumps({"first": first.id, "answer": answer.id, "call_id": call.call_id}))
