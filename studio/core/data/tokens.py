"""From conversations to what the model sees: token ids and the loss mask, with the chat template.

Labels are -100 everywhere except the assistant's turns (assistant-only loss, the default for chat
data; a switch puts the loss on every token). The assistant's span is found by rendering the
conversation up to each answer: the text the template adds for "assistant, your turn" belongs to
the prompt, the answer and the template's end-of-turn marker belong to the answer, so the model
learns to stop. Works with any template, with no special markers needed in it.

A row far longer than the sequence length is tokenized only as far as training keeps it (see
tokenize_start), and a preview shows a long text shortened, with a note of what it leaves out.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100

# A text longer than (tokens kept + PREFIX_MARGIN_TOKENS) × PREFIX_CHARS_PER_TOKEN characters is
# tokenized from a prefix of that size (×4 until the prefix holds enough tokens; English BPE needs
# 3–5 characters a token). Tokens never depend on text more than a few tokens after them, so the
# margin keeps the cut at the prefix's end from changing any token that is kept.
PREFIX_CHARS_PER_TOKEN = 8
PREFIX_MARGIN_TOKENS = 64
# Previews (the examples of `studio data inspect` and the Data page) show long texts shortened.
SHOWN_RUN_CHARS = 6_000  # a longer run of trained or untrained text shows its start and its end
SHOWN_HEAD, SHOWN_TAIL = 4_000, 1_000
SHOWN_CUT_CHARS = 500  # of the text the sequence length cuts, this much is shown
SHOWN_EXAMPLE_CHARS = 20_000  # past this, the rest of an example is one note

# For base models that ship no chat template: plain text, no new special tokens (so no embedding
# needs to be resized or trained), and the tokenizer's end-of-sequence token after every answer.
# It is saved with the adapter, so inference later renders prompts exactly as training did.
DEFAULT_CHAT_TEMPLATE = (
    "{{ bos_token if bos_token else '' }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{ '### System:\n' + message['content'] + '\n\n' }}"
    "{%- elif message['role'] == 'user' %}{{ '### User:\n' + message['content'] + '\n\n' }}"
    "{%- else %}{{ '### Assistant:\n' + message['content'] + (eos_token if eos_token else '') + '\n\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '### Assistant:\n' }}{%- endif %}"
)


def chat_template_of(tokenizer) -> tuple[str, bool]:
    """(template, is_default): the tokenizer's own chat template, or the studio's default one."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one is what chat uses
        template = template.get("default") or next(iter(template.values()), None)
    if template:
        return template, False
    return DEFAULT_CHAT_TEMPLATE, True


