"""The run's data as the trainer takes it: token ids and labels, split into training and held-out
rows, and the prompts answered as samples while it trains. Chat rows longer than the sequence
length lose their end; raw text is cut into sequence-length chunks that are all trained."""

from __future__ import annotations

from studio.core.recipe import RunConfig
from studio.core.training.failures import RunFailure

DEFAULT_SAMPLE_PROMPTS = 2  # rows of the eval split (or the data) used as sample prompts when none are set


def recipe_data(config: RunConfig):
    """The recipe's data, read as its [data] section says (data.LoadedData; StudioError when unusable)."""
    from studio.core.data import load_data

    d = config.data
    return load_data(d.source, fmt=d.format, mapping=d.mapping, skip_bad_rows=d.skip_bad_rows, split=d.split,
                     subset=d.subset, text_split=d.text_split)


def tokenized_splits(loaded, tokenizer, config: RunConfig):
    """(train, eval or None, dropped_without_targets) as datasets of input_ids/labels."""
    if "text" in loaded.dataset.column_names:  # documents are held out before chunking: no document on both sides
        train_docs, eval_docs = split_rows(loaded.dataset, config)
        seq_len = config.training.seq_len
        eval_ds = _text_chunks(eval_docs, tokenizer, seq_len) if eval_docs is not None else None
        return _bare(_text_chunks(train_docs, tokenizer, seq_len)), _bare(eval_ds), 0
    tokenized = _tokenized(loaded.dataset, tokenizer, config)
    kept = tokenized.filter(lambda row: row["trained"] > 0)
    dropped = len(tokenized) - len(kept)
    if len(kept) == 0:
        raise RunFailure("bad_input", f"After cutting examples to {config.training.seq_len} tokens, none has an answer "
                         "left to learn from.", "Raise the sequence length (--seq-len), or shorten the prompts.", topic="data")
    train_ds, eval_ds = split_rows(kept, config)
    return _bare(train_ds), _bare(eval_ds), dropped


def split_rows(dataset, config: RunConfig):
    """(training rows, held-out rows or None): the recipe's share, drawn with the run's seed."""
    n_eval = config.data.held_out_rows(len(dataset))
    if not n_eval:
        return dataset, None
    split = dataset.train_test_split(test_size=n_eval, seed=config.training.seed, shuffle=True)
    return split["train"], split["test"]


def _tokenized(dataset, tokenizer, config: RunConfig):
    from studio.core.data import IGNORE_INDEX, Renderer, encode_row

    renderer = Renderer(tokenizer)
    seq_len, assistant_only = config.training.seq_len, config.data.assistant_only

    def encode(row):
        enc = encode_row(row, renderer, assistant_only=assistant_only, max_length=seq_len)
        return {"input_ids": enc.input_ids, "labels": enc.labels,
                "trained": sum(1 for label in enc.labels if label != IGNORE_INDEX)}

    return dataset.map(encode, remove_columns=[c for c in dataset.column_names if c != "line"], desc="tokenizing")


def _text_chunks(dataset, tokenizer, seq_len: int):
    """Raw text (continued pretraining): every document cut into consecutive chunks of at most seq_len
    tokens, each a row with the loss on every token — nothing is cut off (data/chunks.py has the rule
    for a document's last, short chunk)."""
    from studio.core.data.chunks import document_chunks, document_ids, map_batch_rows
    from studio.core.data.stats import row_sizes

    def encode(batch):
        out: dict[str, list] = {"input_ids": [], "labels": [], "trained": [], "line": []}
        for ids, line in zip(document_ids(tokenizer, batch["text"]), batch["line"], strict=True):
            for chunk in document_chunks(ids, seq_len):
                out["input_ids"].append(chunk)
                out["labels"].append(chunk)
                out["trained"].append(len(chunk))
                out["line"].append(line)
        return out

    chars = row_sizes(dataset)[0]
    return dataset.map(encode, batched=True, batch_size=map_batch_rows(int(chars.max()) if len(chars) else 0),
                       remove_columns=dataset.column_names, desc="tokenizing")


def _bare(dataset):
    """Only what the trainer reads (input_ids, labels)."""
    if dataset is None:
        return None
    return dataset.remove_columns([c for c in ("trained", "line") if c in dataset.column_names])


def sample_prompts(config: RunConfig, loaded) -> list:
    """The fixed prompts answered during training: the recipe's, or the first held-out conversations."""
    if config.training.sample_prompts:
        return list(config.training.sample_prompts)
    if not loaded.is_chat:
        return []
    prompts = []
    longest = 4 * config.training.seq_len  # characters: about the sequence length in tokens; a longer prompt is no sample
    for row in loaded.dataset.select(range(min(len(loaded.dataset), 200))):
        turns = row["messages"]
        short = sum(len(str(t["content"])) for t in turns[:-1]) <= longest
        plain = all(t["role"] in ("system", "user", "assistant") and not t.get("tool_calls") for t in turns)
        if short and plain and sum(t["role"] == "user" for t in turns) == 1:  # a single question reads well as a sample
            prompts.append([{"role": t["role"], "content": t["content"]} for t in turns[:-1]])
        if len(prompts) == DEFAULT_SAMPLE_PROMPTS:
            break
    return prompts
