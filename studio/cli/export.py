"""`studio export RUN --to DIR`: the adapter with a model card, or a merged model; an Ollama Modelfile."""

from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run: the adapter with a model card, or a merged model; Ollama Modelfile")
    p.add_argument("run_dir", type=Path, help="the run folder (or its name in the runs folder)")
    p.add_argument("--to", type=Path, required=True, metavar="DIR",
                          help="the folder to write; an earlier export there is updated once the new one is complete, "
                               "and your own files in it are kept")
    p.add_argument("--merged", action="store_true", help="merge the adapter into a 16-bit copy of the base model (needs the base on disk)")
    p.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16", help="with --merged: the weights' dtype (default bf16)")
    p.add_argument("--ollama", action="store_true", help="write an Ollama Modelfile (always written for Llama, Mistral and Gemma bases)")
    p.add_argument("--force", action="store_true",
                          help="export into a folder that holds other files, overwriting those of your files that have "
                               "the names the export writes (the export names them first); nothing else is deleted")
    p.add_argument("--max-shard-size", default="4GB",
                          help="with --merged: the largest weight file, like 4GB, 500MB or 2GiB (default 4GB)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    from studio.core.export import export_run

    what = f"merged {args.dtype} model" if args.merged else "adapter"
    if not args.json:
        print(f"Exporting the {what} of {args.run_dir} ...", flush=True)
    result = export_run(args.run_dir, args.to, merged=args.merged, dtype=args.dtype, ollama=args.ollama, force=args.force,
                        max_shard_size=args.max_shard_size)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
        return 0
    verb = "Replaced the earlier export in" if result.replaced else "Exported to"
    print(f"{verb} {result.path} ({result.size_bytes / 2**20:.1f} MB of the export's own files):")
    for name in result.files:
        print(f"  {name}")
    print(f"Model card: {result.path / 'README.md'}")
    if result.modelfile:
        print(f"Ollama: cd {result.path} && ollama create NAME -f Modelfile  (read the Modelfile's comments first)")
    for note in result.notes:
        print(f"Note: {note}")
    return 0