class Renderer:
    """Renders conversations with one chat template (compiled once: inspection renders millions).

    Stored turns become the template's messages here (template_messages): tool calls in the template's
    own form when the template has tool support (it mentions `tool_calls`), else in the plain rendering
    of tool_calls.plain_turns; reasoning as `reasoning_content` where the template reads it, else as
    <think>…</think> before the answer."""

    def __init__(self, tokenizer, template: str | None = None):
        self.tokenizer = tokenizer
        own, self.is_default = chat_template_of(tokenizer)
        self.template = template or own
        if template:
            self.is_default = template == DEFAULT_CHAT_TEMPLATE
        self.tools_native = "tool_calls" in self.template
        self.reasoning_native = "reasoning_content" in self.template

    def render(self, turns: list[dict], add_generation_prompt: bool = False, tools=None) -> str:
        messages, tools = self.template_messages(turns, tools)
        native = self.tools_native and (tools is not None or any(m.get("tool_calls") or m["role"] == "tool" for m in messages))
        try:
            return self._apply(messages, tools, add_generation_prompt)
        except Exception:
            if not native:
                raise
        # The template claims tool support but refuses this conversation: the plain rendering.
        return self._apply(*self.template_messages(turns, tools, native=False), add_generation_prompt)

    def _apply(self, messages: list[dict], tools, add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tools=tools, chat_template=self.template, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)

    def render_many(self, conversations: list[list[dict]], tools: list | None = None) -> list[str]:
        """Render a batch: transformers compiles the template once and loops in one call per set of
        tools (rows with the same tools, or none, together)."""
        import json

        tools = tools or [None] * len(conversations)
        groups: dict[str, list[int]] = {}  # the rows of each set of tools (as JSON), by their index
        prepared = [self.template_messages(c, t) for c, t in zip(conversations, tools, strict=True)]
        for i, (_, row_tools) in enumerate(prepared):
            groups.setdefault(json.dumps(row_tools), []).append(i)
        out: list[str] = [""] * len(conversations)
        for rows in groups.values():
            try:
                texts = self.tokenizer.apply_chat_template([prepared[i][0] for i in rows], tools=prepared[rows[0]][1],
                                                           chat_template=self.template, tokenize=False)
            except Exception:  # a row the template refuses: each row as render() does it
                texts = [self.render(conversations[i], tools=tools[i]) for i in rows]
            for i, text in zip(rows, texts, strict=True):
                out[i] = text
        return out

    def template_messages(self, turns: list[dict], tools=None, *, native: bool | None = None) -> tuple[list[dict], list | None]:
        """(messages, tools) as the template takes them, from stored turns and a row's tools (a JSON string)."""
        from studio.core.data import tool_calls

        native = self.tools_native if native is None else native
        tools = tool_calls.normalize_tools(tools)
        messages = [self._message(t, native) for t in turns]
        if native:
            return messages, tools
        return tool_calls.plain_turns(messages, tools), None

    def _message(self, turn: dict, native: bool) -> dict:
        from studio.core.data import tool_calls

        message = {"role": turn["role"], "content": turn["content"]}
        calls = turn.get("tool_calls")
        if calls:
            calls = tool_calls.normalize_calls(calls)
            message["tool_calls"] = tool_calls.template_calls(calls) if native else calls
        reasoning = turn.get("reasoning")
        if reasoning:
            if self.reasoning_native:
                message["reasoning_content"] = reasoning
            else:
                message["content"] = f"<think>\n{reasoning}\n</think>\n\n{message['content']}"
        return message


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    text: str
    offsets: list[tuple[int, int]]
    truncated: bool = False

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def assistant_spans(renderer: Renderer, turns: list[dict], full: str, tools=None) -> list[tuple[int, int]]:
    """Character spans of `full` that belong to the assistant's answers (end-of-turn markers and tool
    calls included); a turn marked `train: False` (an empty answer) is left out."""
    spans = []
    search_from = 0
    for k, turn in enumerate(turns):
        if turn["role"] != "assistant" or turn.get("train") is False:
            continue
        before = renderer.render(turns[:k], add_generation_prompt=True, tools=tools)
        through = full if k == len(turns) - 1 else renderer.render(turns[: k + 1], tools=tools)  # (a huge answer: one render less)
        if full.startswith(before) and full.startswith(through) and len(through) > len(before):
            spans.append((len(before), len(through)))
            search_from = len(through)
            continue
        # Templates that rewrite earlier turns (dates, stripped reasoning) are not prefix-stable:
        # then the answer as the template writes it last is found in order, less what only a last
        # answer gets (a reasoning block), else the answer's own text.
        found = _find_answer(full, through[len(before):] if through.startswith(before) else "", turn, search_from)
        if found is None:
            continue
        start, end = found
        eos = getattr(renderer.tokenizer, "eos_token", None)
        if eos and full.startswith(eos, end):
            end += len(eos)
        spans.append((start, end))
        search_from = end
    return spans


def _find_answer(full: str, rendered: str, turn: dict, search_from: int) -> tuple[int, int] | None:
    """Where a turn's answer is in `full`: the longest tail of its rendering (whole lines dropped from
    the front) that occurs after `search_from`, or its content."""
    import json

    names = [c.get("name", "") for c in json.loads(turn.get("tool_calls") or "[]")]
    lines = rendered.split("\n")
    for i in range(len(lines)):
        tail = "\n".join(lines[i:])
        if turn["content"].strip() not in tail or not all(name in tail for name in names) or not tail.strip():
            break
        start = full.find(tail, search_from)
        if start >= 0:
            return start, start + len(tail)
    if not turn["content"]:
        return None
    start = full.find(turn["content"], search_from)
    return None if start < 0 else (start, start + len(turn["content"]))


def batch_encoder(tokenizer):
    """The Rust tokenizer's batch encoder (both cores, no offsets: the fast way to count or list ids),
    or None for a tokenizer without one."""
    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    return getattr(backend, "encode_batch_fast", None) or getattr(backend, "encode_batch", None)


def _tokenize(tokenizer, text: str, add_special_tokens: bool) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def tokenize_start(tokenizer, text: str, keep: int | None, *, add_special_tokens: bool):
    """(ids, offsets, complete): the tokens of `text`, or, when it is far longer than `keep` tokens,
    the first keep + 1 of them (the one more says "longer than keep") from a prefix of the text."""
    size = len(text) if keep is None else (keep + PREFIX_MARGIN_TOKENS) * PREFIX_CHARS_PER_TOKEN
    while size < len(text):
        ids, offsets = _tokenize(tokenizer, text[:size], add_special_tokens)
        if len(ids) > keep + PREFIX_MARGIN_TOKENS:
            return ids[:keep + 1], offsets[:keep + 1], False
        size *= 4
    ids, offsets = _tokenize(tokenizer, text, add_special_tokens)
    return ids, offsets, True


