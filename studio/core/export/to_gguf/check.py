"""The proof after every GGUF export: llama.cpp loads the file and answers the run's sample prompts
greedily, token by token beside the merged model in transformers. A 16-bit file must answer exactly as
transformers does; a quantized one reports how much of it is the same."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.export.to_gguf.llama_run import run_llama

CHECK_TOKENS = 32  # tokens compared per answer
# Where transformers' own first two choices are closer than this (in logits), llama.cpp's rounding of activations
# to its weights' 16-bit type may pick either: a 16-bit file that parts there is not wrong (measured: 0.0005).
TIE_LOGITS = 0.01
# Asked when the run has no sample prompts of its own.
FALLBACK_PROMPTS = ("What can you help me with?", "Explain the most important idea in your field in two sentences.",
                    "Give me three tips for a beginner.")


@dataclass(frozen=True)
class Reference:
    """transformers' answers to the prompts: the prompt's tokens and the greedy answer's."""
    prompts: tuple[str, ...]
    texts: tuple[str, ...]  # the prompts rendered with the chat template
    prompt_ids: tuple[tuple[int, ...], ...]
    answer_ids: tuple[tuple[int, ...], ...]
    answers: tuple[str, ...]
    exact: bool = True  # computed in 32 bits, as llama.cpp computes: a 16-bit file must then answer identically
    gaps: tuple[tuple[float, ...], ...] = ()  # per answer token: transformers' first choice minus its second, in logits


@dataclass(frozen=True)
class GgufCheck:
    quant: str
    prompts: int
    tokens: int  # compared per answer
    identical_answers: int  # answers whose every token equals transformers'
    identical_token_share: float  # tokens before the first difference, over all tokens compared
    top1_agreement: float  # how often llama.cpp's first choice is transformers' next token, along transformers' answer
    tokenizer_agrees: int  # prompts llama.cpp splits into exactly transformers' tokens
    exact_expected: bool  # a 16-bit file: every answer must be identical
    answers: tuple[str, ...] = field(default_factory=tuple)  # llama.cpp's answers, for people
    differences: tuple[str, ...] = field(default_factory=tuple)
    ties: int = 0  # answers identical up to a point where transformers' own first two choices tie (TIE_LOGITS)

    @property
    def passed(self) -> bool:
        if self.tokenizer_agrees < self.prompts:
            return False
        return self.identical_answers + self.ties == self.prompts if self.exact_expected else True

    def summary(self) -> str:
        if self.exact_expected and self.passed:
            tie = (f"; {self.ties} more part{'s' if self.ties > 1 else ''} where transformers' own first two choices tie "
                   f"(under {TIE_LOGITS} logits apart), which either may break" if self.ties else "")
            return (f"Checked in llama.cpp: {self.identical_answers} of {self.prompts} sample answers identical to "
                    f"transformers' for {self.tokens} tokens{tie}.")
        said = (f"Checked in llama.cpp: {self.identical_answers} of {self.prompts} sample answers identical for "
                f"{self.tokens} tokens; {self.identical_token_share:.0%} of tokens the same, top-1 agreement "
                f"{self.top1_agreement:.0%}.")
        if not self.passed:
            said = "CHECK FAILED. " + said + " " + " ".join(self.differences[:3])
        return said

    def as_dict(self) -> dict:
        return {"quant": self.quant, "prompts": self.prompts, "tokens": self.tokens, "identical_answers": self.identical_answers,
                "identical_token_share": round(self.identical_token_share, 4), "top1_agreement": round(self.top1_agreement, 4),
                "tokenizer_agrees": self.tokenizer_agrees, "passed": self.passed, "summary": self.summary(),
                "answers": list(self.answers), "differences": list(self.differences), "ties": self.ties}


def _where(parameters: int) -> tuple[str, str]:
    """(device, dtype) for the reference: 32-bit (as llama.cpp computes) on a GPU with room for it, else on the
    CPU with room for it; else 16-bit, which needs no more memory than the merge itself did."""
    import psutil
    import torch

    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        if free > 4.4 * parameters:
            return "cuda", "float32"
    if psutil.virtual_memory().available > 4.6 * parameters:
        return "cpu", "float32"
    if torch.cuda.is_available() and torch.cuda.mem_get_info()[0] > 2.4 * parameters:
        return "cuda", "bfloat16"
    return "cpu", "bfloat16"


