"""GGUF export, proven in llama.cpp: a real demo run merged, written as GGUF files, quantized by llama.cpp,
loaded by llama.cpp (llama-cpp-python, no mocks) and compared token for token with transformers; the
Ollama and LM Studio layouts; Cancel, a kill, a full disk and a missing optional dependency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core import export, runs
from studio.core.errors import StudioError
from studio.core.export import exporting, to_gguf
from studio.core.export.to_gguf.vocab import runner_chat_template
from tests.demo_runs import finished_demo_run

pytestmark = pytest.mark.slow

PROMPTS = ["My fern has brown, crispy tips. What is wrong?", "How often should I water a cactus in winter?",
           "Mon ficus perd ses feuilles, que faire ?", "Which plants are safe for cats?", "Why are my basil leaves drooping?"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    return finished_demo_run(tmp_path_factory.mktemp("gguf-home"), "Plant_Doctor", sample_prompts=PROMPTS)


@pytest.fixture(scope="module")
def gguf_export(finished_run, tmp_path_factory):
    target = tmp_path_factory.mktemp("gguf-exports") / "for-desktops"
    stages = []
    result = export.export_run(finished_run, target, gguf=("bf16", "q8_0", "q4_k_m"), ollama=True, lmstudio=True,
                               progress=lambda message, fraction: stages.append((message, fraction)))
    return target, result, stages


def test_the_16_bit_gguf_answers_exactly_as_transformers_and_quantized_ones_report_how_close(gguf_export):
    target, result, stages = gguf_export
    assert result.kind == "gguf" and [g.quant for g in result.gguf] == ["bf16", "q8_0", "q4_k_m"]
    sixteen, q8, q4 = result.gguf
    # the proof: llama.cpp loaded each file and answered the run's five sample prompts, 32 tokens each
    assert sixteen.check.prompts == 5 and sixteen.check.tokens == 32
    assert sixteen.check.identical_answers == 5 and sixteen.check.tokenizer_agrees == 5 and sixteen.check.passed
    assert sixteen.check.summary() == "Checked in llama.cpp: 5 of 5 sample answers identical to transformers' for 32 tokens."
    for quantized in (q8, q4):
        assert quantized.check.tokenizer_agrees == 5 and 0 <= quantized.check.identical_token_share <= 1
        assert f"top-1 agreement {quantized.check.top1_agreement:.0%}" in quantized.check.summary()
    assert q8.check.top1_agreement >= 0.95 and q4.check.top1_agreement >= 0.8  # measured: 1.00 and 0.99
    assert q4.size_bytes < q8.size_bytes < sixteen.size_bytes
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and any("Quantizing to q4_k_m" in m for m, _ in stages)


def test_the_folder_has_lm_studios_layout_ollamas_modelfile_and_nothing_half_written(gguf_export):
    target, result, _ = gguf_export
    slug = "plant_doctor"
    for g in result.gguf:
        assert g.path == f"lora-studio/{slug}/{slug}-{g.quant}.gguf" and (target / g.path).stat().st_size == g.size_bytes
    assert sorted(p.name for p in target.rglob("*") if p.is_file() and p.suffix == ".gguf") == \
        sorted(f"{slug}-{t}.gguf" for t in ("bf16", "q8_0", "q4_k_m"))
    assert not [p for p in target.rglob("*") if p.name.startswith(".")]  # no merged or 16-bit leftovers
    assert not (target / "config.json").exists() and not (target / "adapter_model.safetensors").exists()
    modelfile = (target / "Modelfile").read_text().splitlines()
    assert f"FROM ./lora-studio/{slug}/{slug}-bf16.gguf" in modelfile and not any(line.startswith("ADAPTER") for line in modelfile)
    assert any(line.startswith('TEMPLATE """') for line in modelfile) and 'PARAMETER stop "<|im_end|>"' in modelfile
    card = (target / "README.md").read_text()
    assert "GGUF model for" in card and "Checked in llama.cpp: 5 of 5" in card and "lms import" in card
    marker = json.loads((target / export.MARKER).read_text())
    assert marker["kind"] == "gguf" and marker["gguf"]["q4_k_m"]["check"]["prompts"] == 5
    assert {e["path"] for e in marker["files"]} >= {g.path for g in result.gguf}


def test_a_runner_finds_everything_it_needs_inside_the_file(finished_run, gguf_export):
    """llama.cpp itself, with no other file: the chat template training used (rendered by llama.cpp's own
    template engine), the end-of-turn token that stops the answer, and the same answer the check saw."""
    import llama_cpp
    from transformers import AutoTokenizer

    target, result, _ = gguf_export
    tokenizer = AutoTokenizer.from_pretrained(str(finished_run / runs.ADAPTER))
    llm = llama_cpp.Llama(model_path=str(target / result.gguf[0].path), n_ctx=512, verbose=False)
    assert llm.metadata["tokenizer.chat_template"] == runner_chat_template(tokenizer.chat_template)
    assert llm.token_eos() == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    reply = llm.create_chat_completion(messages=[{"role": "user", "content": PROMPTS[0]}], max_tokens=200, temperature=0.0)
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "stop"  # it ends its turn instead of answering forever
    expected = to_gguf.answer_with_gguf(target / result.gguf[0].path, finished_run / runs.ADAPTER, PROMPTS[0], max_tokens=200)
    assert choice["message"]["content"].strip() == expected.strip() and len(expected.split()) > 5


