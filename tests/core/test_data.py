"""Bring your own data: every format and file type, every kind of bad input, and the loss mask.
Each test writes its own files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from studio.core.data import (
    IGNORE_INDEX,
    Renderer,
    encode_row,
    inspect_data,
    load_data,
    parse_mapping,
)
from studio.core.data.tokens import DEFAULT_CHAT_TEMPLATE, assistant_spans
from studio.core.errors import StudioError
from studio.core.models import load_tokenizer, resolve_model
from studio.core.paths import demo_data_dir


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("demo"))


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def roles(row):
    return [t["role"] for t in row["messages"]]


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------


def test_alpaca_with_input_system_and_history(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [
        {"instruction": "Water it?", "input": "A fern", "output": "Yes, keep it moist.", "system": "Be brief."},
        {"instruction": "And now?", "input": "", "output": "Less in winter.", "history": [["Hi", "Hello!"]]},
    ])
    data = load_data(path)
    assert data.format == "alpaca" and data.rows_kept == 2
    first, second = data.dataset[0], data.dataset[1]
    plain = [{k: t[k] for k in ("role", "content")} for t in first["messages"]]
    assert plain == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Water it?\n\nA fern"},
                     {"role": "assistant", "content": "Yes, keep it moist."}]
    assert roles(second) == ["user", "assistant", "user", "assistant"]
    assert second["messages"][2]["content"] == "And now?"


def test_sharegpt_multi_turn_with_system(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [{"conversations": [
        {"from": "system", "value": "You are a plant doctor."}, {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello"}, {"from": "human", "value": "Mites?"}, {"from": "gpt", "value": "Shower it."}]}])
    data = load_data(path)
    assert data.format == "sharegpt"
    assert roles(data.dataset[0]) == ["system", "user", "assistant", "user", "assistant"]


def test_messages_with_content_parts(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Why "}, {"type": "text", "text": "yellow?"}]},
                      {"role": "assistant", "content": "Too much water."}]},
        {"messages": [{"role": "system", "content": "Short."}, {"role": "user", "content": "Q"}, {"role": "model", "content": "A"}]},
    ])
    data = load_data(path)
    assert data.format == "messages" and data.rows_kept == 2
    assert data.dataset[0]["messages"][0]["content"] == "Why yellow?"
    assert roles(data.dataset[1]) == ["system", "user", "assistant"]  # Gemma's "model" role


@pytest.mark.parametrize("prompt,response", [("prompt", "completion"), ("question", "answer"), ("prompt", "response"),
                                             ("input", "output"), ("query", "response")])
def test_prompt_completion_column_names(tmp_path, prompt, response):
    path = write_jsonl(tmp_path / "p.jsonl", [{prompt: "What is NPK?", response: "Nitrogen, phosphorus, potassium."}])
    data = load_data(path)
    assert data.format == "prompt_completion"
    assert data.choice.prompt == prompt and data.choice.response == response
    assert data.dataset[0]["messages"][1]["content"] == "Nitrogen, phosphorus, potassium."


def test_column_mapping_chosen_by_the_user(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("Frage,Antwort,Notiz\nWie oft gießen?,Einmal pro Woche.,x\n", encoding="utf-8")
    with pytest.raises(StudioError) as err:
        load_data(path)
    assert "Frage, Antwort, Notiz" in err.value.message and "--map prompt=" in err.value.advice
    data = load_data(path, mapping=parse_mapping("prompt=Frage,response=Antwort"))
    assert data.format == "prompt_completion" and data.dataset[0]["messages"][0]["content"] == "Wie oft gießen?"


def test_format_override(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": "Plain prose about ferns.", "instruction": "i", "output": "o"}])
    assert load_data(path).format == "alpaca"
    data = load_data(path, fmt="text")
    assert data.format == "text" and data.dataset[0]["text"] == "Plain prose about ferns."


# ---------------------------------------------------------------------------------------------
# File types
# ---------------------------------------------------------------------------------------------

ROWS = [{"question": f"How do I care for plant {i}?", "answer": f"Water plant {i} weekly."} for i in range(5)]


def test_json_array_and_wrapped_and_columnar(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"data": ROWS}), encoding="utf-8")
    (tmp_path / "c.json").write_text(json.dumps({"question": [r["question"] for r in ROWS], "answer": [r["answer"] for r in ROWS]}))
    for name in ("a.json", "b.json", "c.json"):
        data = load_data(tmp_path / name)
        assert data.rows_kept == 5 and data.format == "prompt_completion", name
    # records of an indented array know the line they start on
    assert [r["line"] for r in load_data(tmp_path / "a.json").dataset][:2] == [2, 6]


def test_json_file_holding_json_lines(tmp_path):
    path = tmp_path / "lines.json"
    write_jsonl(path, ROWS)
    assert load_data(path).rows_kept == 5


def test_csv_tsv_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d.csv").write_text('prompt,completion\n"Hi, there","Multi\nline answer"\nQ2,A2\n', encoding="utf-8")
    (tmp_path / "d.tsv").write_text("prompt\tcompletion\nHi\tHello\n", encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    csv_data = load_data(tmp_path / "d.csv")
    assert csv_data.rows_kept == 2 and csv_data.dataset[0]["messages"][1]["content"] == "Multi\nline answer"
    assert [r["line"] for r in csv_data.dataset] == [2, 4]  # the quoted newline moves the second row down
    assert load_data(tmp_path / "d.tsv").rows_kept == 1
    assert load_data(tmp_path / "d.parquet").rows_kept == 5


def test_raw_text_files_and_folder(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("Ferns like shade.\nThey like humidity.\n\nWater when the top is dry.\n", encoding="utf-8")
    (folder / "b.md").write_text("# Cacti\n\nCacti need sun.\n", encoding="utf-8")
    data = load_data(folder)
    assert data.format == "text" and data.rows_kept == 3  # a.txt: two paragraphs; b.md: one document
    assert data.dataset[0]["text"] == "Ferns like shade.\nThey like humidity."
    assert {r["file"] for r in data.dataset} == {"a.txt", "b.md"}


def test_folder_of_record_files(tmp_path):
    folder = tmp_path / "parts"
    folder.mkdir()
    write_jsonl(folder / "one.jsonl", ROWS[:3])
    write_jsonl(folder / "two.jsonl", ROWS[3:])
    data = load_data(folder)
    assert data.rows_kept == 5 and {r["file"] for r in data.dataset} == {"one.jsonl", "two.jsonl"}


def test_hub_dataset_from_the_local_cache(tmp_path, monkeypatch):
    """A hub dataset id, offline, from the datasets cache exactly as an earlier download leaves it."""
    import datasets
    from datasets.packaged_modules.json.json import Json

    src = tmp_path / "src"
    src.mkdir()
    write_jsonl(src / "train.jsonl", ROWS)
    write_jsonl(src / "test.jsonl", ROWS[:2])
    cache = tmp_path / "datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    builder = Json(data_files={"train": str(src / "train.jsonl"), "test": str(src / "test.jsonl")}, dataset_name="plants",
                   cache_dir=str(cache))
    builder.download_and_prepare()
    target = cache / "someone___plants" / "default" / "0.0.0" / "0123456789abcdef"
    target.parent.mkdir(parents=True)
    shutil.move(builder.cache_dir, target)

    data = load_data("someone/plants")
    assert data.rows_kept == 5 and data.source.split == "train"
    assert load_data("someone/plants", split="test").rows_kept == 2
    with pytest.raises(StudioError) as err:
        load_data("someone/not-cached")
    assert "not in the local cache" in err.value.message


# ---------------------------------------------------------------------------------------------
# Bad input: a clear problem with its place and a fix; never a traceback, never a changed file
# ---------------------------------------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_malformed_json_lines_are_named_and_can_be_skipped(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], '{"question": "broken", "answer": ', ROWS[1], "[1, 2]", ROWS[2]])
    before = digest(path)
    with pytest.raises(StudioError) as err:
        load_data(path)
    assert "Line 2" in err.value.message and "--skip-bad-rows" in err.value.advice
    assert [p.line for p in err.value.problems] == [2, 4]
    data = load_data(path, skip_bad_rows=True)
    assert data.rows_kept == 3 and data.rows_skipped == 2
    assert digest(path) == before


def test_json_errors_are_said_in_plain_words_with_line_and_character(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        ROWS[0],
        '{"question": "Why?" "answer": "Because."}',  # a missing comma
        '{"question": "Cut off", "answer": ',  # the export stopped mid-line
        '{"question": "Where?", "answer": hello}',  # text without quotes
        '{"question": "Tab\there", "answer": "x"}',  # a real tab inside quotes
    ])
    with pytest.raises(StudioError) as err:
        load_data(path)
    messages = {p.line: p.message for p in err.value.problems}
    assert messages == {
        2: "Line 2 is cut off or has a missing comma (at character 21).",
        3: "Line 3 is cut off: it ends before its record does.",
        4: "Line 4 has a value JSON does not accept: text needs double quotes, and no comma may come before a closing ] "
           "or } (at character 34).",
        5: "Line 5 has a tab or line break inside quoted text: write it as \\t or \\n (at character 18).",
    }
    assert err.value.message.startswith("Line 2 is cut off or has a missing comma (at character 21). 3 more like it.")
    whole = tmp_path / "whole.json"
    whole.write_text('[\n  {"question": "a", "answer": "b"},\n  {"question": "c", "answer": "d"\n', encoding="utf-8")
    with pytest.raises(StudioError) as err:
        load_data(whole)
    assert err.value.message == "Line 3 is cut off: it ends before its record does."
    assert [p.line for p in err.value.problems] == [3]


def test_a_fix_names_a_setting_in_the_words_of_each_front_end(tmp_path):
    from studio.core.data import CLI, WINDOW, DataError
    from studio.core.data.problems import setting_words

    path = write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], '{"question": "broken", "answer": '])
    with pytest.raises(DataError) as err:
        load_data(path)
    assert err.value.advice == "Fix or delete this line, or add --skip-bad-rows to leave it out."  # the CLI prints this
    assert err.value.topic == "data"  # the window's Data page fixes it
    assert err.value.advice_for(WINDOW) == "Fix or delete this line, or turn on Skip broken lines to leave it out."
    problem = err.value.problems[0]
    assert problem.setting == "data.skip_bad_rows"
    assert problem.as_dict(CLI)["fix"] == err.value.advice and problem.as_dict(WINDOW)["fix"] == err.value.advice_for(WINDOW)
    # the words come from the recipe field's metadata: one place for the flag and the label
    assert setting_words("data.mapping", CLI, "prompt=a,response=b") == "--map prompt=a,response=b"
    assert setting_words("data.mapping", WINDOW, "prompt=a,response=b") == "the column pickers"
    assert setting_words("training.seq_len", WINDOW) == "Sequence length"
    with pytest.raises(DataError) as err:
        inspect_data(path, seq_len=8)
    assert "Set --seq-len to" in err.value.advice and "Set Sequence length to" in err.value.advice_for(WINDOW)


def test_unknown_columns_come_with_the_files_columns_and_first_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio.core.data import WINDOW, DataError

    path = tmp_path / "t.parquet"
    long = "Wie oft gießt man einen Farn im Winter? " * 10
    pq.write_table(pa.Table.from_pylist([{"frage": long, "antwort": "Einmal pro Woche.", "n": 3, "leer": ""},
                                         {"frage": "Licht?", "antwort": "Hell, ohne direkte Sonne.", "n": None, "leer": ""}]),
                   path)
    with pytest.raises(DataError) as err:
        load_data(path)
    assert err.value.preview.columns == ["frage", "antwort", "n", "leer"]
    first = err.value.preview.first_row
    assert first["antwort"] == "Einmal pro Woche." and first["n"] == "3" and first["leer"] == ""
    assert len(first["frage"]) == 120 and first["frage"].endswith("…") and long.startswith(first["frage"][:-1])
    assert "--map prompt=frage,response=antwort" in err.value.advice
    assert "--" not in err.value.advice_for(WINDOW) and "the column pickers" in err.value.advice_for(WINDOW)
    for _ in range(2):  # read, then from the cache: the same columns, first row and mapping in effect
        data = load_data(path, mapping={"prompt": "frage", "response": "antwort"})
        assert data.first_row == first and data.columns == ["frage", "antwort", "n", "leer"]
        assert data.choice.mapping() == {"prompt": "frage", "response": "antwort"}
    with pytest.raises(DataError) as err:  # a mapping whose answers are all empty: still offered to change
        load_data(path, mapping={"prompt": "frage", "response": "leer"})
    assert err.value.preview.columns == ["frage", "antwort", "n", "leer"] and err.value.setting == "data.mapping"


def test_empty_file(tmp_path):
    for name in ("e.jsonl", "e.csv", "e.json", "e.txt"):
        (tmp_path / name).write_text("")
        with pytest.raises(StudioError) as err:
            load_data(tmp_path / name)
        assert "empty" in err.value.message


def test_not_utf8_is_detected_and_read_with_a_warning(tmp_path):
    path = tmp_path / "latin.csv"
    row = "Où mettre la plante numéro {} ?,\"Près d'une fenêtre très lumineuse, à l'abri.\"\n"
    text = "question,answer\n" + "".join(row.format(i) for i in range(20))
    path.write_bytes(text.encode("cp1252"))
    before = digest(path)
    data = load_data(path)
    assert data.rows_kept == 20 and data.dataset[0]["messages"][0]["content"].startswith("Où mettre")
    warning = [p for p in data.problems if p.kind == "encoding"][0]
    assert warning.severity == "warning" and "not UTF-8" in warning.message
    assert digest(path) == before  # read as it is, never rewritten


def test_undecodable_binary_is_refused(tmp_path):
    path = tmp_path / "noise.jsonl"
    path.write_bytes(bytes(range(128, 256)) * 40 + b"\x00\x81\xfe")
    with pytest.raises(StudioError) as err:
        load_data(path)
    assert "UTF-8" in err.value.advice or "UTF-8" in err.value.message


def test_wrong_types_nulls_and_empty_texts(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [
        {"instruction": "How many leaves?", "output": 7},  # number: kept as text, with a warning
        {"instruction": "List?", "output": ["a", "b"]},  # list: dropped
        {"instruction": "Null?", "output": None},  # null: dropped
        {"instruction": "   ", "output": "No prompt."},  # empty prompt: dropped
        {"instruction": "No answer", "output": ""},  # empty response: dropped
        {"instruction": "Fine", "output": "Fine."},
    ])
    data = load_data(path)
    assert data.rows_kept == 2 and data.rows_dropped == 4
    by_line = {p.line: p for p in data.problems}
    assert by_line[1].severity == "warning" and by_line[1].field == "output"
    assert "a list" in by_line[2].message and by_line[2].field == "output"
    assert "null" in by_line[3].message
    assert "prompt is empty" in by_line[4].message
    assert "response is empty" in by_line[5].message
    assert all(p.fix for p in data.problems)
    assert data.dataset[0]["messages"][1]["content"] == "7"


def test_exact_duplicates_are_dropped(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [ROWS[0], ROWS[1], ROWS[0]])
    data = load_data(path)
    assert data.rows_kept == 2 and data.duplicates == 1
    dup = [p for p in data.problems if p.kind == "duplicate"][0]
    assert dup.line == 3 and "line 1" in dup.message


def test_conversations_that_do_not_alternate_or_end_on_the_user(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [
        {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}]},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]},
        {"messages": [{"role": "assistant", "content": "I start"}, {"role": "user", "content": "odd"}]},
        {"messages": [{"role": "tool", "content": "{}"}, {"role": "assistant", "content": "x"}]},
        {"messages": [{"role": "user", "content": "ok"}, {"role": "assistant", "content": "fine"}]},
    ])
    data = load_data(path)
    assert data.rows_kept == 1
    kinds = {p.line: p.kind for p in data.problems}
    assert kinds == {1: "not_alternating", 2: "ends_on_user", 3: "not_alternating", 4: "not_alternating"}  # a result no call asked for


def test_nothing_usable_says_why(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"instruction": "x", "output": ""}, {"instruction": "y", "output": None}])
    with pytest.raises(StudioError) as err:
        load_data(path)
    assert "None of the 2 rows" in err.value.message and len(err.value.problems) == 2


def test_unsupported_files_and_missing_paths(tmp_path):
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(StudioError) as err:
        load_data(tmp_path / "x.xlsx")
    assert ".jsonl" in err.value.advice
    with pytest.raises(StudioError):
        load_data(tmp_path / "missing.jsonl")


def test_cache_follows_changes_to_the_file(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", ROWS[:2])
    assert load_data(path).rows_kept == 2
    write_jsonl(path, ROWS)
    assert load_data(path).rows_kept == 5


# ---------------------------------------------------------------------------------------------
# Tokens and the loss mask
# ---------------------------------------------------------------------------------------------


def trained_text(enc) -> str:
    return "".join(enc.text[s:e] for (s, e), label in zip(enc.offsets, enc.labels, strict=False) if label != IGNORE_INDEX)


def test_mask_trains_exactly_the_assistant_turns(tokenizer):
    renderer = Renderer(tokenizer)
    turns = [{"role": "system", "content": "You are a plant doctor."}, {"role": "user", "content": "My fern is brown."},
             {"role": "assistant", "content": "Plant doctor says: raise the humidity."},
             {"role": "user", "content": "And the pot?"}, {"role": "assistant", "content": "Plant doctor says: repot in spring."}]
    enc = encode_row({"messages": turns}, renderer)
    trained = trained_text(enc)
    assert "raise the humidity." in trained and "repot in spring." in trained
    for not_trained in ("plant doctor.", "My fern is brown.", "And the pot?"):
        assert not_trained not in trained
    # the trained tokens are the two answers and their end-of-turn markers, nothing else
    spans = assistant_spans(renderer, turns, enc.text)
    assert len(spans) == 2
    for (start, end), turn in zip(spans, [turns[2], turns[4]], strict=False):
        assert enc.text[start:end].startswith(turn["content"])
        assert enc.text[start:end][len(turn["content"]):].strip() in ("<|im_end|>", tokenizer.eos_token)
    assert enc.input_ids == tokenizer(enc.text, add_special_tokens=False)["input_ids"]


def test_mask_matches_transformers_generation_markers(tokenizer):
    """The demo template marks assistant content with {% generation %}: transformers' own mask agrees."""
    if "generation" not in (tokenizer.chat_template or ""):
        pytest.skip("the demo template has no generation markers")
    turns = [{"role": "user", "content": "Fungus gnats?"}, {"role": "assistant", "content": "Let the soil dry out."}]
    ours = encode_row({"messages": turns}, Renderer(tokenizer))
    theirs = tokenizer.apply_chat_template(turns, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ours_mask = [label != IGNORE_INDEX for label in ours.labels]
    theirs_mask = [bool(m) for m in theirs["assistant_masks"]]
    assert ours.input_ids == list(theirs["input_ids"])
    assert all(o for o, t in zip(ours_mask, theirs_mask, strict=False) if t)  # every token transformers marks, we train
    assert sum(ours_mask) - sum(theirs_mask) <= 3  # plus only the end-of-turn marker


def test_switch_puts_the_loss_on_every_token(tokenizer):
    enc = encode_row({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
                     Renderer(tokenizer), assistant_only=False)
    assert enc.labels == enc.input_ids


def test_default_template_for_a_model_without_one(tokenizer):
    bare = load_tokenizer(resolve_model("demo"))
    bare.chat_template = None
    renderer = Renderer(bare)
    assert renderer.is_default and renderer.template == DEFAULT_CHAT_TEMPLATE
    enc = encode_row({"messages": [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Light."}]}, renderer)
    assert "### User:\nWhy?" in enc.text and "### Assistant:\nLight." in enc.text
    assert trained_text(enc).startswith("Light.") and bare.eos_token in trained_text(enc)


def test_text_format_trains_every_token_and_ends_with_eos(tokenizer):
    enc = encode_row({"text": "Ferns like shade."}, Renderer(tokenizer))
    assert enc.labels == enc.input_ids and enc.input_ids[-1] == tokenizer.eos_token_id


def test_truncation(tokenizer):
    enc = encode_row({"messages": [{"role": "user", "content": "Q " * 100}, {"role": "assistant", "content": "A"}]},
                     Renderer(tokenizer), max_length=16)
    assert enc.truncated and len(enc.input_ids) == 16 and len(enc.labels) == 16


# ---------------------------------------------------------------------------------------------
# The whole report
# ---------------------------------------------------------------------------------------------


def test_inspect_demo_data(tokenizer):
    report = inspect_data(demo_data_dir() / "demo.jsonl", model="demo", seq_len=256, tokenizer=tokenizer)
    loaded = report.loaded
    rows = sum(1 for line in (demo_data_dir() / "demo.jsonl").read_text().splitlines() if line.strip())
    assert loaded.format == "messages" and loaded.rows_kept == rows and not loaded.problems
    # the fast batch statistics agree with encoding each row the way training will
    renderer = Renderer(tokenizer)
    exact = [len(encode_row(r, renderer).input_ids) for r in loaded.dataset]
    assert report.stats.total_tokens == sum(exact) and report.stats.max == max(exact)
    assert report.stats.truncated_rows == sum(n > 256 for n in exact)
    assert sum(report.stats.histogram) == rows
    assert exact[report.stats.longest_rows[0]] == max(exact)
    assert 2 <= len(report.examples) <= 3
    assert any(seg["trained"] for seg in report.examples[0].segments)
    assert report.as_dict()["rows"] == rows


def test_large_data_counts_a_sample_exactly_and_estimates_the_rest(tokenizer, monkeypatch):
    """Beyond EXACT_ROWS rows a seeded sample and the longest rows are tokenized; the rest estimated."""
    from studio.core.data import stats

    loaded = load_data("demo")
    renderer = Renderer(tokenizer)
    exact, turns, estimated = stats.token_lengths(loaded.dataset, tokenizer, renderer)
    assert estimated == 0
    monkeypatch.setattr(stats, "EXACT_ROWS", 60)
    monkeypatch.setattr(stats, "LONGEST_BY_CHARS", 10)
    approx, approx_turns, estimated = stats.token_lengths(loaded.dataset, tokenizer, renderer)
    assert 60 <= len(exact) - estimated <= 70  # the sample plus the longest rows (some overlap)
    assert approx.sum() == pytest.approx(exact.sum(), rel=0.02)
    assert approx_turns == pytest.approx(turns, rel=0.05)
    assert approx.max() == exact.max()  # the longest rows are among those counted exactly
    summary = stats.summarize(approx, 256, approx_turns, estimated_rows=estimated)
    assert summary.as_dict()["estimated_rows"] == estimated
