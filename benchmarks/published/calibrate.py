"""The memory planner against published, measured fine-tuning runs (runs.json beside this file).

    .venv/bin/python benchmarks/published/calibrate.py [--json OUT] [--runs PATH]

For each run: its model (a catalog name, or a hub id with the config written out in the entry),
its settings turned into the planner's arguments, `plan(...)`, and the planned figure comparable to
what the source measured:

  * max_memory_allocated: the tensor peak ("needed");
  * max_memory_reserved: the middle of the allocator's planned reserve range at that peak;
  * nvidia-smi: the middle of the planned "held" range (the reserve, the CUDA context, workspaces);
  * longest-that-fit: the plan's conservative total (the range's upper end, what the fit check
    uses) at that length, against the card's memory.

Error = (planned - measured) / measured. Runs whose precision the planner cannot express yet
(pure-bf16 full fine-tuning) are listed without an error; settings it cannot express exactly are
mapped to the nearest it has and counted in the row's "approx" column (see `_arguments`).
Runs on CPU in seconds: nothing is allocated, no model is downloaded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from studio.core.errors import StudioError  # noqa: E402
from studio.core.memory import AdapterSpec, Precision, TrainShape, plan  # noqa: E402
from studio.core.memory.held import reserved_range  # noqa: E402
from studio.core.models import catalog_entry, resolve_model  # noqa: E402

GiB = 1024**3
# The plain transformers + PEFT (+ bitsandbytes) stack, TRL's SFTTrainer and the HF Trainer included.
PLAIN_HF = ("transformers", "transformers-peft", "transformers-peft-bnb", "trl-sft")
PRECISION_MODE = {"4bit": "4bit", "8bit": "8bit", "16bit": "16bit", "full-mixed": "full", "full": "full"}


def load_model(run: dict, tmp: Path):
    """ModelInfo from the catalog, or from the entry's config written to a config.json and
    inspected by the studio's own code (resolve_model on a .json path)."""
    name = run["model"]
    if "config" not in run:
        if catalog_entry(name) is None:
            raise SystemExit(f"{run['id']}: {name} is not in the catalog and the entry has no config")
        return resolve_model(name)
    config_file = tmp / run["id"] / "config.json"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    config_file.write_text(json.dumps(run["config"]))
    return resolve_model(str(config_file))


def _arguments(run: dict, model) -> tuple[tuple, list[str]]:
    """(adapter, shape, precision) for plan(), and the settings that had to be approximated."""
    approx = []
    lora = run.get("lora") or {}
    mode = PRECISION_MODE.get(run["precision"], run["precision"])  # "full-bf16": passed as is, refused until modelled
    targets = lora.get("targets", "all-linear")
    targets = ("all-linear",) if targets == "all-linear" else tuple(targets)
    adapter = AdapterSpec(rank=lora.get("rank", 16), alpha=lora.get("alpha", 32), dropout=lora.get("dropout", 0.05),
                          targets=targets, use_dora=bool(lora.get("dora")), use_rslora=bool(lora.get("rslora")))
    if lora.get("dora"):
        approx.append("dora")
    attention = run.get("attention", "sdpa")
    loss = run.get("loss", "hf")
    chunk = int(run.get("loss_chunk_tokens") or 0) if loss in ("chunked", "liger", "fused") else 0
    if loss in ("liger", "fused") or (loss == "chunked" and run["framework"] in ("litgpt", "torchtune")):
        approx.append(f"loss={loss}")  # litgpt/torchtune keep every bf16 logit chunk; the planner's chunked loss does not
    shape = TrainShape(batch_size=run["batch_size"], seq_len=run["seq_len"], grad_accum=1,
                       gradient_checkpointing=bool(run["gradient_checkpointing"]), optimizer=run["optimizer"],
                       attention=attention, loss_chunk_tokens=chunk,
                       loss="transformers<4.46" if _older((run.get("versions") or {}).get("transformers")) else "transformers")
    upcast = run.get("upcast")
    precision = Precision(mode=mode, quant_type=run.get("quant_type") or "nf4",
                          double_quant=bool(run.get("double_quant")) if run.get("double_quant") is not None else True,
                          compute_dtype="bfloat16", upcast_frozen=upcast is True,
                          norms_fp32=upcast == "bf16-trl")  # TRL: norms fp32, embeddings/lm_head bf16
    if run["framework"] in ("litgpt", "torchtune") and mode != "full":
        approx.append("bf16-lora")  # LoRA weights and AdamW states in bf16, not fp32
    return (adapter, shape, precision), approx


def _older(version: str | None) -> bool:
    """Whether the run's transformers predates 4.46, whose models returned fp32 logits."""
    if not version:
        return False
    major, minor = (int(x) for x in version.split(".")[:2])
    return (major, minor) < (4, 46)


