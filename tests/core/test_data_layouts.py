"""Data as other tools export it (issue 18): tool calls, preference pairs, images and layouts with an
extra level. Each test writes files in the layout the format's documentation gives and asserts what
is trained and what is not — the text under the loss, not only the detected name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.data import IGNORE_INDEX, Renderer, encode_row, inspect_data, load_data
from studio.core.errors import StudioError
from studio.core.models import load_tokenizer, resolve_model

# A chat template of our own with tool support written the way transformers documents it: `tools`
# in the system turn, the assistant's `tool_calls` (function name and arguments), `tool` turns.
TOOL_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n{% if messages[0].role == 'system' %}{{ messages[0].content }}\n{% endif %}"
    "Tools:{% for t in tools %}\n{{ t | tojson }}{% endfor %}<|im_end|>\n{%- endif %}"
    "{%- for m in messages %}"
    "{%- if m.role == 'system' %}{% if not tools %}<|im_start|>system\n{{ m.content }}<|im_end|>\n{% endif %}"
    "{%- elif m.role == 'assistant' %}<|im_start|>assistant\n{{ m.content }}"
    "{%- for c in m.tool_calls or [] %}<call>{{ c.function.name }} {{ c.function.arguments | tojson }}</call>{%- endfor %}"
    "<|im_end|>\n"
    "{%- elif m.role == 'tool' %}<|im_start|>tool\n{{ m.content }}<|im_end|>\n"
    "{%- else %}<|im_start|>user\n{{ m.content }}<|im_end|>\n{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(resolve_model("demo"))


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def split_text(row: dict, renderer: Renderer) -> tuple[str, str]:
    """(trained text, untrained text) of a loaded row, as training encodes it."""
    enc = encode_row(row, renderer)
    trained = [i for i, label in zip(enc.input_ids, enc.labels, strict=True) if label != IGNORE_INDEX]
    untrained = [i for i, label in zip(enc.input_ids, enc.labels, strict=True) if label == IGNORE_INDEX]
    decode = renderer.tokenizer.decode
    return decode(trained), decode(untrained)


WEATHER_TOOL = {"name": "get_weather", "description": "Das aktuelle Wetter einer Stadt",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def llamafactory_tool_rows():
    """LLaMA-Factory's documented sharegpt tool layout: function_call / observation turns, tools as a JSON string."""
    tools = json.dumps([WEATHER_TOOL], ensure_ascii=False)
    rows = []
    for city, temp in (("Berlin", 12), ("München", 15), ("東京", 20)):
        rows.append({"conversations": [
            {"from": "human", "value": f"Wie ist das Wetter in {city}?"},
            {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": city}}, ensure_ascii=False)},
            {"from": "observation", "value": json.dumps({"temperature": temp, "sky": "bewölkt"}, ensure_ascii=False)},
            {"from": "gpt", "value": f"In {city} sind es {temp} Grad, bewölkt."},
        ], "system": "Du bist ein hilfreicher Assistent.", "tools": tools})
    rows.append(dict(rows[0]))  # a duplicate
    rows.append({"conversations": [{"from": "human", "value": "Hallo!"}, {"from": "gpt", "value": "Hallo, wie kann ich helfen?"}],
                 "system": "", "tools": tools})
    return rows


# ---------------------------------------------------------------------------------------------
# Tool calling
# ---------------------------------------------------------------------------------------------


def test_llamafactory_sharegpt_tools_train_the_call_not_the_result(tmp_path, tokenizer):
    data = load_data(write_jsonl(tmp_path / "glaive.jsonl", llamafactory_tool_rows()))
    assert data.format == "sharegpt" and data.choice.tools == "tools"
    assert data.rows_kept == 4 and data.duplicates == 1
    row = data.dataset[1]
    assert [t["role"] for t in row["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert json.loads(row["messages"][2]["tool_calls"]) == [{"name": "get_weather", "arguments": {"city": "München"}}]
    trained, untrained = split_text(row, Renderer(tokenizer))  # the demo template has no tool support: plain rendering
    assert '"name": "get_weather"' in trained and "München" in trained and "15 Grad" in trained
    assert '"temperature": 15' in untrained and "<tool_response>" in untrained and "Das aktuelle Wetter" in untrained
    assert '"temperature"' not in trained and "Wetter einer Stadt" not in trained
    assert data.kinds["tool_calls"] == 3 and data.kinds["tool_schema"] == 4


def test_tool_calls_through_the_templates_own_tool_support(tmp_path, tokenizer):
    """OpenAI's function-calling fine-tuning layout: tool_calls with JSON-string arguments and no content,
    parallel calls, tool results, a top-level tools list."""
    row = {"messages": [
        {"role": "system", "content": "You are a travel assistant."},
        {"role": "user", "content": "Weather in Oslo and Lima?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lima\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": -3}"},
        {"role": "tool", "tool_call_id": "call_2", "content": "{\"temperature\": 19}"},
        {"role": "assistant", "content": "Oslo is at -3 °C, Lima at 19 °C."}],
        "tools": [{"type": "function", "function": WEATHER_TOOL}]}
    data = load_data(write_jsonl(tmp_path / "openai.jsonl", [row]))
    assert data.format == "messages" and data.rows_kept == 1 and data.problems == []
    native = Renderer(tokenizer, template=TOOL_TEMPLATE)
    assert native.tools_native
    trained, untrained = split_text(data.dataset[0], native)
    assert '<call>get_weather {"city": "Oslo"}</call><call>get_weather {"city": "Lima"}</call>' in trained
    assert "Lima at 19" in trained
    assert '"temperature": -3' in untrained and "Wetter einer Stadt" in untrained  # results and schema: prompt side
    assert "temperature" not in trained and "Tools:" not in trained


def test_typed_content_parts_reasoning_and_calls(tmp_path, tokenizer):
    rows = [{"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Wie viel ist 17 × 23?"}]},
        {"role": "assistant", "content": [{"type": "reasoning", "text": "17 × 20 = 340, 17 × 3 = 51."},
                                          {"type": "tool_call", "name": "calculator", "arguments": {"expr": "17*23"}}]},
        {"role": "tool", "content": [{"type": "tool_result", "content": "391"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "17 × 23 = 391."}]}]}]
    data = load_data(write_jsonl(tmp_path / "parts.jsonl", rows))
    assert data.rows_kept == 1 and data.kinds == {"tool_calls": 1, "reasoning": 1}
    turns = data.dataset[0]["messages"]
    assert turns[1]["reasoning"].startswith("17 × 20") and json.loads(turns[1]["tool_calls"])[0]["name"] == "calculator"
    trained, untrained = split_text(data.dataset[0], Renderer(tokenizer))
    assert "<think>" in trained and "17 × 20 = 340" in trained and '"calculator"' in trained and "= 391." in trained
    assert "391" in untrained and "Wie viel" in untrained


