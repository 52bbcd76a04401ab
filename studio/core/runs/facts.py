"""What a finished run's folder tells about the adapter it trained: `RunFacts`, for the export and
anything else that needs the base model again (the Try page finds a moved base with `locate_base`).
The facts of one of its checkpoints (`read_run(run_dir, checkpoint=STEP)`) are the same run's, up to
that checkpoint's step; `saved_weights` says which weights a run has to export."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio.core import paths
from studio.core.atomic import recover
from studio.core.errors import StudioError
from studio.core.recipe import RunConfig
from studio.core.runs.checkpoints import checkpoint_to_export, exportable_checkpoints, resume_point
from studio.core.runs.folders import ADAPTER, ADAPTER_WEIGHTS, has_adapter, load_recipe, run_folder
from studio.core.runs.history import RunHistory
from studio.core.runs.status import status_of


@dataclass(frozen=True)
class RunFacts:
    run_dir: Path
    adapter_dir: Path  # the run's adapter/, or the checkpoint's folder
    tokenizer_dir: Path  # where the tokenizer and chat template training used are (a checkpoint may hold none)
    config: RunConfig
    meta: dict  # the adapter's studio.json (empty for adapters from elsewhere)
    status: str
    step: int
    total_steps: int | None
    losses: list[tuple[int, float]]
    eval_losses: list[tuple[int, float]]
    final_eval_loss: float | None
    train_rows: int | None
    eval_rows: int | None
    data_format: str | None
    base_name: str
    base_hub_id: str | None
    base_path: Path | None  # a local folder with the base's config.json, when it is on this computer
    base_license: str | None
    model_type: str | None
    checkpoint: int | None = None  # the step of the checkpoint these facts are of; None: the final adapter

    @property
    def weights(self) -> str:
        """Which weights, in words: "checkpoint-40, step 40 of 80", or "the final adapter, step 80 of 80"."""
        of = f" of {self.total_steps}" if self.total_steps else ""
        which = "the final adapter" if self.checkpoint is None else f"checkpoint-{self.checkpoint}"
        return f"{which}, step {self.step}{of}"

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None

    @property
    def base_reference(self) -> str:
        """How others find the base: its hub id when known, else the folder it was loaded from."""
        return self.base_hub_id or (str(self.base_path) if self.base_path else self.meta.get("base_model_path") or self.base_name)


def read_run(run_dir: Path, checkpoint: int | None = None) -> RunFacts:
    """Everything an export needs from a run folder; a StudioError when there is nothing to export.
    `checkpoint`: the step of the checkpoint to export instead of the final adapter (a StudioError
    naming the steps there are when it is missing or damaged)."""
    run_dir = run_folder(run_dir)
    config = load_recipe(run_dir)
    history = RunHistory.read(run_dir)
    status = status_of(run_dir, history)
    if checkpoint is None:
        _check_adapter_saved(run_dir, history, status)
        adapter_dir = tokenizer_dir = run_dir / ADAPTER
        training = _training_facts(history)
    else:
        _refuse_running(run_dir, status)
        adapter_dir = checkpoint_to_export(run_dir, checkpoint)
        tokenizer_dir = _tokenizer_dir(adapter_dir, run_dir / ADAPTER)
        training = _training_facts_until(history, checkpoint)
    meta = read_json(run_dir / ADAPTER / "studio.json")  # {} when missing or unreadable
    base_path, hub_id = locate_base(meta, config, adapter_dir)
    return RunFacts(
        run_dir=run_dir, adapter_dir=adapter_dir, tokenizer_dir=tokenizer_dir, config=config, meta=meta, status=status,
        **training, data_format=config.data.format or (history.started or {}).get("data_format"),
        base_name=meta.get("base_model_name") or config.model.source, base_hub_id=hub_id, base_path=base_path,
        base_license=meta.get("license") or _catalog_license(config.model.source, hub_id) or _card_license(base_path),
        model_type=_model_type(meta, base_path), checkpoint=checkpoint,
    )


@dataclass(frozen=True)
class SavedWeights:
    """The weights a run has to export: its final adapter (the step it was saved at) and its checkpoints."""
    final_step: int | None  # None: the run saved no final adapter
    checkpoints: tuple[int, ...]  # the steps of the checkpoints whose adapter can be exported, oldest first


def saved_weights(run_dir: Path) -> SavedWeights:
    """Which weights of the run can be exported (read from the folder; no model is loaded)."""
    run_dir = Path(run_dir)
    final = _training_facts(RunHistory.read(run_dir))["step"] if has_adapter(run_dir) else None
    return SavedWeights(final, tuple(exportable_checkpoints(run_dir)))


def _refuse_running(run_dir: Path, status: str) -> None:
    if status == "running":
        raise StudioError(f"The run {run_dir.name} is still training.",
                          "Wait until it finishes, or cancel it (it saves the adapter), then export.")


def _tokenizer_dir(checkpoint_dir: Path, adapter_dir: Path) -> Path:
    """The checkpoint's own tokenizer (Trainer saves it beside the weights), else the final adapter's: the same one."""
    for folder in (checkpoint_dir, adapter_dir):
        if (folder / "tokenizer_config.json").is_file():
            return folder
    raise StudioError(f"{checkpoint_dir.name} of the run {checkpoint_dir.parent.parent.name} holds no tokenizer, and the run "
                      "has no final adapter with one: an export needs the tokenizer and chat template training used.",
                      "Export the final adapter, or another checkpoint.")


def _check_adapter_saved(run_dir: Path, history: RunHistory, status: str) -> None:
    """Refuse a run that is still training, or that has no whole adapter."""
    _refuse_running(run_dir, status)
    adapter_dir = run_dir / ADAPTER
    recover(adapter_dir)  # an adapter save that was cut off between its two renames (where there is no one-step swap)
    if all((adapter_dir / name).is_file() for name in ADAPTER_WEIGHTS):
        return
    error = (history.last_ended or {}).get("error") or {}
    why = {"failed": f" It failed before saving one: {error.get('message', 'no reason recorded')}",
           "interrupted": " It stopped before saving one (the process ended without a word).",
           "created": " It never started training."}.get(status, "")
    advice = ("Resume it from its last checkpoint (studio train --resume RUN_DIR) and export when it has finished."
              if resume_point(run_dir) else "Train it again: `studio train --recipe run.toml` with the recipe in the run folder.")
    raise StudioError(f"The run {run_dir.name} has no trained adapter to export.{why}", advice)


def _training_facts(history: RunHistory) -> dict:
    """Steps, losses and rows. The adapter there is was saved when the last attempt that ended ended
    (a resumed attempt killed since saved none): its step and final eval loss are that attempt's."""
    series, ended, started = history.series, history.last_ended or {}, history.started or {}
    final_eval = ended.get("eval_loss")
    if final_eval is None and series["eval_loss"]:
        final_eval = series["eval_loss"][-1][1]
    return {"step": ended.get("step") or (series["loss"][-1][0] if series["loss"] else 0),
            "total_steps": started.get("total_steps"), "losses": series["loss"], "eval_losses": series["eval_loss"],
            "final_eval_loss": final_eval, "train_rows": started.get("train_rows"), "eval_rows": started.get("eval_rows")}


