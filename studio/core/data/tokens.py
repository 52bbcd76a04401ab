"""From conversations to what the model sees: token ids and the loss mask, with the chat template.

Labels are -100 everywhere except the assistant's turns (assistant-only loss, the default for chat
data; a switch puts the loss on every token). The assistant's span is found by rendering the
conversation up to each answer: the text the template adds for "assistant, your turn" belongs to
the prompt, the answer and the template's end-of-turn marker belong to the answer, so the model
learns to stop. Works with any template, with no special markers needed in it.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100

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
    """Renders conversations with one chat template (compiled once: inspection renders millions)."""

    def __init__(self, tokenizer, template: str | None = None):
        self.tokenizer = tokenizer
        own, self.is_default = chat_template_of(tokenizer)
        self.template = template or own
        if template:
            self.is_default = template == DEFAULT_CHAT_TEMPLATE

    def render(self, turns: list[dict], add_generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(
            turns, chat_template=self.template, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def render_many(self, conversations: list[list[dict]]) -> list[str]:
        """Render a batch at once: transformers compiles the template once and loops in one call."""
        if not conversations:
            return []
        return self.tokenizer.apply_chat_template(conversations, chat_template=self.template, tokenize=False)


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


def assistant_spans(renderer: Renderer, turns: list[dict], full: str) -> list[tuple[int, int]]:
    """Character spans of `full` that belong to the assistant's answers (end-of-turn markers included)."""
    spans = []
    search_from = 0
    for k, turn in enumerate(turns):
        if turn["role"] != "assistant":
            continue
        before = renderer.render(turns[:k], add_generation_prompt=True)
        through = renderer.render(turns[: k + 1])
        if full.startswith(before) and full.startswith(through) and len(through) > len(before):
            spans.append((len(before), len(through)))
            search_from = len(through)
            continue
        # Templates that rewrite earlier turns (dates, stripped reasoning) are not prefix-stable:
        # then the answer's own text, found in order, is what is trained.
        start = full.find(turn["content"], search_from)
        if start < 0:
            continue
        end = start + len(turn["content"])
        eos = getattr(renderer.tokenizer, "eos_token", None)
        if eos and full.startswith(eos, end):
            end += len(eos)
        spans.append((start, end))
        search_from = end
    return spans


def encode_conversation(renderer: Renderer, turns: list[dict], *, assistant_only: bool = True,
                        max_length: int | None = None) -> Encoded:
    tokenizer = renderer.tokenizer
    full = renderer.render(turns)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    if assistant_only:
        spans = assistant_spans(renderer, turns, full)
        labels = [IGNORE_INDEX] * len(ids)
        j = 0
        for i, (start, end) in enumerate(offsets):
            while j < len(spans) and spans[j][1] <= start:
                j += 1
            if j < len(spans) and start < spans[j][1] and end > spans[j][0]:
                labels[i] = ids[i]
    else:
        labels = list(ids)
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, labels, offsets = ids[:max_length], labels[:max_length], offsets[:max_length]
    return Encoded(ids, labels, full, offsets, truncated)


def encode_text(tokenizer, text: str, *, max_length: int | None = None) -> Encoded:
    """Raw text (continued pretraining): the loss is on every token; the document ends with EOS."""
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids.append(tokenizer.eos_token_id)
        offsets.append((len(text), len(text)))
    truncated = max_length is not None and len(ids) > max_length
    if truncated:
        ids, offsets = ids[:max_length], offsets[:max_length]
    return Encoded(ids, list(ids), text, offsets, truncated)


def marked_segments(encoded: Encoded) -> list[dict]:
    """The rendered text cut into runs of trained / not-trained characters (for previews)."""
    segments: list[dict] = []
    cursor = 0
    text = encoded.text
    for (start, end), label in zip(encoded.offsets, encoded.labels):
        if end <= start:
            continue
        if start > cursor:  # characters no token covers (rare): shown as not trained
            _append(segments, text[cursor:start], False)
        _append(segments, text[max(start, cursor):end], label != IGNORE_INDEX)
        cursor = max(cursor, end)
    if encoded.truncated:
        if cursor < len(text):
            _append(segments, text[cursor:], False)
            segments[-1]["cut"] = True
    elif cursor < len(text):
        _append(segments, text[cursor:], False)
    return segments


def _append(segments: list[dict], text: str, trained: bool) -> None:
    if not text:
        return
    if segments and segments[-1]["trained"] == trained and not segments[-1].get("cut"):
        segments[-1]["text"] += text
    else:
        segments.append({"text": text, "trained": trained})
