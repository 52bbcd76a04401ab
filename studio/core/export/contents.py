"""The files of an export, written into its staging folder: the adapter or the merged 16-bit model, the
tokenizer, the recipe, the loss plot, the Modelfile and the model card; which names they will have and
how much disk they need, known before anything is built."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import StudioError
from studio.core.export.card import model_card
from studio.core.export.layout import CARD, MARKER, MODELFILE, NOT_TOKENIZER, PLOT, WEIGHT_FILES
from studio.core.export.loss_plot import loss_svg
from studio.core.export.ollama import OllamaTemplate, modelfile_text, ollama_template
from studio.core.runs import ADAPTER, ADAPTER_WEIGHTS, RECIPE, TRAINER_FILE, RunFacts, folder_size
from studio.core.runs.facts import read_json
from studio.core.weights import check_adapter, check_base

DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
DEFAULT_SHARD_SIZE = "4GB"


def shard_size_bytes(value: str | int) -> int:
    """The merged model's largest weight file, in bytes, from `4GB`, `500MB`, `2GiB` (transformers' own reading of
    sizes; a lowercase `gb` means gigabytes here, not gigabits). Checked before any model is loaded."""
    try:
        from transformers.utils import convert_file_size_to_int
    except ImportError:  # transformers 5 keeps it in transformers.utils.hub
        from transformers.utils.hub import convert_file_size_to_int
    try:
        size = convert_file_size_to_int(value if isinstance(value, int) else str(value).replace(" ", "").upper())
    except (ValueError, TypeError):
        size = 0
    if isinstance(value, bool) or size <= 0:
        raise StudioError(f"The largest weight file size {value!r} is not a size.",
                          "Give a whole number with a unit: 4GB, 500MB or 2GiB, for example (--max-shard-size).")
    return size


def _safetensors_params(folder: Path) -> int:
    """Parameters stored in a folder's *.safetensors files, read from their headers (no weights loaded)."""
    from studio.core.export.to_gguf.tensors import safetensors_shapes

    return sum(math.prod(shape) for _, shape in safetensors_shapes(folder).values())


def base_parameters(facts: RunFacts) -> int:
    """The base model's parameter count, from its weight files' headers (0 when the base is not here)."""
    return _safetensors_params(facts.base_path) if facts.base_path else 0


def gguf_sizes(facts: RunFacts, types) -> dict[str, int]:
    """Each GGUF file's estimated size, before anything is built."""
    from studio.core.export.to_gguf.quantize import estimated_bytes

    params = base_parameters(facts)
    tokenizer = facts.tokenizer_dir / "tokenizer.json"
    vocab = tokenizer.stat().st_size if tokenizer.is_file() else 0
    return {t: estimated_bytes(params, t, vocab) for t in types}


def expected_bytes(facts: RunFacts, merged: bool, gguf: tuple[str, ...] = ()) -> int:
    """The disk the export needs at its fullest: the merged weights (kept, or a temporary copy the GGUF is
    made from), the 16-bit GGUF that quantizing starts from, and each GGUF file."""
    tokenizer = sum(p.stat().st_size for p in source_files(facts, with_adapter=False).values())
    if not merged and not gguf:
        return sum(p.stat().st_size for p in source_files(facts, with_adapter=True).values()) + 1024**2
    params = base_parameters(facts)
    weights = 2 * params if params else folder_size(facts.base_path) if facts.base_path else 0
    files = sum(gguf_sizes(facts, gguf).values())
    sixteen = 0 if not gguf or any(t in ("bf16", "f16") for t in gguf) else 2 * params
    return weights + tokenizer + files + sixteen + 1024**2


def predicted_names(facts: RunFacts, merged: bool, modelfile: bool, gguf_files=()) -> Callable[[str], bool]:
    """Whether the export will write a file of this name (known before anything is built; checked exactly after)."""
    weights = merged or not gguf_files  # a GGUF-only export holds no safetensors and no tokenizer files
    names = set(source_files(facts, with_adapter=not merged)) if weights else set()
    names |= {RECIPE, PLOT, CARD, MARKER} | ({MODELFILE} if modelfile else set()) | set(gguf_files)
    if not merged:
        return names.__contains__
    names |= {"config.json", "generation_config.json"}
    return lambda name: name in names or bool(WEIGHT_FILES.fullmatch(name))


def base_for_merge(facts: RunFacts) -> tuple[Path, dict]:
    """The base model's folder, its weights checked (weights.py), and what makes from_pretrained load exactly those."""
    base = facts.base_path
    recorded = facts.meta.get("base_model_path") or facts.base_reference
    if base is None:
        raise StudioError(f"The base model {facts.base_name} ({recorded}) is no longer on this computer, and a merged "
                          "export needs its weights.",
                          "Put the base model back (download it again, or restore its folder), or export the adapter "
                          "alone (without --merged): it needs no base model.")
    allow = facts.config.model.allow_pickle
    check_adapter(facts.adapter_dir, allow_pickle=allow)
    return base, check_base(base, facts.base_name, allow_pickle=allow)


