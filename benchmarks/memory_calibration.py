"""How close the planner's tensor terms are to what a run really holds, component by component, on the CPU.

    python benchmarks/memory_calibration.py --device cpu

The GPU measurement (peaks phase by phase, what the process holds) is benchmarks/gpu_calibrate.py,
run by benchmarks/gpu_check.sh; this script keeps `build_random_model` for both.

  The demo model in 4-bit with fp32 compute, in-process: weights, adapter, gradients and optimizer
  states measured from the tensors' storages, activations as the bytes autograd saves for backward
  (saved-tensor hooks), against the same components of plan(). Logits and CUDA overhead have no CPU
  counterpart and are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Case:
    model: str
    seq_len: int
    batch_size: int = 1
    rank: int = 16
    gradient_checkpointing: bool = True
    precision: str = "4bit"

    def label(self) -> str:
        ckpt = "ckpt" if self.gradient_checkpointing else "no-ckpt"
        return f"{self.model} {self.precision} b{self.batch_size}×{self.seq_len} r{self.rank} {ckpt}"


CPU_CASES = [Case("demo", 128, 2, 8), Case("demo", 256, 1, 16), Case("demo", 128, 2, 16, False)]


@dataclass
class Row:
    case: Case
    planned: dict
    measured: dict
    notes: list = field(default_factory=list)



# ---------------------------------------------------------------------------------------------
# CPU: component by component, in-process
# ---------------------------------------------------------------------------------------------


def _storage_bytes(tensors) -> int:
    import torch

    seen = {}
    for t in tensors:
        if torch.is_tensor(t) and t.device.type != "meta":
            s = t.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


def measure_cpu(case: Case) -> Row:
    import torch
    from torch.autograd.graph import saved_tensors_hooks

    from studio.core.memory import plan
    from studio.core.models import resolve_model
    from studio.core.recipe import RunConfig
    from studio.core.training.model import load_model

    config = RunConfig()
    config.model.source = case.model
    config.adapter.rank, config.adapter.alpha = case.rank, 2 * case.rank
    t = config.training
    t.precision, t.batch_size, t.seq_len, t.gradient_checkpointing, t.optimizer = case.precision, case.batch_size, case.seq_len, \
        case.gradient_checkpointing, "adamw"
    info = resolve_model(case.model)
    model = load_model(config, info, torch.device("cpu"), "float32")
    p = plan(info, config.adapter_spec(), config.train_shape(on_gpu=False), config.precision_for("float32"))

    params = list(model.parameters())
    param_ptrs = {x.untyped_storage().data_ptr() for x in params}
    quant = []
    for module in model.modules():
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is not None:
            quant += [module.weight.data, state.absmax, state.code]
            if state.nested:
                quant += [state.offset, state.state2.absmax, state.state2.code]
    trainable = [x for x in params if x.requires_grad]
    frozen = [x for x in params if not x.requires_grad and x.__class__.__name__ != "Params4bit"]

    saved: dict[int, int] = {}

    def pack(x):
        if torch.is_tensor(x) and x.untyped_storage().data_ptr() not in param_ptrs:
            saved[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes()
        return x

    ids = torch.randint(5, info.vocab_size, (case.batch_size, case.seq_len))
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    model.train()
    with saved_tensors_hooks(pack, lambda x: x):
        out = model(input_ids=ids, labels=ids)
    forward_saved = sum(saved.values())
    out.loss.backward()
    optimizer.step()
    logits_bytes = out.logits.numel() * 4  # the loss keeps its fp32 log-probabilities: planned under "logits"
    measured = {
        "quantized_weights": _storage_bytes(quant),
        "unquantized_weights": _storage_bytes(frozen),
        "lora_weights": _storage_bytes(trainable),
        "lora_gradients": _storage_bytes(x.grad for x in trainable),
        "optimizer_states": _storage_bytes(v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.numel() > 1),
    }
    if not case.gradient_checkpointing:
        # Everything autograd saves in forward, minus the loss's log-probabilities. (Non-reentrant
        # checkpointing saves through hooks of its own, which these do not see: GPU cases measure it.)
        measured["activations"] = forward_saved - logits_bytes
    planned = {c.name: c.bytes for c in p.components if c.name in measured}
    measured["total"] = sum(measured.values())
    planned["total"] = sum(planned.values())
    return Row(case, planned, measured,
               ["CPU: storages and saved tensors; logits, CUDA overhead and checkpointed activations not measured"])


def build_random_model(name: str, folder: Path, overrides: dict | None = None) -> Path:
    """The catalog architecture with random weights (bf16 safetensors) and the demo tokenizer;
    `overrides` replaces config values (e.g. smaller sizes for a CPU check)."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    from studio.core.models import catalog_entry
    from studio.core.paths import demo_model_dir

    entry = catalog_entry(name)
    raw = {**json.loads(entry.config_path.read_text()), **(overrides or {})}
    raw.pop("quantization_config", None)
    for key in ("pad_token_id", "bos_token_id", "eos_token_id"):  # a shrunk vocabulary must still hold them
        ids = raw.get(key)
        if isinstance(ids, int) and ids >= raw["vocab_size"] or isinstance(ids, list) and max(ids) >= raw["vocab_size"]:
            raw[key] = 0
    config = CONFIG_MAPPING[raw["model_type"]].from_dict(raw)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    del model
    for f in demo_model_dir().iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "special_tokens")):
            shutil.copy(f, folder / f.name)
    return folder


# ---------------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    names = ["quantized_weights", "unquantized_weights", "lora_weights", "lora_gradients", "optimizer_states", "activations", "total"]
    out = ["| case | component | planned MiB | measured MiB | error % |", "|---|---|---:|---:|---:|"]
    for r in rows:
        for n in names:
            if n not in r.measured:
                continue
            p, m = r.planned.get(n, 0), r.measured.get(n, 0)
            err = f"{100 * (p - m) / m:+.1f}" if m else "-"
            out.append(f"| {r.case.label()} | {n} | {p / 2**20:.3f} | {m / 2**20:.3f} | {err} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu"], default="cpu",
                    help="cpu only: the GPU measurement is benchmarks/gpu_calibrate.py (benchmarks/gpu_check.sh)")
    ap.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = ap.parse_args(argv)
    import torch
    import transformers

    rows = [measure_cpu(case) for case in CPU_CASES]
    print(f"command: python benchmarks/memory_calibration.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"device: CPU ({os.cpu_count()} cores); torch {torch.__version__}, transformers {transformers.__version__}")
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps([{**asdict(r.case), "planned": r.planned, "measured": r.measured, "notes": r.notes}
                                        for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