def test_broken_tool_data_is_refused_by_line(tmp_path):
    good = llamafactory_tool_rows()[0]
    broken_args = json.loads(json.dumps(good))
    broken_args["conversations"][1]["value"] = '{"name": "get_weather", "arguments": {"city": "Bonn"'
    broken_schema = {**json.loads(json.dumps(good)), "tools": "[{\"name\": \"x\",}]"}
    call_by_user = {"conversations": [{"from": "human", "value": "hi", "tool_calls": [{"name": "f", "arguments": {}}]},
                                      {"from": "gpt", "value": "ok"}]}
    data = load_data(write_jsonl(tmp_path / "t.jsonl", [good, broken_args, broken_schema, call_by_user]))
    kinds = {p.line: p.kind for p in data.problems}
    assert data.rows_kept == 1 and kinds == {2: "bad_tool_call", 3: "bad_tools", 4: "bad_tool_call"}
    assert "not valid JSON" in next(p.message for p in data.problems if p.line == 2)


def test_inspect_says_the_template_writes_tools_as_text(tmp_path):
    report = inspect_data(write_jsonl(tmp_path / "glaive.jsonl", llamafactory_tool_rows()), examples=2).as_dict()
    assert report["layout"]["name"] == "tool calling"
    assert "4 rows, trained on the assistant's answers; tool calls in 3 of them" in report["layout"]["words"]
    note = next(p for p in report["problems"] if p["kind"] == "tools_as_text")
    assert "no tool support" in note["message"] and note["severity"] == "warning"
    shown = "".join(s["text"] for s in report["examples"][0]["segments"] if s["trained"])
    assert "get_weather" in shown  # the example shown first is one that calls a tool, its call highlighted


