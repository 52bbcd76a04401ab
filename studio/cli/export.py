"""`studio export RUN --to DIR`: the adapter with a model card, a merged model, GGUF files for llama.cpp,
Ollama and LM Studio (each checked in llama.cpp), an Ollama Modelfile; of the final adapter, or of a
checkpoint saved while training (--checkpoint STEP)."""

from __future__ import annotations

import json
from pathlib import Path

GGUF_TYPES = ("bf16", "f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m")  # studio.core.export.to_gguf.TYPES, without importing it


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run: the adapter with a model card, a merged model, GGUF files "
                                      "(llama.cpp, Ollama, LM Studio), an Ollama Modelfile")
    p.add_argument("run_dir", type=Path, help="the run folder (or its name in the runs folder)")
    p.add_argument("--to", type=Path, required=True, metavar="DIR",
                   help="the folder to write; an earlier export there is updated once the new one is complete, "
                        "and your own files in it are kept")
    p.add_argument("--checkpoint", type=int, metavar="STEP",
                   help="export the checkpoint saved at this step instead of the final adapter (as an adapter, merged "
                        "or GGUF, like the final one); `studio eval RUN` shows which checkpoint answered best, and an "
                        "unknown step is refused with the steps the run kept")
    p.add_argument("--merged", action="store_true", help="merge the adapter into a 16-bit copy of the base model (needs the base on disk)")
    p.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16", help="with --merged: the weights' dtype (default bf16)")
    p.add_argument("--gguf", action="append", default=[], metavar="TYPE", type=str.lower,
                   help=f"write the merged model as a GGUF file of this type ({', '.join(GGUF_TYPES)}; q4_k_m is what most "
                        "desktops run), then load it in llama.cpp and compare its answers with transformers'. Repeat or "
                        "separate with commas for several types. Needs: pip install 'lora-studio[gguf]'")
    p.add_argument("--lmstudio", action="store_true",
                   help="with --gguf: put the GGUF files under lora-studio/NAME/, the publisher/model layout LM Studio reads")
    p.add_argument("--ollama", action="store_true",
                   help="write an Ollama Modelfile: FROM the GGUF file, with the prompt template and stop words training "
                        "used (without --gguf or --merged: --gguf q4_k_m)")
    p.add_argument("--ollama-adapter", action="store_true",
                   help="the adapter alone with a Modelfile FROM the base + ADAPTER: only Ollama before 0.34.1, and only "
                        "Llama, Mistral and Gemma bases")
    p.add_argument("--force", action="store_true",
                   help="export into a folder that holds other files, overwriting those of your files that have "
                        "the names the export writes (the export names them first); nothing else is deleted")
    p.add_argument("--max-shard-size", default="4GB",
                   help="with --merged: the largest weight file, like 4GB, 500MB or 2GiB (default 4GB)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (with each GGUF check's figures)")
    p.set_defaults(func=cmd_export)


def _gguf_types(args) -> list[str]:
    types = [t.strip() for item in args.gguf for t in item.split(",") if t.strip()]
    if args.ollama and not types and not args.merged:
        types = ["q4_k_m"]
    return types


def _what(args, types: list[str]) -> str:
    if types:
        what = "GGUF " + ", ".join(types) + (f" and the merged {args.dtype} model" if args.merged else "")
    else:
        what = f"merged {args.dtype} model" if args.merged else "adapter"
    return what if args.checkpoint is None else f"{what} of checkpoint-{args.checkpoint}"


def cmd_export(args) -> int:
    from studio.core.export import export_run

    types = _gguf_types(args)
    if not args.json:
        print(f"Exporting the {_what(args, types)} of {args.run_dir} ...", flush=True)
    last = [""]

    def progress(message: str, fraction: float) -> None:
        if not args.json and message != last[0]:
            print(f"  {fraction:4.0%}  {message}", flush=True)
            last[0] = message

    result = export_run(args.run_dir, args.to, merged=args.merged, dtype=args.dtype, ollama=args.ollama, force=args.force,
                        max_shard_size=args.max_shard_size, gguf=types, lmstudio=args.lmstudio,
                        ollama_adapter=args.ollama_adapter, checkpoint=args.checkpoint, progress=progress)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0 if result.checks_passed else 3
    _print_result(result)
    return 0 if result.checks_passed else 3


def _print_result(result) -> None:
    verb = "Replaced the earlier export in" if result.replaced else "Exported to"
    which = f" with {result.weights}" if result.checkpoint is not None else ""
    print(f"{verb} {result.path}{which} ({result.size_bytes / 2**20:.1f} MB of the export's own files):")
    for name in result.files:
        print(f"  {name}")
    for g in result.gguf:
        print(f"GGUF {g.quant}: {g.path} ({g.size_bytes / 2**20:.1f} MB). {g.check.summary()}")
    print(f"Model card: {result.path / 'README.md'}")
    if result.gguf:
        first = result.gguf[0].path
        print(f"llama.cpp: llama-cli -m {result.path / first} -cnv")
        print(f"LM Studio: lms import {result.path / first}")
    if result.modelfile:
        print(f"Ollama: cd {result.path} && ollama create NAME -f Modelfile  (read the Modelfile's comments first)")
    for note in result.notes:
        print(f"Note: {note}")
