"""`studio plan MODEL` (or `--recipe run.toml`): how much GPU memory a run needs, and whether it fits. The
flags are the recipe's that change the plan (studio/cli/recipe_flags.py), with `--precision full` to compare."""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli.output import gib
from studio.cli.recipe_flags import add_recipe_flags, add_recipe_sources, given, recipe_from_flags
from studio.core.errors import StudioError
from studio.core.memory import PRECISIONS
from studio.core.recipe import TrainingSection, help_of


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="how much GPU memory a fine-tuning run needs, and whether it fits")
    _add_plan_arguments(p)
    p.set_defaults(func=cmd_plan)


def _add_plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model.source", nargs="?", metavar="MODEL",
                   help="a model folder, a config.json, a hub id (Qwen/Qwen2.5-0.5B), a catalog name, or 'demo'")
    add_recipe_sources(p)
    p.add_argument("--gpu", help="check against this GPU: 24GB, 80GB, 4090, A100 80GB ... (default: the GPU found here)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    precision = help_of(TrainingSection, "precision") + ", or full (full fine-tuning, to compare) (default: 4bit)"
    add_recipe_flags(p, keep=lambda key, spec: spec.metadata["plans"] and key != "model.source",
                     changes={"training.precision": {"choices": list(PRECISIONS), "help": precision}})
    p.add_argument("--gpus", dest="training.num_processes", type=int, default=None,
                   help="GPUs training together (the same as --num-processes): the plan is per GPU")


def recipe_from_args(args):
    """The recipe to plan: --recipe or the defaults, --preset, then the flags (not validated: the planner
    names what it cannot plan, and full fine-tuning is planned for comparison)."""
    if not args.recipe and given(args, "model.source") is None:
        raise StudioError("`studio plan` needs a model.",
                          "Name one: studio plan MODEL (a folder, hub id, catalog name or demo), or --recipe run.toml.")
    return recipe_from_flags(args)


def _target_gpu(gpu: str | None):
    """(bytes, label, compute dtype) of the GPU to check against; bytes is None when there is none."""
    from studio.core.hardware import detect_gpus, parse_gpu_memory, planning_gpu

    if gpu:
        size = parse_gpu_memory(gpu)
        return size, f"{gpu} ({gib(size)} GiB)", "bfloat16"
    gpus = detect_gpus()
    if not gpus:
        return None, None, "bfloat16"
    g, cards = planning_gpu(gpus)
    return g.free_bytes, f"{cards} ({gib(g.free_bytes)} GiB free of {gib(g.total_bytes)})", g.compute_dtype


def build_plan_report(config, gpu: str | None = None) -> dict:
    """Everything `studio plan` shows for the recipe `config` on the GPU `gpu` (default: the one found
    here), as the JSON shape documented in the README."""
    from studio.core.memory import compare_precisions, plan, suggest_changes
    from studio.core.models import family_members, resolve_model

    model = resolve_model(config.model.source, trust_remote_code=config.model.trust_remote_code)
    adapter, shape = config.adapter_spec(), config.train_shape(on_gpu=True, model_type=model.model_type)
    gpu_bytes, gpu_label, gpu_dtype = _target_gpu(gpu)
    dtype = config.training.compute_dtype
    precision = config.precision_for(gpu_dtype if dtype == "auto" else dtype)
    result = plan(model, adapter, shape, precision)
    suggestions = []
    if gpu_bytes is not None and not result.fits(gpu_bytes):
        smaller = []
        for entry in family_members(model):
            if entry.expected_total_params < model.total_params:
                smaller.append(resolve_model(entry.name))
        smaller.sort(key=lambda m: -m.total_params)  # the largest that fits is the mildest change
        suggestions = suggest_changes(model, adapter, shape, precision, gpu_bytes, smaller)
    comparison = compare_precisions(model, adapter, shape, precision)
    return {
        "model": {
            "name": model.name,
            "source": model.source,
            "architecture": model.architecture,
            "total_params": model.total_params,
            "quantizable_params": model.quantizable_params,
            "embedding_params": model.embedding_params,
            "lm_head_params": model.lm_head_params,
            "vocab_size": model.vocab_size,
            "tied_embeddings": model.tied_embeddings,
            "context_length": model.context_length,
            "lora_targets": model.lora_targets,
            "license": model.license,
            "has_chat_template": model.has_chat_template,
            "weights_bytes": model.weights_bytes,
        },
        "adapter": {
            "rank": adapter.rank,
            "alpha": adapter.alpha,
            "dropout": adapter.dropout,
            "targets": list(adapter.targets),
            "resolved_targets": sorted({layer.suffix for layer in model.target_layers(adapter.targets)}, key=model.lora_targets.index),
            "trainable_params": result.trainable_params,
        },
        "precision": {"mode": precision.mode, "quant_type": precision.quant_type,
                      "double_quant": precision.double_quant, "compute_dtype": precision.compute_dtype,
                      "fp32_frozen": precision.upcast_frozen},
        "shape": {"batch_size": shape.batch_size, "seq_len": shape.seq_len, "grad_accum": shape.grad_accum,
                  "gradient_checkpointing": shape.gradient_checkpointing, "optimizer": shape.optimizer,
                  "attention": shape.attention, "loss_chunk_tokens": shape.loss_chunk_tokens, "method": shape.method,
                  "method_words": shape.method_words(), "gpus": shape.gpus, "strategy": shape.strategy},
        "memory": {
            "total_bytes": result.total_bytes,
            "needed_bytes": result.needed_bytes,
            "held_bytes": list(result.held_bytes),
            "peak_phase": {"name": result.peak_phase.name, "why": result.peak_phase.why},
            "phases": [{"name": ph.name, "bytes": ph.bytes, "why": ph.why} for ph in result.phases],
            "components": [{"name": c.name, "bytes": c.bytes, "why": c.why} for c in result.components],
            "gpu": gpu_label,
            "gpu_bytes": gpu_bytes,
            "fits": None if gpu_bytes is None else result.fits(gpu_bytes),
            "suggestions": [{"change": s.change, "total_bytes": s.total_bytes, "changes": s.changes,
                             "gpus": s.gpus} for s in suggestions],
            "notes": list(result.notes),
        },
        "comparison": {mode: p.total_bytes for mode, p in comparison.items()},
    }


def print_plan(report: dict, out=None) -> None:
    out = out or sys.stdout
    m, a, mem = report["model"], report["adapter"], report["memory"]
    pr, sh = report["precision"], report["shape"]
    w = out.write
    tied = ", tied embeddings" if m["tied_embeddings"] else ""
    w(f"Model    {m['name']} ({m['architecture']}): {m['total_params']:,} parameters, "
      f"{m['quantizable_params']:,} in quantizable Linear layers, vocab {m['vocab_size']:,}{tied}\n")
    share = 100 * a["trainable_params"] / m["total_params"]
    w(f"Adapter  LoRA rank {a['rank']}, alpha {a['alpha']} on {', '.join(a['resolved_targets'])}: "
      f"{a['trainable_params']:,} trainable parameters ({share:.2f}% of the model)\n")
    mode = {"4bit": f"4-bit {pr['quant_type'].upper()}{' + double quant' if pr['double_quant'] else ''} (QLoRA)",
            "8bit": "8-bit (LoRA)", "16bit": "16-bit LoRA", "full": "full fine-tuning",
            "full-bf16": "full fine-tuning in pure bf16"}[pr["mode"]]
    ckpt = "gradient checkpointing" if sh["gradient_checkpointing"] else "no gradient checkpointing"
    w(f"Run      {mode}, {pr['compute_dtype']} compute; micro-batch {sh['batch_size']} × {sh['seq_len']} tokens, "
      f"gradient accumulation {sh['grad_accum']}; {ckpt}; {sh['optimizer']}\n")
    if sh["gpus"] > 1:
        how = ("FSDP: the weights, the adapter's gradients and the optimizer's states sharded across them"
               if sh["strategy"] == "fsdp" else "DDP: a whole copy of the model on each")
        w(f"GPUs     {sh['gpus']} ({how}); every figure below is per GPU\n")
    w(f"Method   {sh['method_words']}\n\n" if sh["method_words"] else "\n")
    total = mem["total_bytes"]
    w(f"{'component':<22}{'GiB':>8}  share\n")
    for c in mem["components"]:
        bar = "█" * max(1 if c["bytes"] else 0, round(30 * c["bytes"] / total))
        w(f"{c['name']:<22}{gib(c['bytes']):>8}  {bar}\n")
    w(f"{'total':<22}{gib(total):>8}\n\n")
    low, high = mem["held_bytes"]
    w(f"Needed   {gib(mem['needed_bytes'])} GiB of tensors at the peak: {mem['peak_phase']['why']}.\n")
    w(f"Held     {gib(low)}–{gib(high)} GiB on the GPU in all (the CUDA context and PyTorch's reserve on top); "
      f"the fit check uses {gib(high)} GiB.\n\n")
    if mem["gpu_bytes"] is None:
        w("No GPU found on this computer: add --gpu 24GB (or 8GB, 12GB, 16GB, 48GB, 80GB, 4090 ...) to check a card.\n")
    elif mem["fits"]:
        each = f"{sh['gpus']} × " if sh["gpus"] > 1 else ""
        w(f"Fits {each}{mem['gpu']} with {gib(mem['gpu_bytes'] - total)} GiB to spare"
          f"{' on each' if sh['gpus'] > 1 else ''}.\n")
    else:
        w(f"Does not fit {mem['gpu']}: needs {gib(total - mem['gpu_bytes'])} GiB more.\n")
        if mem["suggestions"]:
            w("To make it fit:\n")
            for s in mem["suggestions"]:
                w(f"  - {s['change']}  → {gib(s['total_bytes'])} GiB\n")
        else:
            w("No single change makes it fit: choose a smaller model or a larger GPU.\n")
    for note in mem["notes"]:
        w(f"Note: {note}\n")
    cmp = report["comparison"]
    w("\nThe same run as:  " + "   ".join(f"{k} {gib(v)} GiB" for k, v in
                                         (("full fine-tuning", cmp["full"]), ("16-bit LoRA", cmp["16bit"]),
                                          ("8-bit", cmp["8bit"]), ("4-bit QLoRA", cmp["4bit"]))) + "\n")


def cmd_plan(args) -> int:
    report = build_plan_report(recipe_from_args(args), args.gpu)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_plan(report)
    return 0