# A template that is not prefix-stable (as Qwen3's): only the last answer after the last question gets
# an empty reasoning block, so an earlier call renders differently once the conversation goes on.
THINKING_TOOL_TEMPLATE = (
"{%- if tools %}<|im_start|>system\n{% if messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif "
"%}# Tools\n<tools>{% for t in tools %}\n{{ t | tojson }}{% endfor %}\n</tools><|im_end|>\n"
"{%- elif messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}<|im_end|>\n{%- endif %}"
"{%- set ns = namespace(last=messages|length - 1, multi=true) %}"
"{%- for m in messages[::-1] %}{%- set idx = (messages|length - 1) - loop.index0 %}{%- if ns.multi and m.role ="
"= 'user' %}{%- set ns.multi = false %}{%- set ns.last = idx %}{%- endif %}{%- endfor %}"
"{%- for m in messages %}"
"{%- if m.role == 'user' %}<|im_start|>user\n{{ m.content }}<|im_end|>\n"
"{%- elif m.role == 'assistant' %}<|im_start|>assistant\n{% if loop.index0 > ns.last and loop.last %}<think>\n"
"\n</think>\n\n{% endif %}{{ m.content }}"
"{%- for c in m.tool_calls or [] %}{% if (loop.first and m.content) or not loop.first %}\n{% endif %}<tool_call"
">\n{\"name\": \"{{ c.function.name }}\", \"arguments\": {{ c.function.arguments | tojson }}}\n</tool_call>{%- "
"endfor %}<|im_end|>\n"
"{%- elif m.role == 'tool' %}{% if messages[loop.index0 - 1].role != 'tool' %}<|im_start|>user{% endif %}\n<too"
"l_response>\n{{ m.content }}\n</tool_response>{% if loop.last or messages[loop.index0 + 1].role != 'tool' %}<|"
"im_end|>\n{% endif %}"
"{%- endif %}{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}")



def test_calls_are_trained_with_a_template_that_rewrites_earlier_answers(tmp_path, tokenizer):
    data = load_data(write_jsonl(tmp_path / "glaive.jsonl", llamafactory_tool_rows()))
    renderer = Renderer(tokenizer, template=THINKING_TOOL_TEMPLATE)
    trained, untrained = split_text(data.dataset[0], renderer)
    assert '{"name": "get_weather", "arguments": {"city": "Berlin"}}' in trained and "12 Grad" in trained
    assert "temperature" in untrained and "temperature" not in trained


# ---------------------------------------------------------------------------------------------
# Preference data
# ---------------------------------------------------------------------------------------------