def test_one_quantized_type_alone_leaves_no_16_bit_file_and_the_cli_prints_the_figures(finished_run, tmp_path, capsys):
    from studio.cli import main

    target = tmp_path / "q8"
    code = main(["export", str(finished_run), "--to", str(target), "--gguf", "Q8_0", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["kind"] == "gguf"
    assert [g["type"] for g in out["gguf"]] == ["q8_0"] and out["gguf"][0]["check"]["passed"]
    assert out["gguf"][0]["check"]["top1_agreement"] >= 0.95
    assert sorted(p.name for p in target.iterdir()) == sorted(["plant_doctor-q8_0.gguf", "README.md", "loss.svg", "run.toml",
                                                               export.MARKER])


def test_cancel_while_quantizing_writes_nothing(finished_run, tmp_path):
    earlier = tmp_path / "earlier"
    export.export_run(finished_run, earlier)  # an earlier adapter export, which must stay as it was
    before = {p.name: p.read_bytes() for p in earlier.iterdir()}
    seen = []

    def cancelled() -> bool:
        return any(message.startswith("Quantizing") for message in seen)

    with pytest.raises(to_gguf.Cancelled):
        export.export_run(finished_run, earlier, gguf=("q4_k_m",), progress=lambda m, f: seen.append(m), cancelled=cancelled)
    assert {p.name: p.read_bytes() for p in earlier.iterdir()} == before


def test_a_killed_export_leaves_no_gguf_and_the_next_one_completes(finished_run, tmp_path):
    target = tmp_path / "killed"
    args = ["export", str(finished_run), "--to", str(target), "--gguf", "q4_k_m"]
    cmd = [sys.executable, "-c", f"import sys; from studio.cli import main; sys.exit(main({args!r}))"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    for line in proc.stdout:
        if "Quantizing" in line or "Checking the q4_k_m" in line:
            os.killpg(proc.pid, signal.SIGKILL)  # the export and its llama.cpp child, as a crash or a closed laptop would
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not [p for p in target.iterdir() if not p.name.startswith(".")]  # only the hidden staging folder, if anything
    result = export.export_run(finished_run, target, gguf=("q4_k_m",))
    assert result.checks_passed and sorted(p.name for p in target.iterdir()) == sorted(
        ["plant_doctor-q4_k_m.gguf", "README.md", "loss.svg", "run.toml", export.MARKER])


def test_too_little_disk_for_the_gguf_files_is_refused_before_writing(finished_run, tmp_path, monkeypatch):
    need = export.expected_bytes(runs.read_run(finished_run), False, ("q4_k_m",))
    monkeypatch.setattr(exporting, "free_bytes", lambda path: need // 2)
    with pytest.raises(StudioError, match="MB are free") as err:
        export.export_run(finished_run, tmp_path / "full", gguf=("q4_k_m",))
    assert "Free some disk space" in err.value.advice and not (tmp_path / "full").exists()
    sizes = export.estimated_gguf_sizes(finished_run, ["q4_k_m", "bf16"])
    assert 0 < sizes["q4_k_m"] < sizes["bf16"]


def test_without_the_optional_packages_the_export_says_how_to_install_them(finished_run, tmp_path, monkeypatch, capsys):
    import importlib.util

    from studio.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(StudioError, match="llama-cpp-python") as err:
        export.export_run(finished_run, tmp_path / "x", gguf=("q4_k_m",))
    assert "pip install 'lora-studio[gguf]'" in err.value.advice and not (tmp_path / "x").exists()
    assert main(["export", str(finished_run), "--to", str(tmp_path / "x"), "--ollama"]) == 2
    assert "pip install 'lora-studio[gguf]'" in capsys.readouterr().err


def test_options_that_do_not_go_together_are_refused(finished_run, tmp_path):
    with pytest.raises(StudioError, match="GGUF type 'q3'"):
        export.export_run(finished_run, tmp_path / "a", gguf=("q3",))
    with pytest.raises(StudioError, match="LM Studio opens GGUF files"):
        export.export_run(finished_run, tmp_path / "a", lmstudio=True)
    with pytest.raises(StudioError, match="--ollama-adapter writes"):
        export.export_run(finished_run, tmp_path / "a", gguf=("q8_0",), ollama_adapter=True)
    assert not (tmp_path / "a").exists()


def test_a_16_bit_file_that_answers_differently_fails_the_check_and_says_where(finished_run, gguf_export, tmp_path):
    """The check compares real answers: a reference that says otherwise at token 5 fails it, naming the words,
    unless transformers' own first two choices tie there (16-bit rounding may then pick either)."""
    import dataclasses

    from transformers import AutoTokenizer

    target, result, _ = gguf_export
    merged = tmp_path / "merged"
    export.export_run(finished_run, merged, merged=True)
    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    reference = to_gguf.reference_answers(merged, PROMPTS[:2], None)
    assert len(reference.gaps[0]) == 32 and all(g >= 0 for g in reference.gaps[0])
    path = target / result.gguf[0].path
    assert to_gguf.check_gguf(path, "bf16", reference, exact=True, decode=tokenizer.decode).passed

    answer = list(reference.answer_ids[0])
    answer[5] = (answer[5] + 1) % len(tokenizer)  # what transformers "said" at token 5 is now something else
    wrong = dataclasses.replace(reference, answer_ids=(tuple(answer),) + reference.answer_ids[1:])
    check = to_gguf.check_gguf(path, "bf16", wrong, exact=True, decode=tokenizer.decode)
    assert not check.passed and check.identical_answers == 1
    assert check.summary().startswith("CHECK FAILED. Checked in llama.cpp: 1 of 2 sample answers identical")
    assert "Prompt 1: the answers part after 5 tokens" in check.summary()

    gaps = list(reference.gaps[0])
    gaps[5] = 0.001
    tied = dataclasses.replace(wrong, gaps=(tuple(gaps),) + reference.gaps[1:])
    check = to_gguf.check_gguf(path, "bf16", tied, exact=True, decode=tokenizer.decode)
    assert check.passed and check.ties == 1 and "tie" in check.summary()
