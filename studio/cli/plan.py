"""`studio plan MODEL`: how much GPU memory a run needs, and whether it fits."""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli.output import gib


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="how much GPU memory a fine-tuning run needs, and whether it fits")
    _add_plan_arguments(p)
    p.set_defaults(func=cmd_plan)


def _add_plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a model folder, a config.json, a hub id (Qwen/Qwen2.5-0.5B), a catalog name, or 'demo'")
    p.add_argument("--precision", choices=["4bit", "8bit", "16bit", "full"], default="4bit",
                   help="how the base model is held: 4bit = QLoRA (default), 16bit = LoRA, full = full fine-tuning")
    p.add_argument("--quant-type", choices=["nf4", "fp4"], default="nf4", help="4-bit data type (default nf4)")
    p.add_argument("--no-double-quant", action="store_true", help="do not quantize the 4-bit block scales")
    p.add_argument("--compute-dtype", choices=["bfloat16", "float16", "float32"],
                   help="dtype of the matrix multiplications (default: bfloat16 where the GPU supports it)")
    p.add_argument("--rank", type=int, default=16, help="LoRA rank: how much the model can change (default 16)")
    p.add_argument("--alpha", type=int, default=32, help="LoRA alpha: alpha/rank is the strength of the change (default 32)")
    p.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    p.add_argument("--targets", default="all-linear", help="LoRA target modules: all-linear (default) or e.g. q_proj,v_proj")
    p.add_argument("--dora", action="store_true", help="use DoRA (weight-decomposed LoRA)")
    p.add_argument("--batch-size", type=int, default=1, help="micro-batch: sequences per forward pass (default 1)")
    p.add_argument("--seq-len", type=int, default=2048, help="tokens per sequence (default 2048)")
    p.add_argument("--grad-accum", type=int, default=8, help="micro-batches per optimizer step (default 8)")
    p.add_argument("--no-grad-ckpt", action="store_true", help="turn gradient checkpointing off (faster, much more memory)")
    p.add_argument("--optim", choices=["adamw", "adamw-8bit", "paged-adamw-8bit"], default="paged-adamw-8bit",
                   help="optimizer (default paged-adamw-8bit)")
    p.add_argument("--attention", choices=["sdpa", "eager", "flash_attention_2"], default="sdpa",
                   help="attention implementation (default sdpa)")
    p.add_argument("--no-chunked-loss", action="store_true", help="plan transformers' loss over all logits at once")
    p.add_argument("--loss-chunk", type=int, default=1024, help="tokens per chunk of the chunked loss (default 1024)")
    p.add_argument("--no-fp32-frozen", action="store_true",
                   help="4/8-bit: keep embeddings, norms and lm_head in the compute dtype instead of an fp32 copy")
    p.add_argument("--gpu", help="check against this GPU: 24GB, 80GB, 4090, A100 80GB ... (default: the GPU found here)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow a model's own Python code (only for models you trust)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def _choices_from_args(args, model_type: str):
    from studio.core.memory import AdapterSpec, TrainShape
    from studio.core.training.chunked_loss import planned_chunk

    targets = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    adapter = AdapterSpec(rank=args.rank, alpha=args.alpha, dropout=args.dropout, targets=targets, use_dora=args.dora)
    shape = TrainShape(batch_size=args.batch_size, seq_len=args.seq_len, grad_accum=args.grad_accum,
                       gradient_checkpointing=not args.no_grad_ckpt, optimizer=args.optim, attention=args.attention,
                       loss_chunk_tokens=planned_chunk(not args.no_chunked_loss, args.loss_chunk, model_type))
    return adapter, shape


def _target_gpu(args):
    """(bytes, label, compute dtype) of the GPU to check against; bytes is None when there is none."""
    from studio.core.hardware import detect_gpus, parse_gpu_memory

    if args.gpu:
        size = parse_gpu_memory(args.gpu)
        return size, f"{args.gpu} ({gib(size)} GiB)", "bfloat16"
    gpus = detect_gpus()
    if not gpus:
        return None, None, "bfloat16"
    g = gpus[0]
    return g.free_bytes, f"{g.name} ({gib(g.free_bytes)} GiB free of {gib(g.total_bytes)})", g.compute_dtype


def build_plan_report(args) -> dict:
    """Everything `studio plan` shows, as the JSON shape documented in the README."""
    from studio.core.memory import Precision, compare_precisions, plan, suggest_changes
    from studio.core.models import family_members, resolve_model

    model = resolve_model(args.model, trust_remote_code=args.trust_remote_code)
    adapter, shape = _choices_from_args(args, model.model_type)
    gpu_bytes, gpu_label, gpu_dtype = _target_gpu(args)
    precision = Precision(mode=args.precision, quant_type=args.quant_type, double_quant=not args.no_double_quant,
                          compute_dtype=args.compute_dtype or gpu_dtype, upcast_frozen=not args.no_fp32_frozen)
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
                  "attention": shape.attention, "loss_chunk_tokens": shape.loss_chunk_tokens},
        "memory": {
            "total_bytes": result.total_bytes,
            "components": [{"name": c.name, "bytes": c.bytes, "why": c.why} for c in result.components],
            "gpu": gpu_label,
            "gpu_bytes": gpu_bytes,
            "fits": None if gpu_bytes is None else result.fits(gpu_bytes),
            "suggestions": [{"change": s.change, "total_bytes": s.total_bytes, "changes": s.changes} for s in suggestions],
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
            "8bit": "8-bit (LoRA)", "16bit": "16-bit LoRA", "full": "full fine-tuning"}[pr["mode"]]
    ckpt = "gradient checkpointing" if sh["gradient_checkpointing"] else "no gradient checkpointing"
    w(f"Run      {mode}, {pr['compute_dtype']} compute; micro-batch {sh['batch_size']} × {sh['seq_len']} tokens, "
      f"gradient accumulation {sh['grad_accum']}; {ckpt}; {sh['optimizer']}\n\n")
    total = mem["total_bytes"]
    w(f"{'component':<22}{'GiB':>8}  share\n")
    for c in mem["components"]:
        bar = "█" * max(1 if c["bytes"] else 0, round(30 * c["bytes"] / total))
        w(f"{c['name']:<22}{gib(c['bytes']):>8}  {bar}\n")
    w(f"{'total':<22}{gib(total):>8}\n\n")
    if mem["gpu_bytes"] is None:
        w("No GPU found on this computer: add --gpu 24GB (or 8GB, 12GB, 16GB, 48GB, 80GB, 4090 ...) to check a card.\n")
    elif mem["fits"]:
        w(f"Fits {mem['gpu']} with {gib(mem['gpu_bytes'] - total)} GiB to spare.\n")
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
    report = build_plan_report(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_plan(report)
    return 0