def planned_figure(memory_plan, kind: str) -> int:
    if kind == "max_memory_allocated":
        return memory_plan.needed_bytes
    if kind == "max_memory_reserved":
        return sum(reserved_range(memory_plan.model, memory_plan.shape, memory_plan.needed_bytes)) // 2
    if kind == "nvidia-smi":
        return sum(memory_plan.held_bytes) // 2
    return memory_plan.total_bytes


def summary(run: dict) -> str:
    lora = run.get("lora")
    if lora:
        t = lora["targets"]
        t = "all" if t == "all-linear" else ",".join(x.replace("_proj", "") for x in t)
        who = f"r{lora['rank']} {t}" + (" DoRA" if lora.get("dora") else "")
    else:
        who = "full"
    q = run["precision"] + ("-dq" if run.get("double_quant") else "") if run["precision"] == "4bit" else run["precision"]
    ck = "ckpt" if run["gradient_checkpointing"] else "no-ckpt"
    loss = run.get("loss", "hf")
    return f"{q} {who} b{run['batch_size']}×{run['seq_len']} {ck} {run['optimizer']} loss={loss}"


def evaluate(runs: list[dict]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in runs:
            model = load_model(run, Path(tmp))
            (adapter, shape, precision), approx = (None, None, None), []
            row = {"id": run["id"], "framework": run["framework"], "model": run["model"], "config": summary(run),
                   "measured_kind": run["measured"]["kind"], "measured_bytes": int(run["measured"]["bytes"]),
                   "planned_bytes": None, "error_pct": None, "approx": [], "skipped": None, "components": {}}
            try:
                (adapter, shape, precision), approx = _arguments(run, model)
                memory_plan = plan(model, adapter, shape, precision)
            except StudioError as exc:
                row["skipped"] = f"not modelled: {exc.args[0] if exc.args else exc}"
                rows.append(row)
                continue
            planned = planned_figure(memory_plan, run["measured"]["kind"])
            row.update(planned_bytes=planned, approx=approx,
                       error_pct=100.0 * (planned - row["measured_bytes"]) / row["measured_bytes"],
                       components={c.name: c.bytes for c in memory_plan.components})
            rows.append(row)
    return rows


def _stats(rows: list[dict]) -> str:
    errors = [abs(r["error_pct"]) for r in rows if r["error_pct"] is not None]
    if not errors:
        return "no runs"
    return f"{len(errors)} runs, median |error| {statistics.median(errors):.1f}%, max {max(errors):.1f}%"


def table(rows: list[dict]) -> str:
    out = ["| id | framework | model | config | measured | measured GiB | planned GiB | error | approx |",
           "|---|---|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        planned = f"{r['planned_bytes'] / GiB:.2f}" if r["planned_bytes"] is not None else "—"
        error = f"{r['error_pct']:+.1f}%" if r["error_pct"] is not None else (r["skipped"] or "—")
        out.append(f"| {r['id']} | {r['framework']} | {r['model']} | {r['config']} | {r['measured_kind']} | "
                   f"{r['measured_bytes'] / GiB:.2f} | {planned} | {error} | {', '.join(r['approx']) or ''} |")
    plain = [r for r in rows if r["framework"] in PLAIN_HF]
    out += ["", f"- transformers + PEFT (+ bitsandbytes, TRL, HF Trainer): {_stats(plain)}",
            f"- of these, settings the planner describes exactly (no approx): {_stats([r for r in plain if not r['approx']])}",
            f"- all runs: {_stats(rows)}",
            f"- not modelled (no planned figure): {sum(r['planned_bytes'] is None for r in rows)}"]
    return "\n".join(out)


BEGIN, END = "<!-- published-runs: begin (benchmarks/published/calibrate.py --results) -->", "<!-- published-runs: end -->"


def write_results(path: Path, text: str) -> None:
    """Replace what stands between the markers in RESULTS.md with `text`."""
    page = path.read_text(encoding="utf-8")
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{path} has no published-runs markers: add the two lines {BEGIN} and {END} where the table goes.")
    head, rest = page.split(BEGIN, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=HERE / "runs.json")
    parser.add_argument("--json", type=Path, help="write the rows (with the plan's components) here")
    parser.add_argument("--results", type=Path, nargs="?", const=HERE.parent / "RESULTS.md",
                        help="also write the table into RESULTS.md, between its published-runs markers")
    args = parser.parse_args(argv)
    runs = json.loads(args.runs.read_text())["runs"]
    rows = evaluate(runs)
    print(table(rows))
    if args.results:
        write_results(args.results, table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
