"""The tokenizer inside the GGUF file, so a runner needs no other file: every token with its kind, the
merges, how text is split before merging (llama.cpp's `tokenizer.ggml.pre`), BOS/EOS/pad ids and the
chat template training used. The `gguf` package reads the special ids, merges and SentencePiece-style
vocabularies (SpecialVocab, LlamaHfVocab); the post-export check (check.py) proves that llama.cpp then
splits the sample prompts into the very tokens transformers does."""

from __future__ import annotations

import json
import re
from pathlib import Path

from studio.core.errors import StudioError

# The split pattern of a byte-level BPE tokenizer (tokenizer.json) → llama.cpp's name for it. The patterns
# are those llama.cpp's llama-vocab.cpp records as "original regex from tokenizer.json" for each name.
_LETTERS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_TAIL = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
PRE_TOKENIZERS = {
    _LETTERS + r"\p{N}{1,3}" + _TAIL: "llama-bpe",  # Llama 3.x
    _LETTERS + r"\p{N}" + _TAIL: "qwen2",  # Qwen2, Qwen2.5, Qwen3
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+": "gpt-2",  # GPT-2 byte level (the demo)
}
# Marks of transformers' assistant-mask extension: they mean nothing to a runner's template engine.
_GENERATION_TAGS = re.compile(r"\{%-?\s*(end)?generation\s*-?%\}")


def runner_chat_template(template: str) -> str:
    """The training chat template as runners read it: without `{% generation %}` blocks' tags."""
    return _GENERATION_TAGS.sub("", template)