def _pref_rows(kind: str) -> list[dict]:
    q1, q2 = "Wie gieße ich einen Farn?", "Braucht ein Kaktus Dünger?"
    good1, bad1 = "Gleichmäßig feucht halten, nie austrocknen lassen.", "Einmal im Jahr reicht völlig."
    good2, bad2 = "Im Sommer alle vier Wochen etwas Kakteendünger.", "Jeden Tag viel Dünger geben."
    pairs = [(q1, good1, bad1), (q2, good2, bad2)]
    user = lambda q: {"role": "user", "content": q}  # noqa: E731
    bot = lambda a: {"role": "assistant", "content": a}  # noqa: E731
    if kind == "trl_strings":
        return [{"prompt": q, "chosen": g, "rejected": b} for q, g, b in pairs]
    if kind == "trl_conversational":
        return [{"prompt": [user(q)], "chosen": [bot(g)], "rejected": [bot(b)]} for q, g, b in pairs]
    if kind == "trl_implicit":
        return [{"chosen": [user("Hallo"), bot("Hallo!"), user(q), bot(g)],
                 "rejected": [user("Hallo"), bot("Hallo!"), user(q), bot(b)]} for q, g, b in pairs]
    if kind == "hh_rlhf":
        return [{"chosen": f"\n\nHuman: {q}\n\nAssistant: {g}", "rejected": f"\n\nHuman: {q}\n\nAssistant: {b}"}
                for q, g, b in pairs]
    if kind == "llamafactory_ranking":
        return [{"conversations": [{"from": "human", "value": q}], "chosen": {"from": "gpt", "value": g},
                 "rejected": {"from": "gpt", "value": b}} for q, g, b in pairs]
    if kind == "alpaca_ranking":
        return [{"instruction": q, "input": "", "chosen": g, "rejected": b} for q, g, b in pairs]
    if kind == "paired_columns":
        return [{"question": q, "response_j": g, "response_k": b} for q, g, b in pairs]
    if kind == "ultrafeedback":
        return [{"prompt": q, "chosen": [user(q), bot(g)], "rejected": [user(q), bot(b)], "score_chosen": 8.0,
                 "score_rejected": 3.0} for q, g, b in pairs]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["trl_strings", "trl_conversational", "trl_implicit", "hh_rlhf", "llamafactory_ranking",
                                  "alpaca_ranking", "paired_columns", "ultrafeedback"])
def test_preference_pairs_train_the_chosen_answer_only(tmp_path, tokenizer, kind):
    data = load_data(write_jsonl(tmp_path / f"{kind}.jsonl", _pref_rows(kind)))
    assert data.rows_kept == 2 and [p.kind for p in data.problems] == [], data.problems
    report_layout = inspect_data(data.source, examples=0).as_dict()["layout"]
    assert report_layout["name"] == "preference pairs" and report_layout["trained"] == "the chosen answer"
    renderer = Renderer(tokenizer)
    for row, (good, bad) in zip(data.dataset, [("Gleichmäßig", "Einmal im Jahr"), ("alle vier Wochen", "Jeden Tag")],
                                strict=True):
        trained, untrained = split_text(row, renderer)
        assert good in trained and bad not in trained + untrained
        assert ("Farn" in untrained or "Kaktus" in untrained) and "Farn" not in trained
        assert bad in row["rejected"][-1]["content"] and row["rejected"][-1]["role"] == "assistant"
        assert row["messages"][-1]["role"] == "assistant" and good in row["messages"][-1]["content"]


def test_kto_labels_leave_undesirable_answers_out_and_count_them(tmp_path, tokenizer):
    rows = [{"messages": [{"role": "user", "content": f"Frage {i}"}, {"role": "assistant", "content": f"Antwort {i}"}],
             "label": i % 3 != 0} for i in range(9)]
    data = load_data(write_jsonl(tmp_path / "kto.jsonl", rows))
    assert data.rows_kept == 6 and data.kinds["undesirable"] == 3
    kept = [row["messages"][-1]["content"] for row in data.dataset]
    assert "Antwort 0" not in kept and "Antwort 3" not in kept and "Antwort 1" in kept
    layout = inspect_data(data.source, examples=0).as_dict()["layout"]
    assert layout["name"] == "KTO-labelled answers" and "6 desirable rows trained, 3 undesirable rows left out" in layout["words"]
    assert all(p.severity == "warning" and p.kind == "undesirable" for p in data.problems)


def test_an_int_label_is_not_a_kto_label(tmp_path):
    """A classification file's 0/1 label is no KTO label: the rows are read as they are."""
    data = load_data(write_jsonl(tmp_path / "c.jsonl", [{"prompt": "p1", "completion": "c1", "label": 0},
                                                         {"prompt": "p2", "completion": "c2", "label": 1}]))
    assert data.rows_kept == 2 and data.choice.label is None


