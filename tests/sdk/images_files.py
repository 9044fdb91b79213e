"""The official OpenAI and Anthropic Python SDKs' image and file calls through the router.

Usage:
  python3 tests/sdk/images_files.py images http://127.0.0.1:PORT KEY
  python3 tests/sdk/images_files.py files http://127.0.0.1:PORT KEY OTHER_KEY

Run by `sdk::official_openai_sdk_generates_edits_and_varies_images` and
`sdk::official_sdks_refer_to_uploaded_files_in_chat` (tests/it/sdk.rs), which check what
the upstreams received.

`images`: the router is in front of a generic OpenAI-compatible upstream (gpt-image-1), a
Gemini upstream (gemini-2.5-flash-image) and a LocalAI upstream (stablediffusion, dall-e-2),
the test upstream of tests/it/images.rs answering with tests/fixtures/images/. Prints the
Content-Type of the edit and variation requests the SDK sent ("edit content-type: ...").

`files`: the router is in front of a vLLM upstream (qwen-up) and an Anthropic upstream
(claude-up), the test upstreams of tests/it/responses.rs ("Hello from KIND."). KEY and
OTHER_KEY belong to two different users.
"""
import atexit
import base64
import os
import shutil
import sys
import tempfile

import openai

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
# tests/fixtures/images/README.md: OTTER and SKETCH, real 1x1 PNGs.
OTTER = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mPojtIGAAKEARGtHjFHAAAAAElFTkSuQmCC"
SKETCH = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR42mNoaGgAAAMEAYF1LgG8AAAAAElFTkSuQmCC"
NOTES = "Sea otters hold hands while they sleep so that they do not drift apart.\n"

mode, base = sys.argv[1], sys.argv[2].rstrip("/")
work = tempfile.mkdtemp(prefix="continuum-sdk-")
atexit.register(shutil.rmtree, work, True)


def write(name, data):
    path = os.path.join(work, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


png_path = write("otter.png", base64.b64decode(OTTER))


def bad_request(call):
    try:
        call()
    except openai.BadRequestError as e:
        return e
    raise AssertionError("expected a 400")


def images(key):
    client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)

    # A generic OpenAI-compatible upstream: its reply as it gave it.
    r = client.images.generate(model="gpt-image-1", prompt="A cute baby sea otter", response_format="b64_json")
    assert r.created == 1713833628, r
    assert [d.b64_json for d in r.data] == [OTTER, SKETCH], r.data
    assert r.usage.total_tokens == 8350 and r.usage.output_tokens == 8300, r.usage
    assert r.output_format == "png" and r.size == "1024x1024" and r.quality == "high", r

    # A Gemini image model: translated to generateContent and back.
    r = client.images.generate(model="gemini-2.5-flash-image", prompt="A cute baby sea otter", response_format="b64_json")
    assert len(r.data) == 1, r.data
    assert r.data[0].b64_json == OTTER, r.data
    assert r.data[0].revised_prompt == "Here is a cute baby sea otter floating on its back.", r.data
    assert r.output_format == "png", r
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (7, 1302, 1309), r.usage
    # What Gemini cannot do is refused by name, before it is asked.
    r = client.images.generate(model="gemini-2.5-flash-image", prompt="A cute baby sea otter", n=2, response_format="b64_json")
    assert [d.b64_json for d in r.data] == [OTTER, OTTER], r.data
    # response_format url: the router hosts what Gemini sent in base64.
    r = client.images.generate(model="gemini-2.5-flash-image", prompt="an otter", response_format="url")
    assert r.data[0].b64_json is None, r.data
    import urllib.request
    with urllib.request.urlopen(r.data[0].url) as hosted:
        assert hosted.headers["content-type"] == "image/png", hosted.headers
        assert hosted.read() == base64.b64decode(OTTER)

    # Edits and variations: multipart, passed through to LocalAI.
    with open(png_path, "rb") as image:
        raw = client.images.with_raw_response.edit(
            model="stablediffusion", image=image, prompt="A cute baby sea otter wearing a beret"
        )
    print("edit content-type:", raw.http_request.headers["content-type"])
    r = raw.parse()
    assert [d.b64_json for d in r.data] == [OTTER, SKETCH], r.data
    with open(png_path, "rb") as image:
        raw = client.images.with_raw_response.create_variation(image=image, model="dall-e-2", n=2)
    print("variation content-type:", raw.http_request.headers["content-type"])
    r = raw.parse()
    assert [d.b64_json for d in r.data] == [OTTER, SKETCH], r.data
    print("images sdk ok")


def files(key, other_key):
    import anthropic

    client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    other = openai.OpenAI(base_url=base + "/v1", api_key=other_key, max_retries=0)

    notes = client.files.create(file=open(write("notes.txt", NOTES.encode()), "rb"), purpose="user_data")
    with open(png_path, "rb") as f:
        png = client.files.create(file=f, purpose="vision")
    with open(os.path.join(FIXTURES, "files", "hello.pdf"), "rb") as f:
        pdf = client.files.create(file=f, purpose="user_data")
    assert notes.filename == "notes.txt" and notes.bytes == len(NOTES), notes
    assert png.filename == "otter.png" and png.purpose == "vision", png
    assert pdf.filename == "hello.pdf" and pdf.bytes == 610, pdf

    def ask(model, part, question, as_client=client):
        r = as_client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": [part, {"type": "text", "text": question}]}],
        )
        return r.choices[0].message.content

    file_part = lambda f: {"type": "file", "file": {"file_id": f.id}}
    # vLLM: the text as text, the image as a data URL, the PDF as its extracted text.
    assert ask("qwen-up", file_part(notes), "Summarise the notes") == "Hello from vllm."
    image_part = {"type": "image_file", "image_file": {"file_id": png.id}}
    assert ask("qwen-up", image_part, "Describe the picture") == "Hello from vllm."
    assert ask("qwen-up", file_part(pdf), "What does the PDF say?") == "Hello from vllm."
    # Anthropic, from the OpenAI SDK: the PDF as a document.
    assert ask("claude-up", file_part(pdf), "What does the PDF say?") == "Hello from anthropic."

    # The same file from the Anthropic SDK, as a document block with a file source.
    claude = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
    m = claude.messages.create(
        model="claude-up",
        max_tokens=100,
        messages=[{
            "role": "user",
            "content": [
                {"type": "document", "source": {"type": "file", "file_id": pdf.id}},
                {"type": "text", "text": "What does the PDF say?"},
            ],
        }],
    )
    assert [b.text for b in m.content if b.type == "text"] == ["Hello from anthropic."], m.content

    # Another user's file is not there for them: a 400 naming the id.
    e = bad_request(lambda: ask("qwen-up", file_part(pdf), "What does it say?", as_client=other))
    assert pdf.id in str(e), e
    claude_other = anthropic.Anthropic(base_url=base, api_key=other_key, max_retries=0)
    try:
        claude_other.messages.create(
            model="claude-up",
            max_tokens=100,
            messages=[{"role": "user", "content": [
                {"type": "document", "source": {"type": "file", "file_id": notes.id}},
                {"type": "text", "text": "Summarise"},
            ]}],
        )
        raise AssertionError("expected a 400")
    except anthropic.BadRequestError as e:
        assert notes.id in str(e), e
    print("files sdk ok")


if mode == "images":
    images(sys.argv[3])
elif mode == "files":
    files(sys.argv[3], sys.argv[4])
else:
    raise SystemExit(f"unknown mode {mode}")