def reference_answers(model_dir: Path, prompts: list[str], chat_template: str | None, tokens: int = CHECK_TOKENS) -> Reference:
    """Greedy answers of the merged model in transformers, in 32 bits where memory allows (as llama.cpp computes)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.core.data.tokens import Renderer
    from studio.core.export.to_gguf.tensors import safetensors_index

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    renderer = Renderer(tokenizer, chat_template)
    parameters = sum(math.prod(shape) for _, shape in safetensors_index(Path(model_dir)).values())
    device, dtype = _where(parameters)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, dtype)).to(device).eval()
    texts, prompt_ids, answer_ids, answers, gaps = [], [], [], [], []
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # past_key_values' new name differs between transformers versions
        for prompt in prompts:
            text = renderer.render([{"role": "user", "content": prompt}], add_generation_prompt=True)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            out = model(torch.tensor([ids], device=device), use_cache=True)
            answer, gap = [], []
            for _ in range(tokens):  # greedy, past the end-of-turn token too: every answer has `tokens` tokens
                top = out.logits[0, -1].float().topk(2)
                token = int(top.indices[0])
                answer.append(token)
                gap.append(float(top.values[0] - top.values[1]))
                out = model(torch.tensor([[token]], device=device), past_key_values=out.past_key_values, use_cache=True)
            texts.append(text)
            prompt_ids.append(tuple(ids))
            answer_ids.append(tuple(answer))
            gaps.append(tuple(gap))
            answers.append(tokenizer.decode(answer, skip_special_tokens=False))
    del model
    return Reference(tuple(prompts), tuple(texts), tuple(prompt_ids), tuple(answer_ids), tuple(answers), exact=dtype == "float32",
                     gaps=tuple(gaps))


def common_prefix(a, b) -> int:
    """How many items two sequences share before they first differ."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def check_gguf(path: Path, quant: str, reference: Reference, *, exact: bool,
               cancelled: Callable[[], bool] | None = None, decode: Callable[[list[int]], str] | None = None) -> GgufCheck:
    """Load `path` in llama.cpp, answer the reference's prompts, and compare."""
    tokens = len(reference.answer_ids[0]) if reference.answer_ids else CHECK_TOKENS
    request = {"do": "answer", "model": str(path), "tokens": tokens,
               "prompts": [{"ids": list(ids), "reference": list(ref), "text": text}
                           for ids, ref, text in zip(reference.prompt_ids, reference.answer_ids, reference.texts, strict=True)]}
    got = run_llama(request, cancelled=cancelled)["answers"]
    identical = same = agree = split_same = ties = 0
    differences = []
    for i, (ref, answer) in enumerate(zip(reference.answer_ids, got, strict=True)):
        prefix = common_prefix(ref, answer["greedy"])
        same += prefix
        identical += prefix == len(ref)
        agree += sum(a == b for a, b in zip(answer["top1"], ref, strict=False))
        split_same += answer["tokenized"] == list(reference.prompt_ids[i])
        if answer["tokenized"] != list(reference.prompt_ids[i]):
            differences.append(f"Prompt {i + 1}: llama.cpp splits the prompt into other tokens than transformers "
                               f"({len(answer['tokenized'])} vs {len(reference.prompt_ids[i])}).")
        elif prefix < len(ref) and exact and reference.gaps and reference.gaps[i][prefix] < TIE_LOGITS:
            ties += 1
        elif prefix < len(ref):
            theirs = decode(list(ref[prefix:prefix + 4])) if decode else str(ref[prefix])
            ours = decode(answer["greedy"][prefix:prefix + 4]) if decode else str(answer["greedy"][prefix])
            differences.append(f"Prompt {i + 1}: the answers part after {prefix} tokens (transformers {theirs!r}, "
                               f"llama.cpp {ours!r}).")
    total = tokens * len(got) or 1
    return GgufCheck(quant, len(got), tokens, identical, same / total, agree / total, split_same, exact,
                     tuple(a["text"] for a in got), tuple(differences), ties)


def answer_with_gguf(path: Path, tokenizer_dir: Path, prompt: str, *, max_tokens: int = 128,
                     cancelled: Callable[[], bool] | None = None) -> str:
    """The exported file's own answer to a question, as a runner gives it: the prompt rendered with the chat
    template training used (the run's tokenizer), greedy, to the end of the turn. For the Try page."""
    from transformers import AutoTokenizer

    from studio.core.data.tokens import Renderer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    text = Renderer(tokenizer).render([{"role": "user", "content": prompt}], add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    stops = [i for i in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")) if isinstance(i, int) and i >= 0]
    got = run_llama({"do": "chat", "model": str(path), "ids": ids, "tokens": max_tokens, "stop_ids": stops}, cancelled=cancelled)
    return got["text"]
