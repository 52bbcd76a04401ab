"""The benchmark harnesses run (on CPU here; the figures that matter come from a GPU, by hand)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args, timeout=600):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_memory_calibration_harness_on_cpu():
    out = run("benchmarks/memory_calibration.py", "--device", "cpu")
    assert "| case | component |" in out
    rows = [line for line in out.splitlines() if line.startswith("| demo")]
    exact = [r for r in rows if any(f"| {n} |" in r for n in ("quantized_weights", "unquantized_weights", "lora_weights",
                                                              "lora_gradients", "optimizer_states"))]
    assert len(exact) == 15 and all(r.endswith("| +0.0 |") for r in exact)  # the exact terms are exact
    assert any("| activations |" in r for r in rows)


def test_data_inspect_benchmark_runs():
    out = run("benchmarks/data_inspect.py", "--rows", "3000")
    assert "rows 3,000" in out and "peak resident memory" in out


def test_data_layouts_benchmark_runs(tmp_path):
    """Tool calls and preference pairs through `studio data inspect --json`, small; the section is rewritten in place."""
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Data layouts\n\n<!-- data-layouts:start -->\nstale figures\n<!-- data-layouts:end -->\n"
                       "\n## After\n", encoding="utf-8")
    out = run("benchmarks/data_layouts.py", "--rows", "300", "--no-startup", "--results", str(results))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in out.splitlines()
            if line.startswith("| tool") or line.startswith("| preference")}
    assert rows["tool calls (OpenAI)"][0] == "300" and rows["tool calls (OpenAI)"][4] == "tool calling"
    assert int(rows["tool calls (OpenAI)"][2]) < 300  # the duplicates and broken rows are left out
    assert rows["preference (TRL)"][2] == "300" and rows["preference (TRL)"][4] == "preference pairs"
    text = results.read_text(encoding="utf-8")
    assert "stale figures" not in text and text.count("<!-- data-layouts:start -->") == 1 and text.rstrip().endswith("## After")
    assert "| tool calls (OpenAI) | 300 |" in text and "cached run the same report: yes" in text


def test_peak_vs_plain_on_cpu(tmp_path):
    """The memory-options benchmark on a tiny Llama: every variant trains, from the same first loss."""
    variants = ("plain", "studio-off", "chunked-loss", "packing", "no-fp32-copy", "all-options")
    report = tmp_path / "peak.json"
    out = run("benchmarks/peak_vs_plain.py", "--device", "cpu", "--steps", "2", "--jobs", "2", "--out", str(report))
    rows = {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")}
    assert set(variants) <= rows
    assert "all-options vs plain:" in out
    results = {r["variant"]: r for r in json.loads(report.read_text())["variants"]}
    assert set(results) == set(variants)
    for r in results.values():
        assert "error" not in r, r
        assert len(r["losses"]) == r["warmup_steps"] + 2 and all(math.isfinite(x) for x in r["losses"])
        assert math.isfinite(r["eval_loss"]) and r["tokens_per_s"] > 0 and r["planned_bytes"] > 0
    # same rows, same seed: the chunked loss starts where transformers' loss does
    assert results["chunked-loss"]["losses"][0] == pytest.approx(results["plain"]["losses"][0], rel=1e-3)
    # the options lower the peak of live tensors (the CPU's stand-in for the GPU allocator's peak)
    peak = {name: r["peak_tensor_bytes"] for name, r in results.items()}
    assert peak["chunked-loss"] < peak["plain"] and peak["no-fp32-copy"] < peak["plain"]
    assert peak["all-options"] < min(peak["chunked-loss"], peak["no-fp32-copy"])


def test_faults_benchmark_smoke(tmp_path):
    """One kill in the final save of a 4-step run, resumed: the harness runs and compares the adapters
    (the 30-kill figure in RESULTS.md is measured by hand)."""
    out = run("benchmarks/faults.py", "--kills", "1", "--steps", "4", "--save-every", "2", "--again", "0",
              "--phases", "final-save", "--work", str(tmp_path / "faults"))
    assert "machine:" in out and "same adapter as the uninterrupted run: 1/1" in out


def test_gpu_calibration_rehearsal_on_cpu(tmp_path):
    """gpu_check.sh's calibration on the CPU, shrunk: every case of a model trains its two steps
    through the studio's own loader and Trainer, and each step's phases are recorded in order."""
    run("benchmarks/gpu_calibrate.py", "--cpu-rehearsal", "--models", "qwen3-0.6b", "--out", str(tmp_path),
        "--work", str(tmp_path / "models"))
    rows = [json.loads(line) for line in (tmp_path / "calibration.jsonl").read_text().splitlines()]
    assert [r["case"]["use_dora"] for r in rows] == [False, True] and not any("error" in r for r in rows)
    for r in rows:
        assert len(r["phases"]) == 2 and all(list(step) == ["before", "forward", "loss", "backward", "optimizer"]
                                             for step in r["phases"])
        assert len(r["losses"]) == 2 and all(math.isfinite(x) for x in r["losses"]) and r["planned"]["total"] > 0


def test_gpu_tables_from_the_h100_readings():
    """The committed H100 readings, planned again with this checkout's planner: the issue's bar
    (every case within ±8% of the measured tensor peak, median within 4%)."""
    import re

    out = run("benchmarks/gpu_tables.py")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "GiB" not in line and "-|" not in line]
    assert len([r for r in rows if r.count("|") == 10]) == 24
    m = re.search(r"median \|error\| ([\d.]+)%, worst ([\d.]+)%, 24 cases, (\d+) within ±8%", out)
    assert m and float(m.group(1)) <= 4 and int(m.group(3)) == 24, out[-400:]
    inside = re.search(r"NVML inside the planned held range: (\d+) of (\d+) cases", out)
    assert inside and int(inside.group(1)) >= int(inside.group(2)) - 1


def test_published_runs_are_planned_within_the_bar():
    """benchmarks/published: plain transformers + PEFT (+ bitsandbytes, TRL) runs within a median 5%,
    none beyond 12% (issue #17)."""
    import re

    out = run("benchmarks/published/calibrate.py")
    m = re.search(r"transformers \+ PEFT .*?: (\d+) runs, median \|error\| ([\d.]+)%, max ([\d.]+)%", out)
    assert m and int(m.group(1)) >= 20 and float(m.group(2)) <= 5 and float(m.group(3)) <= 12, out[-600:]