def _assistant_labels(ids, offsets, spans) -> list[int]:
    labels = [IGNORE_INDEX] * len(ids)
    j = 0
    for i, (start, end) in enumerate(offsets):
        while j < len(spans) and spans[j][1] <= start:
            j += 1
        if j < len(spans) and start < spans[j][1] and end > spans[j][0]:
            labels[i] = ids[i]
    return labels


def encode_conversation(renderer: Renderer, turns: list[dict], *, assistant_only: bool = True,
                        max_length: int | None = None, tools=None) -> Encoded:
    full = renderer.render(turns, tools=tools)
    ids, offsets, _ = tokenize_start(renderer.tokenizer, full, max_length, add_special_tokens=False)
    spans = assistant_spans(renderer, turns, full, tools) if assistant_only else None
    labels = _assistant_labels(ids, offsets, spans) if assistant_only else list(ids)
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, labels, offsets = ids[:max_length], labels[:max_length], offsets[:max_length]
    return Encoded(ids, labels, full, offsets, truncated)


def encode_text(tokenizer, text: str, *, max_length: int | None = None) -> Encoded:
    """Raw text (continued pretraining): the loss is on every token; the document ends with EOS."""
    ids, offsets, complete = tokenize_start(tokenizer, text, max_length, add_special_tokens=True)
    if complete and tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids.append(tokenizer.eos_token_id)
        offsets.append((len(text), len(text)))
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, offsets = ids[:max_length], offsets[:max_length]
    return Encoded(ids, list(ids), text, offsets, truncated)


def marked_segments(encoded: Encoded) -> list[dict]:
    """The rendered text cut into runs of trained / not-trained characters, for previews: a long run
    shows its start and end, the text the sequence length cuts shows its start ("cut"), and a note
    segment ("note", "hidden": its character count) stands for what is left out."""
    runs, cursor = _runs(encoded)
    text = encoded.text
    if cursor < len(text) and not encoded.truncated:
        _add_run(runs, cursor, len(text), False)
    segments: list[dict] = []
    shown = 0
    for start, end, trained in runs:
        if shown >= SHOWN_EXAMPLE_CHARS:
            segments.append(_note(len(text) - start, " of this example"))
            return segments
        shown += _show_run(segments, text, start, end, trained)
    if encoded.truncated and cursor < len(text):
        segments.append({"text": text[cursor:cursor + SHOWN_CUT_CHARS], "trained": False, "cut": True})
        hidden = len(text) - cursor - len(segments[-1]["text"])
        if hidden:
            segments.append(_note(hidden, ", cut by the sequence length,"))
    return segments


def _runs(encoded: Encoded) -> tuple[list[tuple[int, int, bool]], int]:
    """(start, end, trained) character runs covered by the kept tokens, and where they end."""
    runs: list[tuple[int, int, bool]] = []
    cursor = 0
    for (start, end), label in zip(encoded.offsets, encoded.labels, strict=False):
        if end <= start:
            continue
        if start > cursor:  # characters no token covers (rare): shown as not trained
            _add_run(runs, cursor, start, False)
        _add_run(runs, max(start, cursor), end, label != IGNORE_INDEX)
        cursor = max(cursor, end)
    return runs, cursor


def _add_run(runs: list, start: int, end: int, trained: bool) -> None:
    if end <= start:
        return
    if runs and runs[-1][2] == trained and runs[-1][1] == start:
        runs[-1] = (runs[-1][0], end, trained)
    else:
        runs.append((start, end, trained))


def _show_run(segments: list[dict], text: str, start: int, end: int, trained: bool) -> int:
    """Append one run, shortened when long; returns how many characters it shows."""
    if end - start <= SHOWN_RUN_CHARS:
        segments.append({"text": text[start:end], "trained": trained})
        return end - start
    hidden = end - start - SHOWN_HEAD - SHOWN_TAIL
    segments.append({"text": text[start:start + SHOWN_HEAD], "trained": trained})
    segments.append(_note(hidden))
    segments.append({"text": text[end - SHOWN_TAIL:end], "trained": trained})
    return SHOWN_HEAD + SHOWN_TAIL


def _note(hidden: int, why: str = "") -> dict:
    """A segment that stands for `hidden` characters left out of a preview."""
    return {"text": f" [… {hidden:,} more characters{why} not shown …] ", "trained": False, "note": True, "hidden": hidden}