def test_mapping_advice_never_proposes_the_rejected_column(tmp_path):
    path = write_jsonl(tmp_path / "odd.jsonl", [{"rejected": "no", "response_k": "no", "label": True, "frage": "f", "antwort": "a"}])
    with pytest.raises(StudioError) as err:
        load_data(path)
    assert "prompt=frage,response=antwort" in err.value.advice


# ---------------------------------------------------------------------------------------------
# Images and other media
# ---------------------------------------------------------------------------------------------


def test_rows_that_need_their_image_are_left_out_and_image_columns_noted(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": "<image>Was zeigt das Bild?"}, {"role": "assistant", "content": "Eine Katze."}],
         "images": ["cat.jpg"]},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x.png"}},
                                                    {"type": "text", "text": "Und das?"}]},
                      {"role": "assistant", "content": "Ein Hund."}], "images": []},
        {"messages": [{"role": "user", "content": "Was ist ein Farn?"}, {"role": "assistant", "content": "Eine Pflanze."}],
         "images": ["fern.jpg"]},
        {"messages": [{"role": "user", "content": "Und ein Moos?"}, {"role": "assistant", "content": "Auch."}], "images": []},
    ]
    data = load_data(write_jsonl(tmp_path / "mm.jsonl", rows))
    assert data.rows_kept == 2 and data.choice.media == "images"
    kinds = {p.line: p.kind for p in data.problems}
    assert kinds == {1: "needs_media", 2: "needs_media", 3: "media_ignored"}
    assert all("<image>" not in t["content"] for row in data.dataset for t in row["messages"])


def test_data_where_every_row_needs_its_image_is_refused(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": f"<image>\nBild {i}?"}, {"from": "gpt", "value": f"Antwort {i}"}],
             "image": f"{i}.jpg"} for i in range(5)]
    with pytest.raises(StudioError) as err:
        load_data(write_jsonl(tmp_path / "llava.jsonl", rows))
    assert err.value.message == "None of the 5 rows can be used (5 rows that need their image)."


# ---------------------------------------------------------------------------------------------
# Layouts with an extra level
# ---------------------------------------------------------------------------------------------


def test_a_single_conversation_object_is_one_example(tmp_path):
    conversation = {"conversations": [{"from": "system", "value": "Sei knapp."}, {"from": "human", "value": "Hallo"},
                                      {"from": "gpt", "value": "Hallo!"}, {"from": "human", "value": "Wie spät?"},
                                      {"from": "gpt", "value": "Zwölf."}]}
    path = tmp_path / "one.json"
    path.write_text(json.dumps(conversation, ensure_ascii=False), encoding="utf-8")
    data = load_data(path)
    assert data.rows_kept == 1 and data.format == "sharegpt"
    assert [t["role"] for t in data.dataset[0]["messages"]] == ["system", "user", "assistant", "user", "assistant"]


def test_an_empty_answer_in_the_middle_is_kept_untrained_and_flagged(tmp_path, tokenizer):
    rows = [{"messages": [{"role": "user", "content": "Erste Frage"}, {"role": "assistant", "content": ""},
                          {"role": "user", "content": "Zweite Frage"}, {"role": "assistant", "content": "Zweite Antwort"}]},
            {"messages": [{"role": "user", "content": "Nur eine"}, {"role": "assistant", "content": "  "}]}]
    data = load_data(write_jsonl(tmp_path / "e.jsonl", rows))
    assert data.rows_kept == 1
    assert {(p.line, p.kind, p.severity) for p in data.problems} == {(1, "empty_answer_turn", "warning"),
                                                                     (2, "empty_response", "error")}
    trained, _ = split_text(data.dataset[0], Renderer(tokenizer))
    assert trained.strip().startswith("Zweite Antwort")


