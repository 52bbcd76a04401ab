"""The preference pairs a DPO or ORPO run trains on: every chat row that has a rejected answer becomes
{prompt, chosen, rejected} in TRL's conversational layout (the messages as the chat template takes
them, data/tokens.Renderer), and TRL's trainer tokenizes them with that template.

A row that cannot teach a preference is left out with its line and the reason: no usable rejected
answer (none, or one the loader found equal to the chosen answer and dropped, with its own warning:
data/preference.py), or a prompt that fills the sequence length by itself (no token of either answer
would be left to compare)."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.recipe import RunConfig
from studio.core.training.failures import RunFailure


@dataclass(frozen=True)
class LeftOut:
    line: int | None  # the row's line in its file
    reason: str


def preference_pairs(loaded, tokenizer, config: RunConfig):
    """(datasets.Dataset of prompt/chosen/rejected[/tools], [LeftOut]); RunFailure when no pair is usable."""
    from datasets import Dataset

    from studio.core.data import Renderer

    if loaded.dataset is None or "rejected" not in loaded.dataset.column_names:
        raise _no_pairs(config, "it holds no preference pairs (a chosen and a rejected answer per row)")
    renderer = Renderer(tokenizer)
    rows, left_out = [], []
    for row in loaded.dataset:
        pair, why = _pair(row, renderer, config.training.seq_len)
        if pair is None:
            left_out.append(LeftOut(row.get("line"), why))
        else:
            rows.append(pair)
    if not rows:
        first = f" (line {left_out[0].line}: {left_out[0].reason})" if left_out else ""
        raise _no_pairs(config, f"none of its {len(left_out)} rows is a usable preference pair{first}")
    if not any("tools" in r for r in rows):
        return Dataset.from_list(rows), left_out
    return Dataset.from_list([{**r, "tools": r.get("tools")} for r in rows]), left_out


def _no_pairs(config: RunConfig, why: str) -> RunFailure:
    method = config.training.method.upper()
    return RunFailure("bad_input", f"{method} needs preference pairs, but {why}.",
                      "Choose data with a chosen and a rejected answer per row (e.g. prompt / chosen / rejected), "
                      "or train with --method sft.", topic="data")


def _pair(row: dict, renderer, seq_len: int) -> tuple[dict | None, str]:
    """A row as {prompt, chosen, rejected} messages, or (None, why it teaches no preference)."""
    turns, rejected = row["messages"], row.get("rejected") or []
    if not any(str(t.get("content") or "").strip() or t.get("tool_calls") for t in rejected):
        return None, "it has no usable rejected answer (none, or the same as the chosen one)"
    cut = max(i for i, t in enumerate(turns) if t["role"] == "user") + 1 if any(t["role"] == "user" for t in turns) else 0
    prompt, chosen = turns[:cut], turns[cut:]
    messages, tools = renderer.template_messages(prompt, row.get("tools"))
    prompt_tokens = len(renderer.tokenizer(renderer.render(prompt, add_generation_prompt=True, tools=row.get("tools")),
                                           add_special_tokens=False)["input_ids"])
    if prompt_tokens >= seq_len:
        return None, (f"its prompt is {prompt_tokens:,} tokens, as long as the sequence length ({seq_len:,}) or longer: "
                      "no token of the answers would be left to compare")
    pair = {"prompt": messages, "chosen": _messages(renderer, chosen), "rejected": _messages(renderer, rejected)}
    if tools:
        import json

        pair["tools"] = json.dumps(tools)
    return pair, ""


def _messages(renderer, turns: list[dict]) -> list[dict]:
    return renderer.template_messages(turns, None, native=renderer.tools_native)[0]
