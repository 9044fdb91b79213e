"""Streamed tool-use conversations through the router with the official SDKs.

Usage: python3 tests/sdk/tool_use.py anthropic|openai http://127.0.0.1:PORT MODEL
- anthropic: the Anthropic SDK against an OpenAI-compatible backend.
- openai: the OpenAI SDK against an Anthropic-format backend.
The backend (started by the Rust test) first asks for get_weather(location="Paris"), then
answers with the tool result in its text.
"""
import json
import sys

which, base, model = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]

if which == "anthropic":
    import anthropic

    client = anthropic.Anthropic(base_url=base, api_key="unused", max_retries=0)
    tools = [{"name": "get_weather", "description": "Current weather",
              "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}]
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    with client.messages.stream(model=model, max_tokens=200, tools=tools, messages=messages) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use", first
    use = [b for b in first.content if b.type == "tool_use"][0]
    assert use.name == "get_weather" and use.input == {"location": "Paris"}, use
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "15 degrees"}]}]
    with client.messages.stream(model=model, max_tokens=200, tools=tools, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "15 degrees" in text, text
    assert final.stop_reason == "end_turn"
else:
    import openai

    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
              "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    calls, finish = {}, None
    for chunk in client.chat.completions.create(model=model, tools=tools, messages=messages, stream=True):
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
            entry["id"] = tc.id or entry["id"]
            if tc.function and tc.function.name:
                entry["name"] += tc.function.name
            if tc.function and tc.function.arguments:
                entry["arguments"] += tc.function.arguments
        finish = choice.finish_reason or finish
    assert finish == "tool_calls", finish
    call = calls[0]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"location": "Paris"}, call
    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]},
                 {"role": "tool", "tool_call_id": call["id"], "content": "15 degrees"}]
    text = ""
    for chunk in client.chat.completions.create(model=model, tools=tools, messages=messages, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert "15 degrees" in text, text

print(which, "tool use ok")