def test_ms_swift_query_response_with_system_and_history(tmp_path, tokenizer):
    rows = [{"system": "Du bist ein Gärtner.", "query": "Und im Winter?", "response": "Weniger gießen.",
             "history": [["Wie oft gieße ich?", "Einmal pro Woche."]]}]
    data = load_data(write_jsonl(tmp_path / "swift.jsonl", rows))
    assert data.format == "prompt_completion"
    turns = data.dataset[0]["messages"]
    assert [t["content"] for t in turns] == ["Du bist ein Gärtner.", "Wie oft gieße ich?", "Einmal pro Woche.",
                                             "Und im Winter?", "Weniger gießen."]
    trained, _ = split_text(data.dataset[0], Renderer(tokenizer))
    assert "Einmal pro Woche" in trained and "Weniger gießen" in trained


def test_a_prerendered_text_column_is_not_trained_beside_the_structured_ones(tmp_path, tokenizer):
    rows = [{"instruction": "Nenne eine Farbe.", "output": "Blau.",
             "text": "### Instruction: Nenne eine Farbe. ### Response: Blau. PRERENDERED"}]
    data = load_data(write_jsonl(tmp_path / "both.jsonl", rows))
    assert data.format == "alpaca"
    trained, untrained = split_text(data.dataset[0], Renderer(tokenizer))
    assert "Blau." in trained and "PRERENDERED" not in trained + untrained


def test_training_rows_of_tool_data_learn_the_calls(tmp_path, tokenizer):
    """The rows the trainer gets (tokenized_splits, as the worker calls it): the call is under the loss."""
    from studio.core.recipe import RunConfig
    from studio.core.training.dataset import tokenized_splits

    data = load_data(write_jsonl(tmp_path / "glaive.jsonl", llamafactory_tool_rows()))
    config = RunConfig()
    config.data.eval_fraction = 0.0
    train, _, dropped = tokenized_splits(data, tokenizer, config)
    assert len(train) == 4 and dropped == 0
    learned = [tokenizer.decode([i for i, label in zip(r["input_ids"], r["labels"], strict=True) if label != IGNORE_INDEX])
               for r in train]
    assert sum('"name": "get_weather"' in text for text in learned) == 3
    assert not any("temperature" in text for text in learned)


def test_a_real_run_on_tool_calls_lowers_their_loss(tmp_path):
    """A QLoRA worker run on the demo model trains on tool-calling rows (plain rendering): the loss falls."""
    from studio.core import runs
    from studio.core.recipe import DataSection
    from studio.core.training.events import read_events
    from tests.demo_runs import demo_recipe, train_in_process

    cities = ["Berlin", "Bonn", "Köln", "Wien", "Zürich", "Graz", "Basel", "Linz", "Bern", "Kiel", "Ulm", "Jena"]
    rows = [{"conversations": [{"from": "human", "value": f"Wetter in {city}?"},
                               {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": city}})},
                               {"from": "observation", "value": json.dumps({"t": i})},
                               {"from": "gpt", "value": f"{i} Grad in {city}."}]} for i, city in enumerate(cities)]
    data = DataSection(source=str(write_jsonl(tmp_path / "tools.jsonl", rows)), eval_fraction=0.0)
    run_dir, _ = train_in_process(demo_recipe("tools", data=data, steps=24, learning_rate=2e-3), tmp_path, tmp_path / "run")
    events = read_events(run_dir / runs.EVENTS)
    losses = [e["loss"] for e in events if e["type"] == "step"]
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed", events[-1]
    assert sum(losses[-4:]) / 4 < 0.7 * sum(losses[:4]) / 4


def test_the_window_mapping_its_columns_keeps_the_rejected_answer(tmp_path, tokenizer):
    """The Data page sends the mapping its column pickers show (prompt, response, system): the pair stays a pair."""
    path = write_jsonl(tmp_path / "pairs.jsonl", _pref_rows("trl_strings"))
    data = load_data(path, mapping={"prompt": "prompt", "response": "chosen"})
    assert data.choice.rejected == "rejected" and data.dataset[0]["rejected"][0]["content"].startswith("Einmal")
    trained, untrained = split_text(data.dataset[0], Renderer(tokenizer))
    assert "Gleichmäßig" in trained and "Einmal" not in trained + untrained
