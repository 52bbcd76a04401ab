"""An optional local judge: a model the user picks grades each golden answer 1-5 against the expected one,
with a short rubric. Off by default; its grades are a model's opinion of the answers, not a measurement.

    a local folder        a transformers causal LM, loaded here (on the GPU when there is one), asked with
                          its chat template when it has one; the first number 1-5 of its greedy reply
    ollama:MODEL[@URL]    a model an Ollama server on this computer serves (POST /api/chat, "stream": false,
                          "format": a JSON schema of {"score", "reason"}); the URL must be this computer's

Both are checked when opened (the folder holds a model; the server answers and has the model), so a bad
choice stops `studio eval` before it scores anything. A reply that holds no grade is no error: the answer's
grade is None, with the reason saying what the judge replied.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from studio.core.errors import StudioError

RUBRIC_VERSION = 1  # raise it when the rubric's words change: grades under another rubric are not comparable
RUBRIC = """You grade an answer to a question against the expected answer.
5: it says everything the expected answer says, and nothing wrong.
4: it says the main points of the expected answer, with small gaps, and nothing wrong.
3: it says part of the expected answer, or mixes right and wrong.
2: it says little of the expected answer, or is mostly wrong.
1: it is wrong, or unrelated to the question.
Grade the facts, not the wording: other words for the same facts are as good as the expected answer's."""
OPINION = "a judge's opinion: a model's grade of each answer 1-5 against the expected one, not a measurement"

OLLAMA_URL = "http://127.0.0.1:11434"  # where Ollama listens unless told otherwise
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
GRADE_SCHEMA = {"type": "object",
                "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}, "reason": {"type": "string"}},
                "required": ["score", "reason"]}
ASK_JSON = 'Reply in JSON: {"score": the grade 1-5, "reason": one short sentence}.'
ASK_NUMBER = "Reply with the grade only: one number from 1 to 5."
REPLY_TOKENS = 12  # the local judge's reply: a grade, in a few tokens
CHAT_TIMEOUT_S = 600.0  # the first request loads the model into Ollama: minutes for a large one
_FIRST_GRADE = re.compile(r"(?<!\d)[1-5](?!\d)")


class Judge(Protocol):
    name: str  # what the scores are saved under: "ollama:qwen2.5:7b", or the model folder's name

    def grade(self, question: str, expected: str, answer: str) -> tuple[int | None, str]:
        """The grade 1-5 (None: the reply held none) and a one-line reason."""


def open_judge(spec: str) -> Judge:
    """The judge `spec` names, checked: a model folder, or "ollama:MODEL" / "ollama:MODEL@http://127.0.0.1:PORT"."""
    spec = spec.strip()
    if spec.startswith("ollama:"):
        return OllamaJudge.open(spec.removeprefix("ollama:"))
    return LocalJudge.open(Path(spec).expanduser())


def grade_answers(judge: Judge, answers: list[dict]) -> None:
    """Sets "judge" (1-5 or None) and "judge_reason" on each scored answer (measures.Measures.answer's dicts)."""
    for a in answers:
        a["judge"], a["judge_reason"] = judge.grade(a["question"], a["expected"], a["answer"])


def grading_prompt(question: str, expected: str, answer: str, ask: str) -> str:
    return f"{RUBRIC}\n{ask}\n\nQuestion:\n{question}\n\nExpected answer:\n{expected}\n\nAnswer to grade:\n{answer}"


