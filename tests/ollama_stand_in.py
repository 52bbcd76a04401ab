"""A real local HTTP server that speaks the part of Ollama's documented API the judge uses
(ollama/ollama docs/api.md): GET /api/tags lists the models it has; POST /api/chat with "stream": false
answers one JSON object whose message.content is the reply; an unknown model is a 404 with {"error"}.
It keeps every chat request it was sent, so tests read what the client really sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer

from tests.http_stand_in import JsonHandler


class OllamaStandIn:
    """`with OllamaStandIn(["qwen2.5:7b"]) as ollama:` serves on 127.0.0.1 at a free port (ollama.url)."""

    def __init__(self, models: list[str], reply: Callable[[dict], str] | str = '{"score": 4, "reason": "Mostly right."}'):
        self.models = models
        self.reply = reply if callable(reply) else (lambda _request: reply)
        self.chats: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OllamaStandIn:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        stand_in = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.path != "/api/tags":
                    return self._send(404, {"error": "404 page not found"})
                self._send(200, {"models": [{"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 4_683_087_332,
                                             "digest": "0" * 64, "details": {"format": "gguf", "family": "qwen2"}}
                                            for m in stand_in.models]})

            def do_POST(self) -> None:
                if self.path != "/api/chat":
                    return self._send(404, {"error": "404 page not found"})
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.chats.append(request)
                model = request.get("model", "")
                if model not in stand_in.models and f"{model}:latest" not in stand_in.models:
                    return self._send(404, {"error": f"model '{model}' not found"})
                self._send(200, {"model": model, "created_at": "2025-01-01T00:00:00Z",
                                 "message": {"role": "assistant", "content": stand_in.reply(request)},
                                 "done_reason": "stop", "done": True, "total_duration": 1, "eval_count": 12})

        return Handler
