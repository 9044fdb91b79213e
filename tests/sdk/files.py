"""The official OpenAI Python SDK's Files API against a running Continuum router.

Usage: python3 tests/sdk/files.py http://127.0.0.1:PORT WORK_DIR
Run by the Rust integration test `sdk::official_openai_sdk_manages_files`. It uploads two
files, lists (plain, by purpose, by page, in both orders), retrieves, reads and deletes
one, checks every value, and prints the id of the file it keeps ("kept file-…").
"""
import os
import sys
import time

import openai

base = sys.argv[1].rstrip("/")
work = sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key="no-key-needed", max_retries=0)

report = ("line one\nline two, in UTF-8: \u00e9\u00e8 \u2713\r\n--not-a-boundary--\r\n" * 3000).encode()
path = os.path.join(work, "sdk-report.txt")
with open(path, "wb") as f:
    f.write(report)

started = int(time.time())
with open(path, "rb") as f:
    up = client.files.create(file=f, purpose="user_data")
assert up.object == "file", up
assert up.id.startswith("file-") and len(up.id) == 29, up.id
assert up.bytes == len(report) == 177000, (up.bytes, len(report))
assert up.filename == "sdk-report.txt", up.filename
assert up.purpose == "user_data", up.purpose
assert up.status == "processed", up.status
assert up.status_details is None, up.status_details
assert up.expires_at is None, up.expires_at
assert started <= up.created_at <= int(time.time()), (started, up.created_at)

# The second upload a second later, so created_at orders them.
time.sleep(1.1)
lines = b'{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{}}\n' * 3
kept = client.files.create(file=("batch.jsonl", lines, "application/jsonl"), purpose="batch")
assert kept.bytes == len(lines) == 222, kept.bytes
assert kept.filename == "batch.jsonl", kept.filename
assert kept.purpose == "batch", kept.purpose
assert kept.created_at > up.created_at, (kept.created_at, up.created_at)

page = client.files.list()
assert [f.id for f in page.data] == [kept.id, up.id], page.data
assert page.has_more is False, page
assert [f.id for f in client.files.list(order="asc")] == [up.id, kept.id]
assert [f.id for f in client.files.list(purpose="batch")] == [kept.id]
assert [f.id for f in client.files.list(purpose="fine-tune")] == []
first = client.files.list(limit=1)
assert [f.id for f in first.data] == [kept.id], first.data
assert first.has_more is True, first
# Iterating pages: the SDK follows `after` on its own.
assert [f.id for f in client.files.list(limit=1)] == [kept.id, up.id]
second = first.get_next_page()
assert [f.id for f in second.data] == [up.id], second.data
assert second.has_more is False

got = client.files.retrieve(up.id)
assert got.model_dump() == up.model_dump(), (got, up)
assert client.files.retrieve(kept.id).model_dump() == kept.model_dump()

content = client.files.content(up.id)
assert content.read() == report
raw = client.files.with_raw_response.content(up.id)
assert raw.http_response.status_code == 200
assert raw.headers["content-type"] == "text/plain", raw.headers
assert raw.headers["content-length"] == "177000", raw.headers
assert raw.headers["content-disposition"] == 'attachment; filename="sdk-report.txt"', raw.headers
assert client.files.content(kept.id).read() == lines

gone = client.files.delete(up.id)
assert gone.id == up.id and gone.deleted is True and gone.object == "file", gone
for call in (
    lambda: client.files.retrieve(up.id),
    lambda: client.files.content(up.id).read(),
    lambda: client.files.delete(up.id),
):
    try:
        call()
        raise AssertionError("a deleted file was found")
    except openai.NotFoundError as e:
        assert e.status_code == 404
        assert e.code == "not_found", e.body
        assert e.body["message"] == f"no file found with id '{up.id}'", e.body
assert [f.id for f in client.files.list()] == [kept.id]

try:
    client.files.create(file=("x.txt", b"x"), purpose="nonsense")
    raise AssertionError("an unknown purpose was accepted")
except openai.BadRequestError as e:
    assert e.param == "purpose", e.body
    assert e.body["message"].startswith("'nonsense' is not a purpose"), e.body

print("kept", kept.id)
print("files sdk ok")
