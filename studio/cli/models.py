"""`studio models`: the built-in catalog, models in the Hugging Face cache, and the demo model."""

from __future__ import annotations

import json

from studio.cli.output import GiB
from studio.core.errors import StudioError


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="the catalog, models in the Hugging Face cache, and the demo model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def _params_label(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def cmd_models(args) -> int:
    from studio.core import paths
    from studio.core.models import cached_models, catalog, resolve_model

    rows = []
    demo = resolve_model("demo")
    rows.append(("demo", "built-in", _params_label(demo.total_params), f"{demo.weights_bytes / 2**20:.1f} MB", str(paths.demo_model_dir())))
    for m in cached_models():
        try:
            params = _params_label(resolve_model(m.hub_id).total_params)
        except StudioError:
            params = "?"
        size = f"{m.size_on_disk / GiB:.2f} GB" if m.has_weights else "config only"
        rows.append((m.hub_id, "HF cache", params, size, str(m.path)))
    for e in catalog():
        rows.append((e.name, "catalog", _params_label(e.expected_total_params), "download", f"{e.hub_id} ({e.license})"))
    if args.json:
        print(json.dumps([dict(zip(("name", "where", "params", "size", "detail"), r, strict=False)) for r in rows], indent=2))
        return 0
    widths = [max(len(r[i]) for r in rows + [("name", "where", "params", "size", "")]) for i in range(4)]
    print(f"{'name':<{widths[0]}}  {'where':<{widths[1]}}  {'params':>{widths[2]}}  {'size':>{widths[3]}}  detail")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}")
    return 0
