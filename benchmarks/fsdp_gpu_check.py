"""The studio's FSDP-QLoRA path on a GPU, for a lent machine (one GPU: one process; several: as many).

    bash benchmarks/gpu_check.sh --wheels                  # bitsandbytes, peft, … into .whl/ (no datasets needed)
    python -m accelerate.commands.launch --num_processes 1 $(python benchmarks/fsdp_gpu_check.py --flags) \\
        benchmarks/fsdp_gpu_check.py OUT                    # on the GPU machine, PYTHONPATH=/tmp/site:$PWD
    PYTHONPATH=tests/fsdp_on_cpu python -m accelerate.commands.launch --num_processes 2 \\
        $(python benchmarks/fsdp_gpu_check.py --flags) benchmarks/fsdp_gpu_check.py OUT --rehearse   # on a CPU

The studio's worker needs `datasets` (pyarrow, 55 MB), which does not travel with bitsandbytes (43 MB) in
the 64 MiB a device call carries, so this script trains without it — with the worker's own parts: the
model loaded by `training.model.load_model` as an FSDP process loads it (4-bit weights stored in the
compute dtype, into CPU memory; FSDP2 moves each process's share to its GPU), the launch flags of
`training.distributed.fsdp_flags`, transformers' Trainer, the adapter gathered by `full_adapter_state`
and what a process holds by `process_bytes`. A random Llama 3 8B-shaped model (4 layers), 12 steps,
a checkpoint at step 6, then a resume from it. It writes OUT/fsdp.json: the losses of both attempts,
the GPU's peak, process_bytes beside the plan's per-GPU figures, and whether the gathered adapter has
the full shapes. On one GPU it checks what one process can: bitsandbytes' 4-bit layers moved and run
under FSDP2 on CUDA, checkpoint and resume; the sharding itself needs several GPUs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
STEPS, SAVE_AT = 12, 6


def config_for(model_dir: Path, processes: int):
    from studio.core.recipe import RunConfig

    config = RunConfig()
    config.model.source = str(model_dir)
    t = config.training
    t.num_processes, t.strategy, t.seq_len, t.batch_size, t.grad_accum = processes, "fsdp", 512, 1, 1
    t.steps, t.epochs, t.save_every, t.eval_every, t.learning_rate = STEPS, None, SAVE_AT, 0, 1e-3
    return config


def train(config, info, out: Path, resume: bool) -> dict:
    import torch
    from gpu_calibrate import random_rows
    from transformers import Trainer

    from studio.core.training.distributed import full_adapter_state, process_bytes
    from studio.core.training.model import device_and_dtype, load_model
    from studio.core.training.trainer import training_arguments

    device, dtype = device_and_dtype(config)
    model = load_model(config, info, device, dtype)
    shape = config.train_shape(device.type == "cuda", info.model_type)
    args = training_arguments(config, shape, run_dir=out, total_steps=STEPS, compute_dtype=dtype,
                              on_gpu=device.type == "cuda", has_eval=False, world=int(os.environ.get("WORLD_SIZE", "1")))
    rows = random_rows(64, config.training.seq_len, info.vocab_size)
    trainer = Trainer(model=model, args=args, train_dataset=rows)
    held: dict = {}

    class Measure(__import__("transformers").TrainerCallback):
        def on_step_end(self, a, state, control, model=None, optimizer=None, **kw):
            if not held:
                held.update(process_bytes(model, optimizer))

    trainer.add_callback(Measure())
    checkpoint = out / "checkpoints" / f"checkpoint-{SAVE_AT}"
    trainer.train(resume_from_checkpoint=str(checkpoint) if resume else None)
    adapter = full_adapter_state(trainer.model)
    losses = {h["step"]: h["loss"] for h in trainer.state.log_history if "loss" in h}
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return {"losses": losses, "held": held, "gpu_peak_bytes": peak, "fsdp": trainer.is_fsdp_enabled,
            "adapter_shapes": {k: list(v.shape) for k, v in list(adapter.items())[:4]}, "adapter_tensors": len(adapter)}


def main() -> None:
    if "--flags" in sys.argv:
        from studio.core.training.distributed import fsdp_flags

        print(" ".join(fsdp_flags()))
        return
    from memory_calibration import build_random_model

    from studio.core.memory import plan
    from studio.core.models import resolve_model

    out = Path(sys.argv[1])
    rehearse = "--rehearse" in sys.argv
    rank, processes = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    model_dir = out / "model"
    built = model_dir / ".built"
    if rank == 0 and not built.exists():
        small = {"hidden_size": 256, "intermediate_size": 512, "num_attention_heads": 4, "num_key_value_heads": 2,
                 "vocab_size": 4096} if rehearse else {}
        build_random_model("llama-3-8b", model_dir, {"num_hidden_layers": 4, **small})
        built.touch()
    while not built.exists():  # the other processes wait for the main one's model
        time.sleep(0.5)
    info = resolve_model(str(model_dir))
    config = config_for(model_dir, processes)
    first = train(config, info, out, resume=False)
    again = train(config, info, out, resume=True)
    shape = config.train_shape(not rehearse, info.model_type)
    planned = {c.name: c.bytes for c in plan(info, config.adapter_spec(), shape,
                                             config.precision_for("float32" if rehearse else "bfloat16")).components}
    again["losses"] = {step: loss for step, loss in again["losses"].items() if step > SAVE_AT}  # this attempt's
    same = all(abs(loss - first["losses"][step]) <= 1e-3 * abs(loss) for step, loss in again["losses"].items())
    if rank == 0:
        (out / "fsdp.json").write_text(json.dumps({"processes": processes, "first": first, "resumed": again,
                                                   "resume_repeats_the_losses": same, "planned_per_gpu": planned},
                                                  indent=1))
        print(json.dumps({"fsdp": first["fsdp"], "losses": first["losses"], "resumed": again["losses"],
                          "resume_repeats_the_losses": same, "held": first["held"], "peak": first["gpu_peak_bytes"]}))


if __name__ == "__main__":
    main()
