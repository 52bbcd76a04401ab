"""What the data is, in words: the layout detected and what training does with it.

"preference pairs: 100 rows, trained on the chosen answer (the rejected one kept for preference
tuning)". The loader counts the kinds of row it keeps (row_kinds) and the rows it leaves out on
purpose; `describe` says them for the report, the command line and the Data page.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.wording import count


def row_kinds(row: dict, warnings) -> list[str]:
    """The kinds of one kept chat row: "tool_calls", "tool_schema", "preference", "reasoning", "media_ignored"."""
    turns = row["messages"]
    kinds = []
    if any(t["tool_calls"] for t in turns):
        kinds.append("tool_calls")
    if row.get("tools"):
        kinds.append("tool_schema")
    if row.get("rejected"):
        kinds.append("preference")
    if any(t["reasoning"] for t in turns):
        kinds.append("reasoning")
    if any(w.kind == "media_ignored" for w in warnings):
        kinds.append("media_ignored")
    return kinds


def pair_count(loaded) -> int:
    """The preference pairs of loaded data (`LoadedData`): the kept rows with a rejected answer beside
    the chosen one, what DPO and ORPO train on."""
    return int(loaded.kinds.get("preference", 0))


@dataclass(frozen=True)
class Layout:
    name: str  # "preference pairs", "KTO-labelled answers", "tool calling", "conversations", "text", …
    words: str  # the whole sentence shown
    trained: str  # what training learns from each row

    def as_dict(self) -> dict:
        return {"name": self.name, "words": self.words, "trained": self.trained}


def describe(choice, kinds: dict, rows: int, text_split: str | None = None) -> Layout:
    """The layout of loaded data: its name, with the rows counted and what is trained (`text_split`:
    how text files became documents, in the loader's words)."""
    base = _base_name(choice)
    if choice.format == "text":
        split = f", {text_split}" if text_split else ""
        return Layout(base, f"{base}{split}: {count(rows, 'document')}, every token trained", "every token")
    if choice.label:
        left = kinds.get("undesirable", 0)
        words = f"answers labelled good or bad (KTO, '{choice.label}'): {count(rows, 'desirable row')} trained"
        words += f", {count(left, 'undesirable row')} left out" if left else ""
        return Layout("KTO-labelled answers", words, "the answers labelled desirable")
    if choice.rejected:
        missing = rows - kinds.get("preference", 0)
        words = (f"preference pairs ('{choice.chosen}' over '{choice.rejected}'): {count(rows, 'row')}; supervised training "
                 "learns the chosen answer (the rejected one is never trained), preference tuning (DPO, ORPO) teaches "
                 "the model to prefer it over the rejected one")
        words += f" ({count(missing, 'row')} without a usable rejected answer)" if missing > 0 else ""
        return Layout("preference pairs", words, "the chosen answer")
    words = f"{base}: {count(rows, 'row')}, trained on the assistant's answers"
    extra = _tool_words(kinds) + _other_words(kinds)
    return Layout("tool calling" if kinds.get("tool_calls") else base, "; ".join([words] + extra), "the assistant's answers")


def _base_name(choice) -> str:
    return {"alpaca": "instruction / input / output (alpaca)", "sharegpt": "conversations (ShareGPT from/value turns)",
            "messages": "conversations (role/content messages)", "prompt_completion": "prompt and answer columns",
            "text": "plain text"}[choice.format]


def _tool_words(kinds: dict) -> list[str]:
    calls, schema = kinds.get("tool_calls", 0), kinds.get("tool_schema", 0)
    words = [f"tool calls in {calls:,} of them (trained; the tools' results are read as prompt)"] if calls else []
    if schema:
        words.append(f"a tool schema in {schema:,} (it goes into the prompt)")
    return words


def _other_words(kinds: dict) -> list[str]:
    words = []
    if kinds.get("reasoning"):
        words.append(f"reasoning before the answer in {kinds['reasoning']:,} (trained)")
    if kinds.get("media_ignored"):
        words.append(f"images ignored in {kinds['media_ignored']:,} (the model reads text only)")
    return words