def _training_facts_until(history: RunHistory, step: int) -> dict:
    """The training facts up to a checkpoint's step: its losses and eval losses, the last eval loss before it."""
    series, started = history.series, history.started or {}
    losses = [(s, v) for s, v in series["loss"] if s <= step]
    eval_losses = [(s, v) for s, v in series["eval_loss"] if s <= step]
    return {"step": step, "total_steps": started.get("total_steps"), "losses": losses, "eval_losses": eval_losses,
            "final_eval_loss": eval_losses[-1][1] if eval_losses else None, "train_rows": started.get("train_rows"),
            "eval_rows": started.get("eval_rows")}



def read_json(path: Path) -> dict:
    """A JSON file's object; {} when it is missing or cannot be read."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _model_type(meta: dict, base_path: Path | None) -> str | None:
    if meta.get("model_type") is not None or base_path is None:
        return meta.get("model_type")
    return read_json(base_path / "config.json").get("model_type")


def _card_license(base_path: Path | None) -> str | None:
    from studio.core.models import card_license

    return card_license(base_path)


def locate_base(meta: dict, config: RunConfig, adapter_dir: Path) -> tuple[Path | None, str | None]:
    """(local folder of the base model or None, its hub id or None).

    The folder the run loaded it from first; then what the recipe names (the demo, a folder, a hub
    id or catalog name found in the Hugging Face cache), so a studio reinstalled elsewhere still finds it.
    """
    source = (config.model.source or "").strip()
    recorded = meta.get("base_model_path") or read_json(adapter_dir / "adapter_config.json").get("base_model_name_or_path")
    hub_id = _hub_id(recorded, source)
    folder = _local_folder(recorded, source)
    if folder is not None:
        return folder, hub_id
    return (_cached(hub_id) if hub_id else None), hub_id


def _hub_id(recorded: str | None, source: str) -> str | None:
    """The base's hub id: the recorded or named one that is no folder here, else the catalog entry's."""
    from studio.core.models import HUB_ID

    for candidate in (recorded, source):
        if candidate and HUB_ID.match(candidate) and not Path(candidate).expanduser().exists():
            return candidate
    entry = _catalog_entry(source) if source else None
    return entry.hub_id if entry is not None else None


def _local_folder(recorded: str | None, source: str) -> Path | None:
    from studio.core.models import is_demo

    folders = [recorded, source] if not is_demo(source) else [recorded, paths.demo_model_dir()]
    for folder in folders:
        if folder and (Path(folder).expanduser() / "config.json").is_file():
            return Path(folder).expanduser()
    return None


def _cached(hub_id: str) -> Path | None:
    from studio.core.models import cached_snapshot

    try:
        return cached_snapshot(hub_id)
    except Exception:  # noqa: BLE001 - a broken cache must not stop an export
        return None


def _catalog_entry(key: str):
    from studio.core.models import catalog_entry

    try:
        return catalog_entry(key)
    except Exception:  # noqa: BLE001 - a broken catalog must not stop an export
        return None


def _catalog_license(source: str, hub_id: str | None) -> str | None:
    for key in (source, hub_id):
        entry = _catalog_entry(key) if key else None
        if entry is not None and entry.license:
            return entry.license
    return None
