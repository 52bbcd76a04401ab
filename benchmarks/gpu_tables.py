"""The GPU measurements of benchmarks/gpu_check.sh against today's planner (issue #17).

    python benchmarks/gpu_tables.py [benchmarks/gpu-results/2026-11-26-h100]

Reads what gpu_check.sh brought back (calibration-*.jsonl, peak-*.json) and plans every measured
case again with this checkout's plan(), so a change to the planner shows here without a GPU. Only
readings from a process that measured nothing before are used for the held figures (torch's peak
reserved and the driver's NVML figure); a case measured after others in the same process gives
its phases only (its earlier cases' leftovers are subtracted from them).

"needed" is torch's peak allocated bytes over the training steps (the tensors alive at the worst
moment), set against the plan's `needed_bytes`; "held" is what the process holds on the GPU at that
moment as the driver shows it (NVML: the CUDA context, library workspaces and the caching
allocator's reserve included), set against the plan's `held_bytes` range.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

GiB = 1024**3
PHASES = ("forward", "loss", "backward", "optimizer")


@dataclass
class Measured:
    label: str
    config: object  # RunConfig
    model: str
    needed: int
    reserved: int | None
    nvml: int | None
    phase_peaks: dict  # phase -> peak allocated bytes above what was loaded before training
    loaded: int


def _calibration_rows(folder: Path) -> list[Measured]:
    from gpu_calibrate import Case, studio_config

    rows = []
    for name, own in (("calibration-own-process.jsonl", True), ("calibration-shared-process.jsonl", False)):
        path = folder / name
        for line in path.read_text().splitlines() if path.exists() else []:
            r = json.loads(line)
            if "error" not in r and r["case"]["precision"] != "full-bf16":
                # clean: measured in a process of its own, or first in its process (only the CUDA context before it)
                rows.append((r, own or r.get("nvml_start", 0) < 0.7 * GiB))
                if own and r["measured"]["nvml"] - r["measured"]["reserved"] < 0.5 * GiB:
                    # the 2026-11-26 per-case run built the model in the first case's process and
                    # left the CUDA context out of that case's NVML figure (fixed since: --build-only)
                    r["measured"]["nvml"] = None
    # What stays allocated between steps beside the model (buffers of bitsandbytes, cuBLAS), per
    # model, from its clean cases: a later case of a shared process subtracts it with the model.
    extra = {r["case"]["model"]: _between_steps(r) - r["loaded_allocated"] for r, clean in rows if clean}
    out, seen = [], set()
    for r, clean in sorted(rows, key=lambda rc: not rc[1]):  # clean readings first
        if r["label"] in seen:
            continue
        seen.add(r["label"])
        case = Case(**r["case"])
        base = r.get("base_allocated", 0) if clean else _between_steps(r) - r["loaded_allocated"] - extra[case.model]
        peaks = {p: r["phases"][-1][p]["peak"] - base for p in PHASES}
        out.append(Measured(r["label"], studio_config(case, Path(case.model)), case.model, max(peaks.values()),
                            r["measured"]["reserved"] if clean else None, r["measured"]["nvml"] if clean else None,
                            peaks, r["loaded_allocated"]))
    return out


def _between_steps(r: dict) -> int:
    """Allocated bytes after the second optimizer step (the model, its adapter and what persists)."""
    return r["phases"][-1]["optimizer"]["end"]


def _peak_rows(folder: Path) -> list[Measured]:
    from peak_vs_plain import VARIANTS, studio_config

    out = []
    for path in sorted(folder.glob("peak-*.json")):
        for v in json.loads(path.read_text())["variants"]:
            if "error" in v:
                continue
            options = VARIANTS[v["variant"]] or VARIANTS["studio-off"]
            config = studio_config(Path(v["model"]), options, v["seq_len"], v["batch_size"], v["loss_chunk_tokens"] or 1024)
            label = f"{v['model']} 4bit b{v['batch_size']}×{v['seq_len']} r16 ckpt {v['variant']}"
            out.append(Measured(label, config, v["model"], v["peak_allocated_bytes"], v["peak_reserved_bytes"],
                                v["nvml_peak_bytes"], {}, v["loaded_allocated_bytes"]))
    return out


def replan(m: Measured):
    from studio.core.memory import plan
    from studio.core.models import resolve_model

    info = resolve_model(m.model)
    shape = m.config.train_shape(True, info.model_type)
    return plan(info, m.config.adapter_spec(), shape, m.config.precision_for("bfloat16"))


def _pct(planned: int, measured: int | None) -> float | None:
    return None if not measured else 100.0 * (planned - measured) / measured


def table(rows: list[Measured]) -> str:
    lines = ["| case | loaded GiB | needed GiB (peak allocated) | planned needed GiB | error % | planned peak phase | "
             "NVML GiB | planned held GiB | NVML in the held range |",
             "|---|---:|---:|---:|---:|---|---:|---:|---|"]
    errors, inside = [], []
    for m in rows:
        p = replan(m)
        error = _pct(p.needed_bytes, m.needed)
        errors.append(error)
        low, high = p.held_bytes
        within = None if not m.nvml else low <= m.nvml <= high
        if within is not None:
            inside.append(within)
        nvml = f"{m.nvml / GiB:.2f}" if m.nvml else "-"
        verdict = "-" if within is None else "yes" if within else ("below" if m.nvml < low else "above")
        lines.append(f"| {m.label} | {m.loaded / GiB:.2f} | {m.needed / GiB:.2f} | {p.needed_bytes / GiB:.2f} | {error:+.1f} | "
                     f"{p.peak_phase.name} | {nvml} | {low / GiB:.2f}–{high / GiB:.2f} | {verdict} |")
    a = [abs(e) for e in errors]
    lines.append("")
    lines.append(f"planned needed vs measured: median |error| {statistics.median(a):.1f}%, worst {max(a):.1f}%, "
                 f"{len(a)} cases, {sum(x <= 8 for x in a)} within ±8%")
    lines.append(f"NVML inside the planned held range: {sum(inside)} of {len(inside)} cases")
    return "\n".join(lines)


def phase_table(rows: list[Measured]) -> str:
    lines = ["| case | " + " | ".join(f"{p} GiB" for p in PHASES) + " |", "|---|" + "---:|" * len(PHASES)]
    for m in rows:
        if m.phase_peaks:
            lines.append(f"| {m.label} | " + " | ".join(f"{m.phase_peaks[p] / GiB:.2f}" for p in PHASES) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else HERE / "gpu-results" / "2026-11-26-h100"
    rows = _calibration_rows(folder) + _peak_rows(folder)
    print(f"python benchmarks/gpu_tables.py {folder.relative_to(HERE.parent) if folder.is_relative_to(HERE.parent) else folder}\n")
    print(table(rows))
    print("\nPeak allocated bytes in each phase of the second training step (whole model included):\n")
    print(phase_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
