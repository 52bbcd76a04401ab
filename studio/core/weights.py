"""Which weight files a load reads, whether they are whole, and whether the user must allow them.

transformers picks a base model's weights by file name, not by extension: `model.safetensors`, then
`model.safetensors.index.json`, and only then `pytorch_model.bin` / `pytorch_model.bin.index.json`
— pickles, which can run code when loaded. A folder with some other `*.safetensors` file beside
`pytorch_model.bin` therefore loads the pickle. PEFT does the same for adapters
(`adapter_model.safetensors`, then `adapter_model.bin`).

The studio decides from those same names, here and nowhere else, before training, merging, trying
or evaluating; and it loads with `use_safetensors=True` unless the user allowed pickles, so that
transformers itself refuses to fall back to a pickle (a hub download included).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import StudioError

# transformers' names (transformers.utils: SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME, WEIGHTS_NAME,
# WEIGHTS_INDEX_NAME), in the order from_pretrained tries them.
SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PICKLE_WEIGHTS = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"
# peft.utils.constants: SAFETENSORS_WEIGHTS_NAME, WEIGHTS_NAME
ADAPTER_SAFE = "adapter_model.safetensors"
ADAPTER_PICKLE = "adapter_model.bin"

PICKLE_ADVICE = ("Convert the weights to safetensors, or allow pickled weights (--allow-pickle, or "
                 "'Allow pickled weights' on the Model page) if you trust where they came from.")


@dataclass(frozen=True)
class WeightFiles:
    """The files a load would read: kind is "safetensors", "pickle" or None (nothing loadable)."""

    kind: str | None
    files: tuple[Path, ...] = ()

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files if f.is_file())


def _shards(index: Path) -> tuple[Path, ...]:
    """The shard files an index names (the index itself when it cannot be read: the load will say why)."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}
    except (OSError, ValueError, AttributeError):
        return (index,)
    return tuple(index.parent / name for name in sorted(set(weight_map.values())))


def base_weights(folder: Path | None) -> WeightFiles:
    """What `AutoModelForCausalLM.from_pretrained(folder)` would read."""
    if folder is None or not Path(folder).is_dir():
        return WeightFiles(None)
    folder = Path(folder)
    for name, kind in ((SAFE_WEIGHTS, "safetensors"), (SAFE_INDEX, "safetensors"),
                       (PICKLE_WEIGHTS, "pickle"), (PICKLE_INDEX, "pickle")):
        path = folder / name
        if path.is_file():
            return WeightFiles(kind, _shards(path) if name.endswith(".index.json") else (path,))
    return WeightFiles(None)


def adapter_weights(folder: Path) -> WeightFiles:
    """What `PeftModel.from_pretrained(model, folder)` would read."""
    for name, kind in ((ADAPTER_SAFE, "safetensors"), (ADAPTER_PICKLE, "pickle")):
        if (Path(folder) / name).is_file():
            return WeightFiles(kind, (Path(folder) / name,))
    return WeightFiles(None)


def safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file cannot be whole (empty, cut short, a header that is not JSON), or None.
    Reads the header only: the data's end must lie within the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return "it is empty" if size == 0 else f"it is only {size} bytes long"
            (length,) = struct.unpack("<Q", head)
            if length > size - 8:
                return "it is cut short (its header runs past the end of the file)"
            header = json.loads(fh.read(length))
    except (OSError, ValueError, UnicodeDecodeError):
        return "its header cannot be read"
    if not isinstance(header, dict):
        return "its header cannot be read"
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets") or ()) == 2]
    needed = 8 + length + max(ends, default=0)
    if size < needed:
        return f"it is cut short ({size:,} of {needed:,} bytes)"
    return None


def _check_whole(files: WeightFiles, what: str) -> None:
    for path in files.files:
        if not path.is_file():
            raise StudioError(f"The {what} is incomplete: {path.name} is missing from {path.parent}.",
                              "Download the model again (the download may have been interrupted), or restore the file.")
        problem = safetensors_problem(path) if path.suffix == ".safetensors" else None
        if problem:
            raise StudioError(f"The {what}'s weight file {path} is damaged: {problem}.",
                              "Download the model again (the download may have been interrupted), or restore the file.")


def check_base(folder: Path | None, name: str, *, allow_pickle: bool) -> dict:
    """Check the base model's weights before loading them; the keyword arguments that make
    `from_pretrained` load exactly what was checked. `folder` None: a hub id, downloaded by the load."""
    found = base_weights(folder)
    if folder is not None:
        if found.kind is None:
            others = sorted(p.name for p in Path(folder).glob("*.safetensors"))
            hint = (f" It has {', '.join(others)}, but transformers looks for {SAFE_WEIGHTS} or {SAFE_INDEX}."
                    if others else "")
            raise StudioError(f"The model folder {folder} has no weights that transformers can load.{hint}",
                              "Download the complete model, or point the studio at the folder that holds its weight files.")
        if found.kind == "pickle" and not allow_pickle:
            raise StudioError(f"{name} stores its weights as pickled files ({found.files[0].name}), which can run code "
                              "when loaded.", PICKLE_ADVICE)
        _check_whole(found, f"model {name}")
    if allow_pickle:
        return {} if found.kind != "pickle" else {"use_safetensors": False}
    return {"use_safetensors": True}


def check_adapter(folder: Path, *, allow_pickle: bool) -> None:
    """Check an adapter folder's weights before PEFT loads them."""
    found = adapter_weights(folder)
    if found.kind is None:
        raise StudioError(f"{folder} holds no adapter weights ({ADAPTER_SAFE}).",
                          "Pick a finished run, or the folder of an adapter export.")
    if found.kind == "pickle" and not allow_pickle:
        raise StudioError(f"The adapter in {folder} is a pickled file ({ADAPTER_PICKLE}), which can run code when loaded.",
                          PICKLE_ADVICE)
    _check_whole(found, "adapter")
