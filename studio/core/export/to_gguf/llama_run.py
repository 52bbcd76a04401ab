"""llama.cpp itself, through llama-cpp-python, in a child process of its own (`python -m
studio.core.export.to_gguf.llama_run`): quantizing a GGUF file, and answering prompts with one. A
crash or an out-of-memory kill in native code then costs the child, never the window, and Cancel can
stop it at any moment. The parent side (`run_llama`) speaks JSON with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from studio.core.errors import StudioError


class Cancelled(Exception):
    """The user asked the export to stop; the caller discards what was written."""


def run_llama(request: dict, *, cancelled: Callable[[], bool] | None = None, timeout: float | None = None) -> dict:
    """Run one request in a llama.cpp child process and return its JSON answer (StudioError if it failed)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.Popen([sys.executable, "-m", "studio.core.export.to_gguf.llama_run"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(request).encode("utf-8"))
    proc.stdin.close()
    start = time.monotonic()
    while proc.poll() is None:
        if (cancelled and cancelled()) or (timeout and time.monotonic() - start > timeout):
            proc.kill()
            proc.wait()
            if cancelled and cancelled():
                raise Cancelled()
            raise StudioError(f"llama.cpp did not finish within {timeout:.0f} s.", "Try again with fewer or shorter prompts.")
        time.sleep(0.05)
    out, err = proc.stdout.read(), proc.stderr.read()  # small: JSON and llama.cpp's last words
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-6:]
        raise StudioError(f"llama.cpp stopped with exit code {proc.returncode} while doing '{request.get('do')}': "
                          + (" / ".join(tail) or "no message"),
                          "The GGUF file may not match what this llama.cpp version reads; the message above says more.")
    return json.loads(out.decode("utf-8"))


# ---------------------------------------------------------------- the child


def _quantize(request: dict) -> dict:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, request["ftype"])
    params.nthread = os.cpu_count() or 1
    code = llama_cpp.llama_model_quantize(request["source"].encode(), request["target"].encode(), params)
    if code != 0:
        raise RuntimeError(f"llama_model_quantize returned {code}")
    return {"ok": True}


def _argmax(row) -> int:
    import numpy as np

    return int(np.argmax(row))


def _answer(request: dict) -> dict:
    import llama_cpp

    longest = max((len(p["ids"]) + len(p.get("reference") or []) + request["tokens"] for p in request["prompts"]), default=64)
    llm = llama_cpp.Llama(model_path=request["model"], n_ctx=max(64, longest + 8), logits_all=True, verbose=False,
                          n_threads=os.cpu_count() or 1, n_batch=512)
    answers = []
    for prompt in request["prompts"]:
        ids = list(prompt["ids"])
        tokenized = llm.tokenize(prompt["text"].encode("utf-8"), add_bos=False, special=True) if prompt.get("text") else None
        llm.reset()
        llm.eval(ids)
        greedy = []
        for _ in range(request["tokens"]):
            token = _argmax(llm.scores[llm.n_tokens - 1])
            greedy.append(token)
            llm.eval([token])
        top1 = []
        reference = prompt.get("reference") or []
        if reference:  # the next token llama.cpp ranks first at each step of transformers' own answer
            llm.reset()
            llm.eval(ids + reference[:-1])
            top1 = [_argmax(llm.scores[len(ids) - 1 + i]) for i in range(len(reference))]
        answers.append({"greedy": greedy, "top1": top1, "tokenized": tokenized,
                        "text": llm.detokenize(greedy).decode("utf-8", "replace")})
    return {"answers": answers, "eos": llm.token_eos()}


def _chat(request: dict) -> dict:
    """One answer, greedy, to the end-of-turn token or `tokens` tokens: what a runner would say."""
    import llama_cpp

    ids = list(request["ids"])
    llm = llama_cpp.Llama(model_path=request["model"], n_ctx=max(64, len(ids) + request["tokens"] + 8), verbose=False,
                          n_threads=os.cpu_count() or 1)
    stops = {llm.token_eos(), *request.get("stop_ids", [])}
    answer = []
    for token in llm.generate(ids, temp=0.0, top_k=1, reset=True):
        if token in stops or len(answer) >= request["tokens"]:
            break
        answer.append(token)
    return {"ids": answer, "text": llm.detokenize(answer).decode("utf-8", "replace"), "stopped": len(answer) < request["tokens"]}


def main() -> int:
    request = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    answer = {"quantize": _quantize, "answer": _answer, "chat": _chat}[request["do"]](request)
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
