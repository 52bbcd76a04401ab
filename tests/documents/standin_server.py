"""A local stand-in for Ollama or a llama.cpp server: a real HTTP server speaking the OpenAI API
(GET /v1/models, POST /v1/chat/completions) in front of a real model — a GGUF file run by llama.cpp,
its reply held to the JSON schema or JSON mode the request asks for. `refuse_schemas` makes it answer
a request for a JSON schema with 400, as servers without structured output do."""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer

from tests.http_stand_in import JsonHandler


class StandIn:
    def __init__(self, gguf: str, name: str = "plant-doctor", refuse_schemas: bool = False):
        import llama_cpp

        self.llm = llama_cpp.Llama(model_path=gguf, n_ctx=4096, verbose=False)
        self.name, self.refuse_schemas = name, refuse_schemas
        self.formats: list[str | None] = []  # the response_format type of each request, in order
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        standin = self

        class Handler(JsonHandler):
            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    return self._send(200, {"object": "list", "data": [{"id": standin.name, "object": "model",
                                                                        "created": 0, "owned_by": "local"}]})
                self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fmt = request.get("response_format") or {}
                standin.formats.append(fmt.get("type"))
                if fmt.get("type") == "json_schema" and standin.refuse_schemas:
                    return self._send(400, {"error": {"message": "response_format json_schema is not supported",
                                                      "type": "invalid_request_error"}})
                kwargs = {}
                if fmt.get("type") == "json_schema":
                    kwargs["response_format"] = {"type": "json_object", "schema": fmt["json_schema"]["schema"]}
                elif fmt.get("type") == "json_object":
                    kwargs["response_format"] = {"type": "json_object"}
                with standin.lock:
                    reply = standin.llm.create_chat_completion(messages=request["messages"],
                                                               max_tokens=request.get("max_tokens") or 256,
                                                               temperature=request.get("temperature", 0.2), **kwargs)
                reply["model"] = standin.name
                self._send(200, reply)

        return Handler