def grade_of_json(content: str) -> tuple[int | None, str]:
    """A reply in GRADE_SCHEMA's shape → (score, reason)."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    score = data.get("score") if isinstance(data, dict) else None
    if isinstance(score, float) and score.is_integer():
        score = int(score)
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        return None, _no_grade(content)
    return score, _one_line(str(data.get("reason") or "")) or f"graded {score}"


def grade_of_text(reply: str) -> tuple[int | None, str]:
    """The first number 1-5 in a free reply (not part of a longer number) → (grade, the reply's first line)."""
    found = _FIRST_GRADE.search(reply)
    if found is None:
        return None, _no_grade(reply)
    return int(found.group()), _one_line(reply)


def _one_line(text: str, limit: int = 200) -> str:
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _no_grade(reply: str) -> str:
    shown = " ".join(reply.split())[:80]
    return f"the judge gave no grade: {shown}" if shown else "the judge gave no grade: its reply was empty"


class OllamaJudge:
    """A model an Ollama server on this computer serves (Ollama's /api/tags and /api/chat)."""

    def __init__(self, model: str, url: str):
        self.model, self.url = model, url
        self.name = f"ollama:{model}"

    @classmethod
    def open(cls, rest: str) -> OllamaJudge:
        model, _, url = rest.partition("@")
        model = model.strip()
        if not model:
            raise StudioError("Name the Ollama model that judges: ollama:MODEL.",
                              "For example --judge ollama:qwen2.5:7b (`ollama list` shows the models you have).", topic="settings")
        url = local_url(url.strip() or OLLAMA_URL)
        try:
            tags = json.loads(_request(url, "/api/tags", timeout=10.0))
            names = [m.get("name") or m.get("model") for m in tags.get("models") or []]
        except (ValueError, AttributeError, TypeError) as exc:
            raise StudioError(f"{url} answered /api/tags, but not as Ollama does.",
                              "Check the address: it must be an Ollama server (by default http://127.0.0.1:11434).",
                              topic="settings") from exc
        if model not in names and f"{model}:latest" not in names:
            has = ", ".join(sorted(filter(None, names))) or "no models at all"
            raise StudioError(f"Ollama at {url} has no model {model}; it has: {has}.", f"Run `ollama pull {model}`, "
                              "or pick one of the models it has.", topic="settings")
        return cls(model, url)

    def grade(self, question: str, expected: str, answer: str) -> tuple[int | None, str]:
        body = {"model": self.model, "stream": False, "format": GRADE_SCHEMA, "options": {"temperature": 0},
                "messages": [{"role": "user", "content": grading_prompt(question, expected, answer, ASK_JSON)}]}
        reply = _request(self.url, "/api/chat", body, timeout=CHAT_TIMEOUT_S)
        try:
            content = json.loads(reply)["message"]["content"]
        except (ValueError, KeyError, TypeError):
            content = reply
        return grade_of_json(content if isinstance(content, str) else json.dumps(content))


def local_url(url: str) -> str:
    """`url` as scheme://host:port when it is this computer's; else refused: the judge stays on this computer."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        _ = parts.port  # a port that is not a number: ValueError
        local = parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS
    except ValueError:
        local = False
    if not local:
        raise StudioError(f"The judge stays on this computer: {url} is not an address of this computer.",
                          "Run Ollama here and give ollama:MODEL (it listens on http://127.0.0.1:11434), or "
                          "ollama:MODEL@http://127.0.0.1:PORT for another port.", topic="settings")
    return f"{parts.scheme}://{parts.netloc}"


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to this computer, never via a proxy


def _request(url: str, path: str, body: dict | None = None, *, timeout: float) -> str:
    """The text of Ollama's answer to a GET (no body) or a JSON POST."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        detail = _error_of(exc)
        raise StudioError(f"Ollama at {url} refused {path}: {detail}",
                          "Check that Ollama runs and has the model (`ollama list`); its log says more.",
                          topic="settings") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StudioError(f"No Ollama server answers at {url} ({reason}).",
                          "Start Ollama (the Ollama app, or `ollama serve`) and try again; or give the address it "
                          "listens on: ollama:MODEL@http://127.0.0.1:PORT.", topic="settings") from exc


def _error_of(exc: urllib.error.HTTPError) -> str:
    """Ollama's {"error": "..."} body, or the HTTP status."""
    try:
        return str(json.loads(exc.read().decode("utf-8", "replace"))["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code} {exc.reason}"


class LocalJudge:
    """A causal LM in a local folder, loaded with transformers; greedy, a few tokens, the first number 1-5."""

    def __init__(self, name: str, model, tokenizer, template: str | None):
        self.name, self.model, self.tokenizer, self.template = name, model, tokenizer, template

    @classmethod
    def open(cls, folder: Path) -> LocalJudge:
        safe = _check_folder(folder)  # before torch loads: a wrong folder is said at once
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from studio.core.data.tokens import chat_template_of

        cuda = torch.cuda.is_available()
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16 if cuda else torch.float32, **safe)
        except (OSError, ValueError, KeyError) as exc:
            raise StudioError(f"The judge model in {folder} could not be loaded: {exc}",
                              "Give a folder that holds a whole transformers causal language model, "
                              "or ollama:MODEL.", topic="model") from exc
        model.to("cuda" if cuda else "cpu").eval()
        template, is_default = chat_template_of(tokenizer)
        return cls(folder.name, model, tokenizer, None if is_default else template)

    def grade(self, question: str, expected: str, answer: str) -> tuple[int | None, str]:
        return grade_of_text(self.reply(grading_prompt(question, expected, answer, ASK_NUMBER)))

    def reply(self, prompt: str) -> str:
        """The model's greedy reply, at most REPLY_TOKENS tokens: in its chat template when it has one."""
        import torch

        if self.template:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], chat_template=self.template,
                                                      tokenize=False, add_generation_prompt=True)
        else:
            text = f"{prompt}\n\nGrade:"
        ids = self.tokenizer(text, add_special_tokens=not self.template, return_tensors="pt")["input_ids"]
        ids = ids.to(self.model.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=REPLY_TOKENS,
                                      do_sample=False, pad_token_id=pad)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def _check_folder(folder: Path) -> dict:
    """The folder holds a model the judge can load safely; from_pretrained's arguments that load what was checked."""
    from studio.core.weights import base_weights, check_base

    advice = ("Give a folder that holds a transformers causal language model (config.json and model.safetensors), "
              "or ollama:MODEL for a model Ollama serves on this computer.")
    if not folder.is_dir():
        raise StudioError(f"There is no folder {folder} to take the judge from.", advice, topic="settings")
    if not (folder / "config.json").is_file():
        raise StudioError(f"{folder} holds no model: it has no config.json.", advice, topic="settings")
    if base_weights(folder).kind == "pickle":
        raise StudioError(f"The judge in {folder} stores its weights as pickled files, which can run code when loaded.",
                          "Convert its weights to safetensors, or serve it with Ollama and give ollama:MODEL.",
                          topic="model")
    return check_base(folder, folder.name, allow_pickle=False)
