"""A stub upstream for scripts/api-fuzz, so the operations the built-in mock backend does not
answer reach their translations: TEI's embeddings (OpenAI route), /rerank and /embed_sparse,
and OpenAI-compatible legacy completions (streamed and not) and image generation, edits
and variations. Canned answers in the shapes
the providers document; anything else is a 404.

    python stub_backend.py PORT
"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def inputs(value):
    if isinstance(value, list):
        return value[:64] or [""]
    return [value]


class Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def events(self, events):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        for e in events:
            self.wfile.write(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n")
        self.close_connection = True

    def completion(self, body):
        # OpenAI's text_completion object (platform.openai.com/docs/api-reference/completions).
        model = body.get("model") if isinstance(body.get("model"), str) else "m"
        choice = {"text": " there was a router.", "index": 0, "logprobs": None, "finish_reason": "length"}
        answer = {"id": "cmpl-stub", "object": "text_completion", "created": 1, "model": model,
                  "choices": [choice]}
        if body.get("stream") is True:
            return self.events([answer, b"[DONE]"])
        answer["usage"] = {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
        self.reply(200, answer)

    def do_GET(self):
        if self.path in ("/health", "/v1/models"):
            return self.reply(200, {"object": "list", "data": []})
        self.reply(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw) if raw[:1] in (b"{", b"[") else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        path = self.path.split("?")[0]
        if path == "/v1/embeddings":
            data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                    for i, _ in enumerate(inputs(body.get("input", "")))]
            return self.reply(200, {"object": "list", "data": data, "model": body.get("model", "m"),
                                    "usage": {"prompt_tokens": len(data), "total_tokens": len(data)}})
        if path == "/v1/completions":
            return self.completion(body)
        if path == "/rerank":
            texts = body.get("texts") if isinstance(body.get("texts"), list) else []
            return self.reply(200, [{"index": i, "score": 1.0 / (i + 1)} for i, _ in enumerate(texts[:1000])])
        if path == "/embed_sparse":
            return self.reply(200, [[{"index": 7, "value": 0.5}] for _ in inputs(body.get("inputs", ""))])
        if path in ("/v1/images/generations", "/v1/images/edits", "/v1/images/variations"):
            n = body.get("n") if isinstance(body.get("n"), int) and 0 < body.get("n") <= 10 else 1
            return self.reply(200, {"created": 1, "data": [{"b64_json": PNG} for _ in range(n)]})
        self.reply(404, {"error": {"message": f"no {path} here", "type": "not_found"}})


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Stub).serve_forever()
