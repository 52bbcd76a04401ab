"""Who writes the questions: one OpenAI-compatible client for what the user already runs (Ollama, a
llama.cpp server, vLLM, LM Studio: the `openai` package, pointed at the server), or, with nothing
running, a model the studio loads itself (transformers). The reply is asked for as JSON following a
schema where the server takes one, else as plain JSON; a reply that is not what was asked is repaired
where it can be (the JSON inside it) and otherwise skipped with its reason, never silently."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from studio.core.errors import StudioError

PROMPT_VERSION = "docs-qa-1"  # recorded with every row: change it when the prompt changes
SERVERS = (("Ollama", "http://localhost:11434/v1"), ("llama.cpp server", "http://localhost:8080/v1"),
           ("vLLM", "http://localhost:8000/v1"), ("LM Studio", "http://localhost:1234/v1"))
_TEXT = {"type": "string", "minLength": 1, "maxLength": 400}  # bounded, so that a reply always closes its JSON
SCHEMA = {"type": "object", "required": ["pairs"], "properties": {"pairs": {
    "type": "array", "minItems": 1, "maxItems": 8, "items": {
        "type": "object", "required": ["question", "answer", "quote"],
        "properties": {"question": _TEXT, "answer": _TEXT, "quote": _TEXT}}}}}
SYSTEM = ("You write question-answer pairs that teach the facts of a text. Reply with JSON only: "
          '{"pairs": [{"question": ..., "answer": ..., "quote": ...}]}. Each question must make sense on its own, '
          'without the text (never "according to the text"); each answer must be true by the text; each quote '
          "must be copied word for word from the text and support the answer. Write in the text's language.")


@dataclass(frozen=True)
class Pair:
    question: str
    answer: str
    quote: str


def prompt(chunk_text: str, title: str, pairs: int) -> list[dict]:
    where = f"From: {title}\n\n" if title else ""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{where}Text:\n\"\"\"\n{chunk_text}\n\"\"\"\n\nWrite {pairs} question-answer pairs."}]


JUDGE_SCHEMA = {"type": "object", "required": ["supported"], "properties": {"supported": {"type": "boolean"}}}


def judge_prompt(chunk_text: str, question: str, answer: str) -> list[dict]:
    """A yes/no question to a judge that sees the source: does the text support the answer?"""
    return [{"role": "system", "content": 'You check answers against a text. Reply with JSON only: {"supported": true} '
                                          'if the text supports the answer to the question, else {"supported": false}.'},
            {"role": "user", "content": f"Text:\n\"\"\"\n{chunk_text}\n\"\"\"\n\nQuestion: {question}\nAnswer: {answer}"}]


def parse_verdict(reply: str) -> bool | None:
    """The judge's yes (True) or no (False); None when its reply says neither."""
    data = _json_in(reply)
    if isinstance(data, dict) and isinstance(data.get("supported"), bool):
        return data["supported"]
    word = reply.strip().split()[0].strip(".,!").lower() if reply.strip() else ""
    return {"yes": True, "no": False, "true": True, "false": False}.get(word)


def parse_pairs(reply: str) -> tuple[list[Pair], str | None]:
    """The pairs in a model's reply, and why anything was skipped (None when nothing was): JSON as asked,
    or the first JSON object or list inside other text; items without a question, answer or quote are
    left out and counted."""
    data = _json_in(reply)
    if data is None:
        shown = " ".join(reply.split())[:80]
        return [], f"the reply was not JSON ({shown!r}…)" if shown else "the reply was empty"
    items = data.get("pairs", []) if isinstance(data, dict) else data if isinstance(data, list) else []
    pairs = [Pair(str(i["question"]).strip(), str(i["answer"]).strip(), str(i["quote"]).strip()) for i in items
             if isinstance(i, dict) and all(isinstance(i.get(k), str) and i[k].strip() for k in ("question", "answer", "quote"))]
    skipped = len(items) - len(pairs) if isinstance(items, list) else 0
    if not items:
        return [], "the reply held no pairs"
    return pairs, f"{skipped} of its {len(items)} items lacked a question, an answer or a quote" if skipped else None


def _json_in(reply: str):
    text = reply.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    for candidate in [text] + ([fenced.group(1)] if fenced else []):
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"[\[{]", text)):
        try:
            return decoder.raw_decode(text[start:])[0]
        except ValueError:
            continue
    return None


