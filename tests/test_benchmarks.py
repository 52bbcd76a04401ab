"""The benchmark harnesses run (on CPU here; the figures that matter come from a GPU, by hand)."""

import subprocess
import sys
from pathlib import Path

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
