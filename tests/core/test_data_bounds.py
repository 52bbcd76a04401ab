"""Hostile data: one huge field, files that are a model rather than a dataset, a sequence length of 0.

Inspection and training must stay within a memory and time bound that does not grow with one
field's size (see studio/core/data/__init__.py), show long examples shortened with a note, and
refuse what is clearly not training data with a message that says what it is."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.core.data import (
    IGNORE_INDEX,
    Renderer,
    encode_row,
    inspect_data,
    load_data,
    stats,
)
from studio.core.errors import StudioError
from studio.core.models import load_tokenizer, resolve_model
from studio.core.paths import demo_data_dir, demo_model_dir

WORDS = ["leaf", "water", "light", "soil", "root", "pot", "drain", "mist", "humid", "bright", "shade", "pest", "mite",
         "gnat", "rot", "yellow", "brown", "fern", "palm"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("demo"))


def prose(chars: int, seed: int = 0) -> str:
    """Plant-care words with spaces and punctuation: tokenizes like ordinary text."""
    rng = random.Random(seed)
    piece = "".join(rng.choice(WORDS) + rng.choice((" ", " ", " ", ", ", ". ", "\n")) for _ in range(20_000))
    return (piece * (chars // len(piece) + 1))[:chars]


def one_word(chars: int, seed: int = 1) -> str:
    """Letters with no space at all: one enormous pre-token for a byte-level BPE."""
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(chars))


def write_with_huge_row(path: Path, answer: str) -> Path:
    rows = [{"prompt": "Tell me everything.", "answer": answer}]
    rows += [{"prompt": f"Question {i} about {w}?", "answer": f"Keep the {w} moist, not wet ({i})."} for i, w in enumerate(WORDS[:6])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def hidden_in(notes: list[str]) -> int:
    """The characters the notes say were left out: "[… 12,345 more characters …]"."""
    return sum(int(m.replace(",", "")) for n in notes for m in re.findall(r"… ([\d,]+) more characters", n))


def full_encoding(tokenizer, renderer, row, max_length):
    """What encoding the whole row and then cutting it gives (the reference for the prefix path)."""
    chat = "messages" in row
    text = renderer.render(row["messages"]) if chat else row["text"]
    enc = tokenizer(text, add_special_tokens=not chat, return_offsets_mapping=True)
    return enc["input_ids"][:max_length], [tuple(o) for o in enc["offset_mapping"]][:max_length]


# ---------------------------------------------------------------------------------------------
# One huge field: memory, time, and what is shown
# ---------------------------------------------------------------------------------------------

MEASURE = r"""
import json, resource, sys, time
from studio.core.data import inspect_data
from studio.core.models import load_tokenizer, resolve_model

small, huge, field = sys.argv[1], sys.argv[2], int(sys.argv[3])
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
info = resolve_model("demo")
tokenizer = load_tokenizer(info)
inspect_data(small, model=info, tokenizer=tokenizer, seq_len=512)  # every import and cache warmed up
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
t0 = time.perf_counter()
report = inspect_data(huge, model=info, tokenizer=tokenizer, seq_len=512)
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
with open(huge, encoding="utf-8") as fh:  # the time one million characters take to tokenize, for comparison
    text = json.loads(fh.readline())["answer"][: 1_000_000]
t0 = time.perf_counter()
tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
per_million = time.perf_counter() - t0
print(json.dumps({"base": base, "peak": peak, "elapsed": elapsed, "tokenize_all": per_million * field / 1e6,
                  "report": report.as_dict()}))