def source_files(facts: RunFacts, *, with_adapter: bool) -> dict[str, Path]:
    """{name: file} the export copies from the run: the tokenizer and chat template training used and, `with_adapter`,
    the adapter's weights and config with the run's studio.json; never a checkpoint's optimizer or Trainer state."""
    files = {p.name: p for p in facts.tokenizer_dir.iterdir()
             if p.is_file() and p.name not in NOT_TOKENIZER and not TRAINER_FILE.fullmatch(p.name)}
    if with_adapter:
        adapter = [facts.adapter_dir / name for name in ADAPTER_WEIGHTS] + [facts.run_dir / ADAPTER / "studio.json"]
        files |= {p.name: p for p in adapter if p.is_file()}
    return files


def _copy_tokenizer(facts: RunFacts, work: Path, *, with_adapter: bool) -> None:
    for name, item in source_files(facts, with_adapter=with_adapter).items():
        shutil.copy2(item, work / name)


def write_adapter(facts: RunFacts, work: Path) -> None:
    _copy_tokenizer(facts, work, with_adapter=True)
    # The adapter's config names the base others should load: its hub id when known.
    config_path = work / "adapter_config.json"
    adapter_config = read_json(config_path)
    if adapter_config and facts.base_hub_id:
        adapter_config["base_model_name_or_path"] = facts.base_hub_id
        config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_merged(facts: RunFacts, work: Path, dtype: str, max_shard_size: int | str) -> None:
    """The base with the adapter merged into it, in 16 bits, with the tokenizer, into the folder `work`."""
    import warnings

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    base, safe = base_for_merge(facts)
    kwargs: dict = {"dtype": getattr(torch, DTYPES[dtype]), "trust_remote_code": facts.config.model.trust_remote_code, **safe}
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the CLI and the window show their own progress
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = AutoModelForCausalLM.from_pretrained(str(base), **kwargs)
        except OSError as exc:
            raise StudioError(f"The base model at {base} could not be loaded: {exc}",
                              "The merge needs the exact model the run trained on; restore its folder.") from exc
        # Merged in 16-bit on the unquantized base: merging into 4-bit weights would round the adapter away.
        model = PeftModel.from_pretrained(model, str(facts.adapter_dir))
        model = model.merge_and_unload()
        model.config.use_cache = True
        model.save_pretrained(work, max_shard_size=max_shard_size)
    if bars:
        hf_logging.enable_progress_bar()
    _copy_tokenizer(facts, work, with_adapter=False)


def write_extras(facts: RunFacts, work: Path, *, merged: bool, dtype: str | None, target: Path, modelfile: bool,
                 gguf_files=()) -> OllamaTemplate | None:
    """The recipe, the loss plot, the Modelfile (when wanted) and the model card; the Modelfile's template.
    `gguf_files`: the export's GGUF files (to_gguf.GgufFile), the first one the Modelfile's FROM."""
    _write_recipe(facts, work / RECIPE)
    (work / PLOT).write_text(loss_svg(facts.losses, facts.eval_losses, title=f"Loss — {facts.run_dir.name}"), encoding="utf-8")
    template = None
    if modelfile:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(facts.tokenizer_dir))
        template = ollama_template(tokenizer)
        text = modelfile_text(facts, template, merged=merged, gguf_file=gguf_files[0].path if gguf_files else None)
        (work / MODELFILE).write_text(text, encoding="utf-8")
    card = model_card(facts, merged=merged, dtype=DTYPES.get(dtype or "", dtype), export_dir=target,
                      has_modelfile=template is not None, gguf_files=gguf_files)
    (work / CARD).write_text(card, encoding="utf-8")
    return template


def _write_recipe(facts: RunFacts, path: Path) -> None:
    """The run's recipe as it is; a checkpoint's export says first which checkpoint it holds (a TOML comment)."""
    shutil.copy2(facts.run_dir / RECIPE, path)
    if facts.checkpoint is not None:
        note = (f"# Exported from the run {facts.run_dir.name}: {facts.weights} (not its final adapter).\n"
                f"# This recipe trains the whole run ({facts.total_steps or 'all'} steps).\n")
        path.write_text(note + path.read_text(encoding="utf-8"), encoding="utf-8")


def usual_permissions(folder: Path) -> None:
    """The export's files readable as any file the user makes (safetensors writes its files 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~mask)