class OpenAICompatible:
    """A model behind an OpenAI-compatible server: structured output (a JSON schema) where the server
    takes it, JSON mode or a plain request where it does not (what worked is kept for the next chunk)."""

    def __init__(self, base_url: str, model: str, api_key: str = "not-needed", timeout: float = 300):
        from openai import OpenAI

        self.base_url, self.model = base_url, model
        self.client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=1)
        self.formats = [{"type": "json_schema"}, {"type": "json_object"}, None]  # the first the server takes

    @property
    def name(self) -> str:
        return f"{self.model} at {self.base_url}"

    def complete(self, messages: list[dict], max_tokens: int = 1024, schema: dict = SCHEMA) -> str:
        import openai

        while True:
            fmt = self.formats[0]
            if fmt and fmt["type"] == "json_schema":
                fmt = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
            try:
                extra = {"response_format": fmt} if fmt else {}
                reply = self.client.chat.completions.create(model=self.model, messages=messages, temperature=0.2,
                                                            max_tokens=max_tokens, **extra)
                return reply.choices[0].message.content or ""
            except openai.BadRequestError:
                if len(self.formats) == 1:
                    raise
                self.formats.pop(0)  # the server does not take this format: the next, plainer one
            except openai.APIConnectionError as exc:
                raise StudioError(f"Nothing answers at {self.base_url} any more.",
                                  "Start the server again, then resume: the chunks done so far are kept.") from exc


class LocalModel:
    """A model the studio loads itself through transformers (a folder, a hub id or "demo"), on the GPU
    where there is one; no schema, so the reply goes through the repair-or-skip path."""

    def __init__(self, source: str):
        from transformers import AutoModelForCausalLM

        from studio.core.models import load_tokenizer, resolve_model

        info = resolve_model(source)
        self.source = source
        self.tokenizer = load_tokenizer(info)
        self.model = AutoModelForCausalLM.from_pretrained(str(info.path) if info.path else info.hub_id,
                                                          device_map="auto" if _has_gpu() else None)

    @property
    def name(self) -> str:
        return f"{self.source} (loaded by the studio)"

    def complete(self, messages: list[dict], max_tokens: int = 1024, schema: dict = SCHEMA) -> str:
        from studio.core.generate import GenerationSettings, generate

        return generate(self.model, self.tokenizer, messages, GenerationSettings(max_new_tokens=max_tokens))


class LocalGguf:
    """A GGUF file (one the studio exported, or any) run by llama.cpp in this process, its reply held to
    the JSON schema by llama.cpp's grammar: even a small model's reply is then JSON."""

    def __init__(self, path: str, context: int = 4096):
        try:
            import llama_cpp
        except ImportError as exc:
            raise StudioError("Running a GGUF file needs llama.cpp (llama-cpp-python).",
                              "Install it: pip install 'lora-studio[gguf]'; or serve the file with Ollama or "
                              "llama-server and give --server.") from exc
        self.path = path
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=context, seed=0, verbose=False)  # the same replies each run

    @property
    def name(self) -> str:
        from pathlib import Path

        return f"{Path(self.path).name} (llama.cpp, loaded by the studio)"

    def complete(self, messages: list[dict], max_tokens: int = 1024, schema: dict = SCHEMA) -> str:
        reply = self.llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=0.2,
                                                response_format={"type": "json_object", "schema": schema})
        return reply["choices"][0]["message"]["content"] or ""


def generator_for(model: str, server: str | None = None):
    """The generator for `model`: served at `server` (an OpenAI-compatible address), a .gguf file run by
    llama.cpp, else a model the studio loads with transformers (a folder, a hub id, "demo")."""
    if server:
        offered = reachable_models(server)
        if model not in offered:
            raise StudioError(f"The server at {server} does not offer '{model}'.",
                              f"Choose one it offers: {', '.join(offered) or '(none: pull or load one first)'}.")
        return OpenAICompatible(server, model)
    if model.lower().endswith(".gguf"):
        return LocalGguf(model)
    return LocalModel(model)


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def reachable_models(base_url: str) -> list[str]:
    """The models a server offers; StudioError saying what to start when nothing answers."""
    import openai

    try:
        from openai import OpenAI

        return sorted(m.id for m in OpenAI(base_url=base_url, api_key="not-needed", timeout=5, max_retries=0).models.list())
    except openai.APIConnectionError as exc:
        raise StudioError(f"Nothing answers at {base_url}.",
                          "Start the program that serves your model — Ollama (`ollama serve`), a llama.cpp server "
                          "(`llama-server -m model.gguf`), vLLM or LM Studio — or let the studio load a model "
                          "itself (--model with a folder, a hub id or a GGUF exported by the studio).") from exc
    except openai.APIError as exc:
        raise StudioError(f"The server at {base_url} did not list its models: {exc}.",
                          "Check the address (it ends in /v1) and that the server is OpenAI-compatible.") from exc


def health() -> list[dict]:
    """What runs on this computer: each known server's address, whether it answers and its models."""
    found = []
    for name, url in SERVERS:
        try:
            found.append({"server": name, "url": url, "models": reachable_models(url), "problem": None})
        except StudioError as exc:
            found.append({"server": name, "url": url, "models": [], "problem": exc.message})
    return found