def _split_patterns(pre: dict | None) -> list[str]:
    if not pre:
        return []
    if pre.get("type") == "Sequence":
        return [p for item in pre.get("pretokenizers", []) for p in _split_patterns(item)]
    if pre.get("type") == "Split":
        pattern = pre.get("pattern") or {}
        return [pattern.get("Regex") or re.escape(pattern.get("String", ""))]
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return [r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"]
    return []


def pre_tokenizer_name(tokenizer_json: dict) -> str:
    patterns = _split_patterns(tokenizer_json.get("pre_tokenizer"))
    if len(patterns) == 1 and patterns[0] in PRE_TOKENIZERS:
        return PRE_TOKENIZERS[patterns[0]]
    raise StudioError("This model's tokenizer splits text in a way the GGUF export does not know how to tell llama.cpp "
                      f"(its pattern: {patterns[0] if patterns else 'none'}).",
                      "Export the merged model instead (--merged) and convert it with llama.cpp's convert_hf_to_gguf.py.",
                      topic="model")


def _byte_level_tokens(tokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    import gguf

    added = {i: t for i, t in tokenizer.added_tokens_decoder.items()}
    vocab = {i: t for t, i in tokenizer.get_vocab().items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in added:
            tokens.append(added[i].content)
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        elif i in vocab:
            tokens.append(vocab[i])
            types.append(gguf.TokenType.NORMAL)
        else:  # the embedding has rows the tokenizer never produces
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    return tokens, types


def _merge_scores(model: dict) -> dict[bytes, float]:
    """Scores that make llama.cpp merge in transformers' order. llama.cpp's SentencePiece tokenizer joins the
    neighbouring pair whose joined piece scores highest; a BPE joins its lowest-ranked merge. So a piece scores
    minus the rank of the first merge that makes it. (gguf.LlamaHfVocab gives every piece the same score,
    and llama.cpp then joins the leftmost pair first: " les" became "▁le" "s" where transformers says "▁l" "es".)"""
    scores: dict[bytes, float] = {}
    for rank, merge in enumerate(model.get("merges") or []):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        scores.setdefault((left + right).encode("utf-8"), -float(rank))
    return scores


def _sentencepiece_tokens(folder: Path, vocab_size: int, model: dict) -> tuple[list[bytes], list[int], list[float]]:
    import gguf

    vocab = gguf.LlamaHfVocab(folder)
    merged = _merge_scores(model)
    tokens, scores, types = [], [], []
    for text, score, kind in vocab.all_tokens():
        tokens.append(text)
        scores.append(merged.get(text, score) if kind == gguf.TokenType.NORMAL else score)
        types.append(kind)
    for i in range(len(tokens), vocab_size):
        tokens.append(f"[PAD{i}]".encode())
        scores.append(-1000.0)
        types.append(gguf.TokenType.UNUSED)
    return tokens[:vocab_size], types[:vocab_size], scores[:vocab_size]


def _adds_space_prefix(tokenizer_json: dict) -> bool:
    """Whether a SentencePiece-style tokenizer puts '▁' before the text (Llama 2, Mistral) or not (Gemma)."""
    def steps(part: dict | None) -> list[dict]:
        if not part:
            return []
        return [s for item in part.get("normalizers") or part.get("pretokenizers") or [] for s in steps(item)] \
            if part.get("type") == "Sequence" else [part]
    for step in steps(tokenizer_json.get("normalizer")) + steps(tokenizer_json.get("pre_tokenizer")):
        if step.get("type") == "Prepend" and step.get("prepend") == "\u2581":
            return True
        if step.get("type") == "Metaspace":  # "first": '▁' before the text's very start only, never after a special
            # token. llama.cpp puts it after every special token or none, and a rendered chat prompt starts with one.
            return step.get("prepend_scheme", "always") == "always" and step.get("add_prefix_space", True)
    return False


# llama.cpp cannot read which special tokens swallow the whitespace after them (tokenizer.json's `rstrip`) from
# a GGUF file. It gives that to every special token except these (and </s>) when general.name says "phi3" or
# "phi-3", as Phi-3's tokenizer has it; to none otherwise. It also looks these and </s> up then, and stops
# loading ("unordered_map::at") when one is missing.
_PHI3_NAME = re.compile(r"phi-?3", re.IGNORECASE)
_PHI3_KEEP = ("<unk>", "<s>", "<|endoftext|>")


def llama_cpp_name(name: str, folder: Path) -> str:
    """The model's name as written in general.name: with "Phi-3" in it exactly when llama.cpp should treat the
    special tokens as Phi-3's (most of them swallow the whitespace after them), so llama.cpp splits a prompt
    as transformers does; a name that says phi3 of any other tokenizer loses the word."""
    path = Path(folder) / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    added = data.get("added_tokens") or []
    known = set((data.get("model") or {}).get("vocab") or {}) | {t["content"] for t in added}
    phi3_rule = sum(bool(t.get("rstrip")) == (t["content"] not in _PHI3_KEEP) for t in added)
    no_rule = sum(not t.get("rstrip") for t in added)
    wanted = phi3_rule > no_rule and known.issuperset(_PHI3_KEEP + ("</s>",))
    said = bool(_PHI3_NAME.search(name))
    if wanted and not said:
        return f"{name} (Phi-3 tokenizer)"
    if said and not wanted:
        return _PHI3_NAME.sub(lambda m: m.group(0)[:3] + " 3", name)
    return name


def add_vocab(writer, folder: Path, vocab_size: int, chat_template: str | None) -> str:
    """Write the tokenizer in `folder` (tokenizer.json and its config) into the GGUF; its kind, for the summary."""
    import gguf
    from transformers import AutoTokenizer

    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        raise StudioError("The GGUF export needs the tokenizer's tokenizer.json, and this model has none.",
                          "Export the merged model instead (--merged).", topic="model")
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    byte_level = model.get("type") == "BPE" and not model.get("byte_fallback") and (data.get("decoder") or {}).get("type") == "ByteLevel"
    if byte_level:
        tokens, types = _byte_level_tokens(AutoTokenizer.from_pretrained(str(folder)), vocab_size)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(pre_tokenizer_name(data))
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        kind = "byte-level BPE"
    elif model.get("type") == "BPE" and model.get("byte_fallback"):
        tokens, types, scores = _sentencepiece_tokens(Path(folder), vocab_size, model)
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        writer.add_token_list(tokens)
        writer.add_token_scores(scores)
        writer.add_token_types(types)
        writer.add_add_space_prefix(_adds_space_prefix(data))
        kind = "SentencePiece (BPE with byte fallback)"
    else:
        raise StudioError(f"The GGUF export does not know this model's tokenizer (a {model.get('type')} model).",
                          "Export the merged model instead (--merged) and convert it with llama.cpp's convert_hf_to_gguf.py.",
                          topic="model")
    import logging

    quiet = logging.getLogger("gguf.vocab")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # SpecialVocab's notes about post-processor templates are not for people
    try:
        special = gguf.SpecialVocab(Path(folder), load_merges=byte_level, n_vocab=vocab_size)
    finally:
        quiet.setLevel(level)
    if chat_template:
        special.chat_template = runner_chat_template(chat_template)
    special.add_to_gguf(writer, quiet=True)
    return kind