"""


def measure_inspect(tmp_path, huge: Path, largest: int) -> dict:
    """inspect_data on `huge` in a fresh process, after a warm-up on a small file: its memory and time."""
    small = write_with_huge_row(tmp_path / "small.jsonl", "A short answer.")
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(small), str(huge), str(largest)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def within_bound(m: dict, largest: int) -> bool:
    """The bound of studio/core/data/__init__.py: base + 6 × the largest record + 200 MiB (+ per-row terms,
    negligible for a few rows)."""
    return m["peak"] - m["base"] <= 6 * largest + 200 * 2**20


def test_a_huge_field_is_inspected_in_bounded_memory_and_time(tmp_path):
    """An 8 MB answer: peak memory grows by a small multiple of the field (not ~200×), and only a
    prefix is tokenized (less time than tokenizing the field once); the example is shortened."""
    field = 8_000_000
    m = measure_inspect(tmp_path, write_with_huge_row(tmp_path / "huge.jsonl", prose(field)), field)
    assert within_bound(m, field), f"peak memory grew by {(m['peak'] - m['base']) / 2**20:.0f} MiB for an 8 MB field"
    assert m["elapsed"] < 0.5 * m["tokenize_all"], m  # a full tokenization of the field was avoided
    report = m["report"]
    st = report["stats"]
    assert st["rows"] == 7 and st["truncated_rows"] == 1 and st["long_rows"] == 1 and st["estimated_rows"] == 1
    assert st["max"] > 1_000_000  # ≈ the field's token count, estimated from a counted prefix
    example = report["examples"][0]
    shown = "".join(s["text"] for s in example["segments"])
    assert len(shown) < 30_000 and example["truncated"] and example["tokens_estimated"]
    notes = [s["text"] for s in example["segments"] if s.get("note")]
    assert notes and example["hidden_chars"] > field - 30_000 and hidden_in(notes) == example["hidden_chars"]


def test_many_long_rows_are_tokenized_in_small_batches(tmp_path):
    """Sixteen rows of 400,000 characters (each shorter than the long-row cut-off, so counted exactly):
    they are read, written and tokenized a few at a time, not all at once."""
    path = tmp_path / "long_rows.jsonl"
    row = prose(400_000, seed=4)
    path.write_text("".join(json.dumps({"prompt": f"Part {i}?", "answer": row}) + "\n" for i in range(16)), encoding="utf-8")
    m = measure_inspect(tmp_path, path, 400_000)
    assert within_bound(m, 400_000), f"peak memory grew by {(m['peak'] - m['base']) / 2**20:.0f} MiB"
    st = m["report"]["stats"]
    assert st["rows"] == 16 and st["estimated_rows"] == 0 and st["truncated_rows"] == 16


def test_examples_show_a_shortened_text_with_notes(tokenizer, tmp_path):
    """A long trained answer shows its start and end with a note between; the part the sequence
    length cuts shows its start and a note with the number of characters left out."""
    answer = prose(200_000, seed=3)
    path = write_with_huge_row(tmp_path / "long.jsonl", answer)
    report = inspect_data(path, model="demo", seq_len=8192, tokenizer=tokenizer, examples=1)
    example = report.examples[0]
    assert example.line == 1 and example.truncated and example.tokens > 8192 and not example.tokens_estimated
    segments = example.segments
    shown = "".join(s["text"] for s in segments if not s.get("note"))
    assert len(shown) < 12_000
    notes = [s for s in segments if s.get("note")]
    assert len(notes) >= 2 and all("more characters" in s["text"] for s in notes)
    hidden = hidden_in([s["text"] for s in notes])
    assert hidden == example.hidden_chars
    full = Renderer(tokenizer).render(report.loaded.dataset[0]["messages"])
    assert len(shown) + hidden == len(full)  # every character is either shown or counted in a note
    cut = [i for i, s in enumerate(segments) if s.get("cut")]
    assert cut and segments[cut[0]]["text"] and not segments[cut[0]].get("note")
    assert any(s["trained"] for s in segments[: cut[0]])
    assert report.as_dict()["examples"][0]["hidden_chars"] == hidden


def test_huge_rows_count_a_prefix_and_estimate_the_rest(tokenizer, tmp_path, monkeypatch):
    """A row far longer than any sequence length is counted exactly up to stats.EXACT_TOKENS tokens
    and estimated beyond from the characters per token of that prefix; other rows stay exact."""
    answer = prose(300_000, seed=5)
    path = write_with_huge_row(tmp_path / "h.jsonl", answer)
    loaded = load_data(path)
    renderer = Renderer(tokenizer)
    exact = [len(tokenizer(renderer.render(r["messages"]), add_special_tokens=False)["input_ids"]) for r in loaded.dataset]
    monkeypatch.setattr(stats, "EXACT_TOKENS", 4096)
    counted = stats.count_lengths(loaded.dataset, tokenizer, renderer)
    assert counted.estimated.tolist() == [True] + [False] * 6
    assert counted.lengths[1:].tolist() == exact[1:]
    assert counted.lengths[0] == pytest.approx(exact[0], rel=0.02)
    lengths, turns, estimated = stats.token_lengths(loaded.dataset, tokenizer, renderer)
    assert estimated == 1 and turns == 14 and lengths.tolist() == counted.lengths.tolist()
    summary = stats.summarize(lengths, 2048, turns, estimated_rows=estimated, long_rows=counted.long_rows)
    assert summary.as_dict()["long_rows"] == 1 and summary.truncated_rows == 1


# ---------------------------------------------------------------------------------------------
# Training: a long row is encoded from a prefix, with the same ids, labels and offsets
# ---------------------------------------------------------------------------------------------


def test_training_encoding_of_a_long_row_tokenizes_only_what_it_keeps(tokenizer):
    renderer = Renderer(tokenizer)
    rows = [
        {"messages": [{"role": "user", "content": "Everything?"}, {"role": "assistant", "content": prose(300_000, 7)}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": one_word(120_000)},
                      {"role": "assistant", "content": "No."}]},
        {"messages": [{"role": "user", "content": "Spell it."}, {"role": "assistant", "content": one_word(200_000, 2)}]},
        {"text": prose(250_000, 9)},
    ]
    for row in rows:
        for max_length in (64, 2048):
            enc = encode_row(row, renderer, max_length=max_length)
            ids, offsets = full_encoding(tokenizer, renderer, row, max_length)
            assert enc.truncated and enc.input_ids == ids and list(enc.offsets) == offsets
            if "text" in row:
                assert enc.labels == enc.input_ids
    # the loss mask of a long row: the answer's tokens and nothing before them
    long_answer = rows[0]
    enc = encode_row(long_answer, renderer, max_length=2048)
    theirs = tokenizer.apply_chat_template(long_answer["messages"], tokenize=True, return_dict=True,
                                           return_assistant_tokens_mask=True)
    assert enc.input_ids == list(theirs["input_ids"][:2048])
    assert [label != IGNORE_INDEX for label in enc.labels] == [bool(m) for m in theirs["assistant_masks"][:2048]]
    # the cost: a 6 MB answer is encoded in less time than tokenizing a tenth of it
    big = {"messages": [{"role": "user", "content": "All?"}, {"role": "assistant", "content": prose(6_000_000, 11)}]}
    tenth = big["messages"][1]["content"][:600_000]
    t0 = time.perf_counter()
    tokenizer(tenth, add_special_tokens=False, return_offsets_mapping=True)
    reference = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc = encode_row(big, renderer, max_length=2048)
    assert time.perf_counter() - t0 < reference
    assert enc.truncated and len(enc.input_ids) == 2048 and enc.trained_tokens > 2000


# ---------------------------------------------------------------------------------------------
# Not training data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,what", [
    ("", "model folder"),
    ("config.json", "configuration"),
    ("tokenizer.json", "tokenizer"),
    ("tokenizer_config.json", "tokenizer"),
    ("generation_config.json", "generation settings"),
    ("model.safetensors", "weights"),
])
def test_a_model_or_its_files_given_as_data_are_refused(name, what):
    path = demo_model_dir() / name if name else demo_model_dir()
    assert path.exists()
    with pytest.raises(StudioError) as err:
        load_data(path)
    message, advice = err.value.message, err.value.advice
    assert "not training data" in message and what in message
    assert ".jsonl" in advice and "--model" in advice


def test_a_renamed_tokenizer_file_is_refused_by_its_content(tmp_path):
    shutil.copy(demo_model_dir() / "tokenizer.json", tmp_path / "plants.json")
    with pytest.raises(StudioError) as err:
        load_data(tmp_path / "plants.json")
    assert "plants.json" in err.value.message and "tokenizer" in err.value.message


def test_model_files_in_a_data_folder_are_skipped_with_a_note(tmp_path):
    folder = tmp_path / "data"
    (folder / "model").mkdir(parents=True)
    shutil.copy(demo_data_dir() / "demo.jsonl", folder / "chats.jsonl")
    for name in ("tokenizer.json", "config.json", "tokenizer_config.json"):
        shutil.copy(demo_model_dir() / name, folder / "model" / name)
    # legitimate JSON datasets whose names or fields sound like a model's are still read
    (folder / "config.json").write_text(json.dumps([{"messages": [{"role": "user", "content": "Which model?"},
                                                                 {"role": "assistant", "content": "A small one."}]}]))
    (folder / "records.json").write_text(json.dumps({"model": "gpt-4", "data": [
        {"messages": [{"role": "user", "content": "Fern?"}, {"role": "assistant", "content": "Shade."}]}]}))
    loaded = load_data(folder)
    demo_rows = sum(1 for line in (demo_data_dir() / "demo.jsonl").read_text().splitlines() if line.strip())
    assert loaded.rows_kept == demo_rows + 2 and loaded.format == "messages"
    notes = [p for p in loaded.problems if p.kind == "not_training_data"]
    assert sorted(p.file for p in notes) == ["model/config.json", "model/tokenizer.json", "model/tokenizer_config.json"]
    assert all(p.severity == "warning" and "left out" in p.message for p in notes)
    # only model files in the folder: refused, saying what they are
    shutil.rmtree(folder / "model")
    (folder / "chats.jsonl").unlink()
    (folder / "config.json").unlink()
    (folder / "records.json").unlink()
    shutil.copy(demo_model_dir() / "tokenizer.json", folder / "tokenizer.json")
    with pytest.raises(StudioError) as err:
        load_data(folder)
    assert "not training data" in err.value.message and "tokenizer.json" in err.value.message


# ---------------------------------------------------------------------------------------------
# The sequence length
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq_len", [0, -5, 8, 2.5])
def test_inspect_refuses_a_sequence_length_that_cannot_be_trained(tokenizer, seq_len):
    with pytest.raises(StudioError) as err:
        inspect_data("demo", model="demo", seq_len=seq_len, tokenizer=tokenizer)
    assert "--seq-len" in err.value.advice + err.value.message and "at least 16" in err.value.message
    assert repr(seq_len) in err.value.message
