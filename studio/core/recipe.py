"""The recipe of a run: one `RunConfig` (model, data, adapter, training, output) that the window
edits, `studio train --recipe run.toml` reads, and every run folder keeps as `run.toml`.

Each field has a help text; `validate()` names the bad value and the flag that changes it.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from studio.core.errors import StudioError
from studio.core.memory import OPTIMIZERS, PRECISIONS, AdapterSpec, Precision, TrainShape

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCHEDULERS = ("cosine", "linear", "constant")


def _help(text: str, *, flag: str | None = None, label: str | None = None, **kw) -> Any:
    """A field with its help text, the command line's flag for it and the window's label for it
    (data messages name a setting in each front end's words: data/problems.py setting_words)."""
    return field(metadata={"help": text, "flag": flag, "label": label}, **kw)


@dataclass
class ModelSection:
    source: str = _help("a model folder, a hub id, a catalog name, or 'demo'", default="demo")
    trust_remote_code: bool = _help("allow the model's own Python code (only for models you trust)", default=False)
    allow_pickle: bool = _help("allow pickled .bin weights, which can run code when loaded", default=False)


@dataclass
class DataSection:
    source: str = _help("a data file, a folder of files, or a hub dataset id", default="demo")
    format: str | None = _help("alpaca, sharegpt, messages, prompt_completion or text (default: detected)", default=None,
                               flag="--format", label="Format")
    mapping: dict | None = _help("which columns hold what, e.g. {prompt = 'question', response = 'answer'}", default=None,
                                 flag="--map", label="the column pickers")
    split: str | None = _help("hub datasets: the split to train on", default=None)
    subset: str | None = _help("hub datasets: the subset (configuration)", default=None)
    skip_bad_rows: bool = _help("leave out malformed lines instead of refusing the data", default=False,
                                flag="--skip-bad-rows", label="Skip broken lines")
    eval_fraction: float = _help("share of rows held out to measure eval loss (0 turns eval off)", default=0.1)
    assistant_only: bool = _help("train only on the assistant's turns (chat data)", default=True)


@dataclass
class AdapterSection:
    rank: int = _help("LoRA rank: how much the model can change", default=16)
    alpha: int = _help("LoRA alpha: alpha / rank is how strongly the change applies", default=32)
    dropout: float = _help("LoRA dropout: regularisation on the adapter's input", default=0.05)
    targets: list = _help("layers that get an adapter: ['all-linear'] or names such as ['q_proj', 'v_proj']",
                          default_factory=lambda: ["all-linear"])
    use_dora: bool = _help("DoRA: weight-decomposed LoRA (slower, sometimes better)", default=False)
    use_rslora: bool = _help("rank-stabilised LoRA: scale by alpha / sqrt(rank)", default=False)


PACKING = ("auto", "on", "off")


@dataclass
class TrainingSection:
    precision: str = _help("4bit (QLoRA), 8bit, or 16bit (LoRA on a 16-bit base)", default="4bit")
    quant_type: str = _help("4-bit data type: nf4 or fp4", default="nf4")
    double_quant: bool = _help("quantize the 4-bit block scales too (saves ~0.4 bits per weight)", default=True)
    compute_dtype: str = _help("auto (bf16 where the GPU supports it, else fp16; fp32 on CPU), bfloat16, float16, float32",
                               default="auto")
    steps: int | None = _help("optimizer steps to train (or set epochs)", default=None)
    epochs: float | None = _help("passes over the data (used when steps is not set)", default=1.0)
    learning_rate: float = _help("peak learning rate", default=2e-4)
    scheduler: str = _help("learning-rate schedule after warmup: cosine, linear or constant", default="cosine")
    warmup_ratio: float = _help("share of the steps spent warming the learning rate up", default=0.03)
    weight_decay: float = _help("AdamW weight decay", default=0.0)
    max_grad_norm: float = _help("gradients are clipped to this norm", default=1.0)
    batch_size: int = _help("micro-batch: sequences per forward pass", default=1)
    grad_accum: int = _help("micro-batches per optimizer step", default=8)
    seq_len: int = _help("tokens per sequence; longer examples are cut", default=2048, flag="--seq-len",
                         label="Sequence length")
    gradient_checkpointing: bool = _help("recompute activations in backward: much less memory, ~30% slower", default=True)
    optimizer: str = _help("auto (paged 8-bit AdamW on a GPU, AdamW on CPU), adamw, adamw-8bit, paged-adamw-8bit",
                           default="auto")
    attention: str = _help("attention implementation: sdpa, eager, or flash_attention_2 (CUDA with the flash-attn "
                           "package; otherwise sdpa is used)", default="sdpa")
    seed: int = _help("random seed: same seed, same data order and initial adapter", default=42)
    eval_every: int = _help("steps between eval-loss measurements (0: only at the end)", default=50)
    save_every: int = _help("steps between checkpoints (resume points)", default=50)
    keep_checkpoints: int = _help("how many checkpoints to keep", default=2)
    sample_every: int = _help("steps between sample answers (0: never)", default=50)
    sample_prompts: list = _help("prompts answered during training so you can watch the model change",
                                 default_factory=list)
    sample_max_tokens: int = _help("length of each sample answer, in tokens", default=64)
    num_processes: int = _help("GPUs (processes) to train on with accelerate; 1 for one GPU", default=1)
    preflight: bool = _help("before training, run the longest batch once to check it fits (a few seconds)", default=True)
    chunked_loss: bool = _help("compute the loss a chunk of tokens at a time: same result, without the vocabulary-sized "
                               "peak (Llama, Mistral, Qwen, Gemma, Phi-3 families)", default=True)
    loss_chunk_tokens: int = _help("tokens per chunk of the chunked loss", default=1024)
    packing: str = _help("padding-free batches (examples joined, attention kept apart): auto = with flash attention, "
                         "where it costs nothing; on = always (other attention needs a mask over the whole batch); "
                         "off", default="auto")
    upcast_frozen: bool = _help("4/8-bit: keep an fp32 copy of embeddings, norms and lm_head, as "
                                "prepare_model_for_kbit_training does (off: keep them in the compute dtype)", default=True)


@dataclass
class OutputSection:
    name: str = _help("a short name for the run; the folder is <date>-<name>", default="run")
    runs_dir: str | None = _help("where run folders go (default: the studio's data folder)", default=None)


@dataclass
class RunConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    adapter: AdapterSection = field(default_factory=AdapterSection)
    training: TrainingSection = field(default_factory=TrainingSection)
    output: OutputSection = field(default_factory=OutputSection)

    # ---- views the planner and the worker use ----

    def adapter_spec(self) -> AdapterSpec:
        a = self.adapter
        return AdapterSpec(rank=a.rank, alpha=a.alpha, dropout=a.dropout, targets=tuple(a.targets), use_dora=a.use_dora,
                           use_rslora=a.use_rslora)

    def train_shape(self, on_gpu: bool = True, model_type: str | None = None, attention: str | None = None) -> TrainShape:
        """The planner's view of the training settings; with `model_type`, the chunked loss counts only
        where the worker can use it; `attention`: the implementation the run really gets (the worker
        falls back from flash attention to SDPA where flash-attn is missing)."""
        from studio.core.training.chunked_loss import planned_chunk

        t = self.training
        attention = attention or t.attention
        packing = t.packing == "on" or (t.packing == "auto" and attention == "flash_attention_2")
        return TrainShape(batch_size=t.batch_size, seq_len=t.seq_len, grad_accum=t.grad_accum,
                          gradient_checkpointing=t.gradient_checkpointing, optimizer=self.optimizer_for(on_gpu),
                          attention=attention, loss_chunk_tokens=planned_chunk(t.chunked_loss, t.loss_chunk_tokens, model_type),
                          packing=packing)

    def precision_for(self, compute_dtype: str) -> Precision:
        t = self.training
        return Precision(mode=t.precision, quant_type=t.quant_type, double_quant=t.double_quant, compute_dtype=compute_dtype,
                         upcast_frozen=t.upcast_frozen)

    def optimizer_for(self, on_gpu: bool) -> str:
        if self.training.optimizer != "auto":
            return self.training.optimizer
        return "paged-adamw-8bit" if on_gpu else "adamw"

    # ---- checks ----

    def validate(self) -> "RunConfig":
        t, a, d = self.training, self.adapter, self.data

        def bad(value, name, flag, want):
            raise StudioError(f"{name} is {value!r}, but it must be {want}.", f"Change it with {flag}.")

        if t.precision not in PRECISIONS or t.precision == "full":
            bad(t.precision, "Precision", "--precision", "4bit, 8bit or 16bit")
        if t.quant_type not in ("nf4", "fp4"):
            bad(t.quant_type, "The 4-bit type", "--quant-type", "nf4 or fp4")
        if t.compute_dtype not in ("auto", "bfloat16", "float16", "float32"):
            bad(t.compute_dtype, "Compute dtype", "--compute-dtype", "auto, bfloat16, float16 or float32")
        if t.steps is None and (t.epochs is None or t.epochs <= 0):
            bad(t.epochs, "Epochs", "--epochs (or --steps)", "a positive number when no step count is set")
        if t.steps is not None and t.steps < 1:
            bad(t.steps, "Steps", "--steps", "at least 1")
        if not (0 < t.learning_rate < 1) or math.isnan(t.learning_rate):
            bad(t.learning_rate, "The learning rate", "--lr", "between 0 and 1 (typically 1e-4 to 5e-4 for LoRA)")
        if t.scheduler not in SCHEDULERS:
            bad(t.scheduler, "The scheduler", "--scheduler", " or ".join(SCHEDULERS))
        if not 0 <= t.warmup_ratio < 1:
            bad(t.warmup_ratio, "Warmup ratio", "--warmup-ratio", "in [0, 1)")
        for name, value, flag in (("Batch size", t.batch_size, "--batch-size"), ("Gradient accumulation", t.grad_accum, "--grad-accum"),
                                  ("Sequence length", t.seq_len, "--seq-len"), ("Processes", t.num_processes, "--num-processes")):
            if not isinstance(value, int) or value < 1:
                bad(value, name, flag, "a whole number of at least 1")
        if t.seq_len < 16:
            bad(t.seq_len, "Sequence length", "--seq-len", "at least 16 tokens")
        if t.optimizer not in ("auto",) + OPTIMIZERS:
            bad(t.optimizer, "The optimizer", "--optim", "auto, " + ", ".join(OPTIMIZERS))
        for name, value, flag in (("eval_every", t.eval_every, "--eval-every"), ("save_every", t.save_every, "--save-every"),
                                  ("sample_every", t.sample_every, "--sample-every")):
            if value < 0:
                bad(value, name, flag, "0 or more")
        if t.packing not in PACKING:
            bad(t.packing, "Packing", "--packing", "auto, on or off")
        if t.loss_chunk_tokens < 64:
            bad(t.loss_chunk_tokens, "The loss chunk", "the recipe's loss_chunk_tokens", "at least 64 tokens")
        if t.keep_checkpoints < 1:
            bad(t.keep_checkpoints, "keep_checkpoints", "the recipe", "at least 1")
        if a.rank < 1 or a.rank > 1024:
            bad(a.rank, "LoRA rank", "--rank", "between 1 and 1024 (8–64 is typical)")
        if a.alpha <= 0:
            bad(a.alpha, "LoRA alpha", "--alpha", "positive (often 2 × rank)")
        if not 0 <= a.dropout < 1:
            bad(a.dropout, "LoRA dropout", "--dropout", "in [0, 1)")
        if not a.targets or isinstance(a.targets, str) or not all(isinstance(x, str) and x for x in a.targets):
            bad(a.targets, "LoRA targets", "--targets", "all-linear or a list of layer names")
        if d.mapping is not None and not all(isinstance(v, str) for v in d.mapping.values()):
            bad(d.mapping, "The column mapping", "--map", "column names, e.g. prompt=question,response=answer")
        if not 0 <= d.eval_fraction < 0.9:
            bad(d.eval_fraction, "The eval fraction", "--eval-fraction", "in [0, 0.9)")
        if not re.fullmatch(r"[\w.-]{1,64}", self.output.name or ""):
            bad(self.output.name, "The run name", "--name", "1–64 letters, digits, '.', '-' or '_'")
        return self

    # ---- TOML ----

    def to_dict(self) -> dict:
        def clean(d: dict) -> dict:  # TOML has no null: leave unset values out
            return {k: (clean(v) if isinstance(v, dict) else v) for k, v in d.items() if v is not None}

        return clean(asdict(self))

    def to_toml(self) -> str:
        import tomli_w

        header = "# LoRA Studio recipe: `studio train --recipe run.toml` runs it again.\n"
        return header + tomli_w.dumps(self.to_dict())

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_toml(), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        """A recipe from its TOML tables; every value is checked against its field's type first, so a
        wrong value is named here rather than failing later inside training."""
        sections = {"model": ModelSection, "data": DataSection, "adapter": AdapterSection,
                    "training": TrainingSection, "output": OutputSection}
        unknown = set(data) - set(sections)
        if unknown:
            raise StudioError(f"The recipe has unknown sections: {', '.join(sorted(unknown))}.",
                              f"Use only: {', '.join(sections)}.")
        built = {}
        for name, kind in sections.items():
            values = data.get(name) or {}
            if not isinstance(values, dict):
                raise StudioError(f"The recipe's {name} is the value {values!r}, but it must be a section.",
                                  f"Write it as a table: a line [{name}] followed by its settings, one per line.")
            known = {f.name: f for f in fields(kind)}
            extra = set(values) - set(known)
            if extra:
                raise StudioError(f"The recipe's [{name}] section has unknown settings: {', '.join(sorted(extra))}.",
                                  f"Known settings there: {', '.join(sorted(known))}.")
            values = {key: _typed(name, known[key], value) for key, value in _migrated(name, values).items()}
            if name == "training" and values.get("steps") is not None and "epochs" not in values:
                values["epochs"] = None  # a step count was chosen: epochs were left out on purpose
            built[name] = kind(**values)
        return cls(**built)

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise StudioError(f"There is no recipe at {path}.", "Check the path, or write one with `studio train --model ... --data ...`.") from exc
        except UnicodeDecodeError as exc:
            raise StudioError(f"The recipe {path} is not UTF-8 text (byte {exc.start} cannot be read).",
                              "Save it as UTF-8 in a text editor, or write a new one with `studio train --model ... --data ...`.") from exc
        except IsADirectoryError as exc:
            raise StudioError(f"The recipe {path} is a folder, not a file.", "Give the path of a run.toml file.") from exc
        except OSError as exc:
            raise StudioError(f"The recipe {path} cannot be read: {exc.strerror}.", "Check the file's permissions.") from exc
        except tomllib.TOMLDecodeError as exc:
            raise StudioError(f"The recipe {path} is not valid TOML: {exc}.", "Fix the line it names.") from exc
        return cls.from_dict(data)

    def with_changes(self, changes: dict) -> "RunConfig":
        """Apply planner-style changes ("adapter.rank", "shape.batch_size", "precision.mode", "model")."""
        config = replace(self, adapter=replace(self.adapter), training=replace(self.training), model=replace(self.model))
        for key, value in changes.items():
            group, _, name = key.partition(".")
            if key == "model":
                config.model.source = value
            elif group == "adapter":
                setattr(config.adapter, name, list(value) if name == "targets" else value)
            elif group == "shape":
                setattr(config.training, name, value)
                if name == "loss_chunk_tokens":
                    config.training.chunked_loss = bool(value)
            elif group == "precision":
                setattr(config.training, {"mode": "precision"}.get(name, name), value)
        return config


def _migrated(section: str, values: dict) -> dict:
    """Settings as recipes from older studios wrote them, in today's form."""
    if section == "training" and isinstance(values.get("packing"), bool):  # before packing had its three modes
        values = {**values, "packing": "auto" if values["packing"] else "off"}
    return values


# What each annotation accepts from TOML, and how the error names it.
_KINDS = {"str": (str, "text in quotes"), "bool": (bool, "true or false"), "int": (int, "a whole number"),
          "float": (float, "a number"), "list": (list, "a list in brackets, e.g. [\"q_proj\", \"v_proj\"]"),
          "dict": (dict, "a table, e.g. {prompt = \"question\", response = \"answer\"}")}


def _typed(section: str, spec, value):
    """`value` as the type the field declares (a whole-number float counts as an int, an int as a
    float); a StudioError that names the field and the type it wants otherwise."""
    names = [n.strip() for n in str(spec.type).split("|")]
    if "None" in names and value is None:
        return value
    for name in (n for n in names if n in _KINDS):
        kind = _KINDS[name][0]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
    wanted = " or ".join(_KINDS[n][1] for n in names if n in _KINDS)
    raise StudioError(f"The recipe's {section}.{spec.name} is {value!r}, but it must be {wanted}.",
                      f"Change {spec.name} in the [{section}] section ({spec.metadata.get('help', '')}).")


def help_of(section: type, name: str) -> str:
    """The help text of one recipe field (the window's tooltips use it)."""
    for f in fields(section):
        if f.name == name:
            return f.metadata.get("help", "")
    raise KeyError(name)
