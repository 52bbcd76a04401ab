"""Export a finished run: the PEFT adapter with a model card, or a merged 16-bit model, and a
Modelfile for Ollama.

    DIR/
        adapter_model.safetensors, adapter_config.json   the adapter (adapter export)
        config.json, model*.safetensors                   the merged model (--merged), sharded
        tokenizer files, chat_template.jinja              the tokenizer and the chat template training used
        README.md                                         model card: base model, license, data, recipe, loss
        loss.svg                                          the loss curve, drawn from the run's events
        run.toml                                          the recipe: `studio train --recipe run.toml` runs it again
        Modelfile                                         for `ollama create` (when asked, or when Ollama takes
                                                          adapters of this architecture)
        studio-export.json                                what this folder is, and the manifest: the files this
                                                          export wrote (a later export replaces only those)

DIR may hold the user's own files too (notes, a GGUF converted from the export): they are kept. Only
the files an earlier export wrote, unchanged since, are replaced or removed; a file of the user's
with a name the export writes is "in the way", and the export refuses and names it unless --force.

The new files are written into a hidden staging folder inside DIR and moved into place only once
they are complete, with a journal (studio.core.atomic.write_files): an interrupted export leaves the
earlier one as it was, or is finished by the next export into DIR.

The core draws the loss plot itself (a small SVG): it imports neither Qt nor matplotlib.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import stat
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

from studio.core import paths, runs
from studio.core.atomic import files_in, recover, write_files
from studio.core.errors import StudioError
from studio.core.models import card_license, is_demo
from studio.core.recipe import RunConfig
from studio.core.runs import DISK_MARGIN, free_bytes
from studio.core.training.events import read_events
from studio.core.weights import check_adapter, check_base
from studio.core.wording import count

MARKER = "studio-export.json"
CARD = "README.md"
PLOT = "loss.svg"
MODELFILE = "Modelfile"
DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
DEFAULT_SHARD_SIZE = "4GB"
# Ollama documents `ADAPTER` (safetensors LoRA) for Llama, Mistral/Mixtral and Gemma 1/2 models
# (docs/import.md, "Importing a fine tuned adapter from Safetensors weights").
OLLAMA_ADAPTER_TYPES = ("llama", "mistral", "mixtral", "gemma", "gemma2")
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_config.json")
# Files of the run's adapter folder that are not tokenizer files.
_NOT_TOKENIZER = {"README.md", "studio.json", *ADAPTER_WEIGHTS}


# ---------------------------------------------------------------------------------------------
# What a run folder tells about itself
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFacts:
    run_dir: Path
    adapter_dir: Path
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

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None

    @property
    def base_reference(self) -> str:
        """How others find the base: its hub id when known, else the folder it was loaded from."""
        return self.base_hub_id or (str(self.base_path) if self.base_path else self.meta.get("base_model_path") or self.base_name)


def read_run(run_dir: Path) -> RunFacts:
    """Everything an export needs from a run folder; a StudioError when there is nothing to export."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir() and not run_dir.is_absolute() and (runs.runs_root() / run_dir).is_dir():
        run_dir = runs.runs_root() / run_dir  # a run's name, as `studio runs` lists it
    if not run_dir.is_dir():
        raise StudioError(f"There is no run folder at {run_dir}.", "Pick a folder from `studio runs`.")
    config = runs.load_recipe(run_dir)
    events = read_events(run_dir / runs.EVENTS)
    status = runs.status_of(run_dir, events)
    adapter_dir = run_dir / runs.ADAPTER
    if status == "running":
        raise StudioError(f"The run {run_dir.name} is still training.",
                          "Wait until it finishes, or cancel it (it saves the adapter), then export.")
    recover(adapter_dir)  # an adapter save that was cut off between its two renames (where there is no one-step swap)
    if not all((adapter_dir / name).is_file() for name in ADAPTER_WEIGHTS):
        finished = next((e for e in reversed(events) if e["type"] == "finished"), None) or {}
        error = finished.get("error") or {}
        why = {"failed": f" It failed before saving one: {error.get('message', 'no reason recorded')}",
               "interrupted": " It stopped before saving one (the process ended without a word).",
               "created": " It never started training."}.get(status, "")
        advice = ("Resume it from its last checkpoint (studio train --resume RUN_DIR) and export when it has finished."
                  if runs.resume_point(run_dir) else "Train it again: `studio train --recipe run.toml` with the recipe in the run folder.")
        raise StudioError(f"The run {run_dir.name} has no trained adapter to export.{why}", advice)
    meta = _read_json(adapter_dir / "studio.json")  # {} when missing or unreadable
    series = runs.metrics(events)
    started = next((e for e in reversed(events) if e["type"] == "started"), None) or {}
    finished = next((e for e in reversed(events) if e["type"] == "finished"), None) or {}
    final_eval = finished.get("eval_loss")
    if final_eval is None and series["eval_loss"]:
        final_eval = series["eval_loss"][-1][1]
    base_path, hub_id = locate_base(meta, config, adapter_dir)
    model_type = meta.get("model_type")
    if model_type is None and base_path is not None:
        model_type = _read_json(base_path / "config.json").get("model_type")
    license_ = meta.get("license") or _catalog_license(config.model.source, hub_id) or card_license(base_path)
    return RunFacts(
        run_dir=run_dir, adapter_dir=adapter_dir, config=config, meta=meta, status=status,
        step=finished.get("step") or (series["loss"][-1][0] if series["loss"] else 0),
        total_steps=started.get("total_steps"), losses=series["loss"], eval_losses=series["eval_loss"],
        final_eval_loss=final_eval, train_rows=started.get("train_rows"), eval_rows=started.get("eval_rows"),
        data_format=config.data.format or started.get("data_format"),
        base_name=meta.get("base_model_name") or config.model.source, base_hub_id=hub_id, base_path=base_path,
        base_license=license_, model_type=model_type,
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def locate_base(meta: dict, config: RunConfig, adapter_dir: Path) -> tuple[Path | None, str | None]:
    """(local folder of the base model or None, its hub id or None).

    The folder the run loaded it from first; then what the recipe names (the demo, a folder, a hub
    id or catalog name found in the Hugging Face cache), so a studio reinstalled elsewhere still finds it.
    """
    from studio.core.models import HUB_ID, cached_snapshot, catalog_entry

    source = (config.model.source or "").strip()
    recorded = meta.get("base_model_path") or _read_json(adapter_dir / "adapter_config.json").get("base_model_name_or_path")
    hub_id = None
    for candidate in (recorded, source):
        if candidate and HUB_ID.match(candidate) and not Path(candidate).expanduser().exists():
            hub_id = candidate
            break
    if hub_id is None and source:
        try:
            entry = catalog_entry(source)
        except Exception:  # a broken catalog must not stop an export
            entry = None
        hub_id = entry.hub_id if entry is not None else None
    folders = [recorded, source] if not is_demo(source) else [recorded, paths.demo_model_dir()]
    for folder in folders:
        if folder and (Path(folder).expanduser() / "config.json").is_file():
            return Path(folder).expanduser(), hub_id
    if hub_id:
        try:
            snapshot = cached_snapshot(hub_id)
        except Exception:
            snapshot = None
        if snapshot is not None:
            return snapshot, hub_id
    return None, hub_id


def _catalog_license(source: str, hub_id: str | None) -> str | None:
    from studio.core.models import catalog_entry

    for key in (source, hub_id):
        if key:
            try:
                entry = catalog_entry(key)
            except Exception:
                entry = None
            if entry is not None and entry.license:
                return entry.license
    return None


# ---------------------------------------------------------------------------------------------
# The loss plot (SVG, pure Python)
# ---------------------------------------------------------------------------------------------


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, value = [], first
    while value <= hi + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def loss_svg(losses: list[tuple[int, float]], eval_losses: list[tuple[int, float]], *, title: str = "Loss",
             width: int = 640, height: int = 360) -> str:
    """The training loss per step (a line) and the eval loss (points joined by a dashed line)."""
    left, right, top, bottom = 56, 16, 36, 40
    pw, ph = width - left - right, height - top - bottom
    points = [(s, v) for s, v in list(losses) + list(eval_losses) if v is not None and math.isfinite(v)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="sans-serif" font-size="12">',
           f'<title>{escape(title)}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>']
    if not points:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">No loss was recorded.</text>')
        return "\n".join(out + ["</svg>"]) + "\n"
    x_lo, x_hi = min(s for s, _ in points), max(s for s, _ in points)
    y_lo, y_hi = min(v for _, v in points), max(v for _, v in points)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (y_hi - y_lo) * 0.05 or max(abs(y_hi) * 0.05, 0.05)
    y_lo, y_hi = y_lo - pad, y_hi + pad

    def sx(step: float) -> float:
        return round(left + (step - x_lo) / (x_hi - x_lo) * pw, 2)

    def sy(value: float) -> float:
        return round(top + (y_hi - value) / (y_hi - y_lo) * ph, 2)

    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
    for tick in _nice_ticks(y_lo, y_hi, 7):
        y = sy(tick)
        out.append(f'<line x1="{left}" y1="{y}" x2="{left + pw}" y2="{y}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{tick:g}</text>')
    for tick in _nice_ticks(x_lo, x_hi, 6):
        if tick != int(tick):
            continue
        x = sx(tick)
        out.append(f'<line x1="{x}" y1="{top + ph}" x2="{x}" y2="{top + ph + 4}" stroke="#888"/>')
        out.append(f'<text x="{x}" y="{top + ph + 18}" text-anchor="middle">{int(tick)}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">step</text>')
    train = [(s, v) for s, v in losses if v is not None and math.isfinite(v)]
    evals = [(s, v) for s, v in eval_losses if v is not None and math.isfinite(v)]
    if train:
        coords = " ".join(f"{sx(s)},{sy(v)}" for s, v in train)
        out.append(f'<polyline class="train" points="{coords}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    if evals:
        coords = " ".join(f"{sx(s)},{sy(v)}" for s, v in evals)
        out.append(f'<polyline class="eval" points="{coords}" fill="none" stroke="#ff7f0e" stroke-width="1.5" '
                   'stroke-dasharray="5,4"/>')
        for s, v in evals:
            out.append(f'<circle class="eval" cx="{sx(s)}" cy="{sy(v)}" r="3.5" fill="#ff7f0e"><title>step {s}: eval loss '
                       f'{v:.4f}</title></circle>')
    lx = left + pw - 150
    out.append(f'<line x1="{lx}" y1="22" x2="{lx + 20}" y2="22" stroke="#1f77b4" stroke-width="2"/>'
               f'<text x="{lx + 26}" y="26">train</text>')
    if evals:
        out.append(f'<circle cx="{lx + 85}" cy="22" r="3.5" fill="#ff7f0e"/><text x="{lx + 94}" y="26">eval</text>')
    return "\n".join(out + ["</svg>"]) + "\n"


# ---------------------------------------------------------------------------------------------
# Ollama: a Modelfile whose TEMPLATE renders prompts as training did
# ---------------------------------------------------------------------------------------------

# Ollama's Go templates for the two prompt formats the studio trains with. `{{ range .Messages }}`
# sees a system prompt as the first message, as the chat template does. The tokenizer's BOS token
# is left out: Ollama adds it itself when the model's tokenizer asks for one.
CHATML_GO_TEMPLATE = "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"


def studio_default_go_template(eos: str) -> str:
    """The Go version of tokens.DEFAULT_CHAT_TEMPLATE (plain "### User:" / "### Assistant:" turns)."""
    return ('{{ range .Messages }}{{ if eq .Role "system" }}### System:\n{{ .Content }}\n\n'
            '{{ else if eq .Role "user" }}### User:\n{{ .Content }}\n\n'
            '{{ else }}### Assistant:\n{{ .Content }}' + eos + '\n\n{{ end }}{{ end }}### Assistant:\n')


# Conversations both templates must render to the same text before a TEMPLATE is written.
PROBE_CONVERSATIONS = (
    [{"role": "user", "content": "How often should I water a cactus?"}],
    [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Hi!\nTwo lines."}],
    [{"role": "user", "content": "First question?"}, {"role": "assistant", "content": "First answer."},
     {"role": "user", "content": "And then — ünïcode?"}],
    [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"},
     {"role": "user", "content": "U2"}],
)


@dataclass(frozen=True)
class OllamaTemplate:
    kind: str | None  # "chatml", "studio-default", or None when the studio cannot translate the template
    template: str | None  # Ollama Go template text
    stops: tuple[str, ...]
    note: str = ""


def ollama_template(tokenizer, chat_template: str | None = None) -> OllamaTemplate:
    """Translate the chat template training used into Ollama's TEMPLATE, when it is one the studio knows.

    A candidate is accepted only if it renders every probe conversation to exactly the text the
    chat template renders (less the leading BOS token), so a look-alike template with a default
    system prompt or other extras is never translated wrongly.
    """
    from studio.core.data.tokens import DEFAULT_CHAT_TEMPLATE, chat_template_of

    template = chat_template or chat_template_of(tokenizer)[0]
    eos = getattr(tokenizer, "eos_token", None) or ""
    candidates = [("chatml", CHATML_GO_TEMPLATE, ("<|im_end|>", "<|im_start|>")),
                  ("studio-default", studio_default_go_template(eos), tuple(s for s in (eos, "### User:") if s))]
    if template == DEFAULT_CHAT_TEMPLATE:
        candidates.reverse()
    for kind, go, stops in candidates:
        if _renders_like(tokenizer, template, go):
            return OllamaTemplate(kind, go, stops)
    return OllamaTemplate(None, None, (eos,) if eos else (), note="not translatable")


def _renders_like(tokenizer, chat_template: str, go_template: str) -> bool:
    bos = getattr(tokenizer, "bos_token", None) or ""
    checked = 0
    for conversation in PROBE_CONVERSATIONS:
        try:
            expected = tokenizer.apply_chat_template(conversation, chat_template=chat_template, tokenize=False,
                                                     add_generation_prompt=True)
        except Exception:  # e.g. a template that refuses system messages: that probe says nothing
            continue
        if bos and expected.startswith(bos):
            expected = expected[len(bos):]
        try:
            if render_go_template(go_template, conversation) != expected:
                return False
        except ValueError:
            return False
        checked += 1
    return checked > 0


_GO_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.S)


def render_go_template(template: str, messages: list[dict], system: str = "") -> str:
    """Render the small subset of Go's text/template that the studio's TEMPLATEs use, as Ollama would:
    text, `{{ .Field }}`, `{{ range .Messages }}`, `{{ if }}`/`{{ else if }}`/`{{ else }}` with `eq`/`ne`
    and plain fields, `{{- ` / ` -}}` whitespace trimming. Anything else raises ValueError."""
    tokens: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _GO_ACTION.finditer(template):
        text = template[pos:m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        tokens.append(("text", text))
        tokens.append(("action", m.group(2).strip()))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = template[pos:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    nodes, i, end = _go_parse(tokens, 0)
    if end is not None or i != len(tokens):
        raise ValueError(f"unbalanced template: unexpected {{{{ {end} }}}}")
    msgs = [{"Role": m["role"], "Content": m["content"]} for m in messages]
    if system and not any(m["Role"] == "system" for m in msgs):
        msgs.insert(0, {"Role": "system", "Content": system})
    prompt = next((m["Content"] for m in reversed(msgs) if m["Role"] == "user"), "")
    root = {"Messages": msgs, "System": system or next((m["Content"] for m in msgs if m["Role"] == "system"), ""),
            "Prompt": prompt}
    out: list[str] = []
    _go_exec(nodes, root, root, out)
    return "".join(out)


def _go_parse(tokens, i):
    """(nodes, next index, the terminating keyword: 'end', 'else', 'else if ...' or None at the end)."""
    nodes = []
    while i < len(tokens):
        kind, value = tokens[i]
        i += 1
        if kind == "text":
            if value:
                nodes.append(("text", value))
            continue
        if value == "end" or value == "else" or value.startswith("else if "):
            return nodes, i, value
        if value.startswith("range "):
            body, i, end = _go_parse(tokens, i)
            if end != "end":
                raise ValueError("range without end")
            nodes.append(("range", value[6:].strip(), body))
        elif value.startswith("if "):
            branches, otherwise, cond = [], [], value[3:].strip()
            while True:
                body, i, end = _go_parse(tokens, i)
                branches.append((cond, body))
                if end == "end":
                    break
                if end == "else":
                    otherwise, i, end = _go_parse(tokens, i)
                    if end != "end":
                        raise ValueError("else without end")
                    break
                if end and end.startswith("else if "):
                    cond = end[8:].strip()
                    continue
                raise ValueError("if without end")
            nodes.append(("if", branches, otherwise))
        elif re.fullmatch(r"\.\w*", value):
            nodes.append(("field", value))
        else:
            raise ValueError(f"unsupported action {{{{ {value} }}}}")
    return nodes, i, None


def _go_value(expr: str, dot, root):
    if expr.startswith('"') and expr.endswith('"') and len(expr) >= 2:
        return json.loads(expr)
    if expr == ".":
        return dot
    if re.fullmatch(r"\$?\.\w+", expr):
        scope = root if expr.startswith("$") else dot
        return scope.get(expr.lstrip("$")[1:], "") if isinstance(scope, dict) else ""
    raise ValueError(f"unsupported expression {expr}")


def _go_cond(cond: str, dot, root) -> bool:
    parts = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', cond)
    if len(parts) == 3 and parts[0] in ("eq", "ne"):
        same = _go_value(parts[1], dot, root) == _go_value(parts[2], dot, root)
        return same if parts[0] == "eq" else not same
    if len(parts) == 2 and parts[0] == "not":
        return not _go_value(parts[1], dot, root)
    if len(parts) == 1:
        return bool(_go_value(parts[0], dot, root))
    raise ValueError(f"unsupported condition {cond}")


def _go_exec(nodes, dot, root, out: list[str]) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "field":
            out.append(str(_go_value(node[1], dot, root)))
        elif node[0] == "range":
            for item in _go_value(node[1], dot, root) or []:
                _go_exec(node[2], item, root, out)
        elif node[0] == "if":
            for cond, body in node[1]:
                if _go_cond(cond, dot, root):
                    _go_exec(body, dot, root, out)
                    break
            else:
                _go_exec(node[2], dot, root, out)


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def modelfile_text(facts: RunFacts, template: OllamaTemplate, *, merged: bool) -> str:
    """The Modelfile: FROM the base (or the merged weights), ADAPTER ., TEMPLATE and stop parameters."""
    name = facts.config.output.name
    lines = [f"# Ollama Modelfile written by LoRA Studio for the run {facts.run_dir.name}.",
             f"# In this folder:  ollama create {name.lower()} -f Modelfile   then:  ollama run {name.lower()}", "#"]
    if merged:
        lines += ["# The merged model in this folder (base + adapter, 16-bit safetensors).", "FROM ."]
    else:
        base_dir = facts.base_path or facts.meta.get("base_model_path")
        where = str(base_dir) if base_dir and Path(base_dir).exists() else facts.base_reference
        lines += [f"# FROM must be the very base model this adapter was trained on: {facts.base_name} ({facts.base_reference}).",
                  "# Point it at that model's safetensors folder (as below) or at an Ollama model made from the same",
                  "# weights; another model, even a fine-tuned sibling of it, gives erratic answers."]
        if facts.meta.get("precision") in ("4bit", "8bit"):
            bits = facts.meta["precision"].replace("bit", "-bit")
            lines += [f"# The adapter was trained on a {bits} (QLoRA) copy of the base; Ollama applies it",
                      "# to the base at Ollama's own precision, so answers can differ a little from the studio's.",
                      "# `studio export --merged` gives a model that does not depend on this."]
        if facts.model_type and facts.model_type not in OLLAMA_ADAPTER_TYPES:
            lines += ["# Note: Ollama documents adapters only for Llama, Mistral and Gemma models; this base is",
                      f"# '{facts.model_type}', which `ollama create` may refuse. Use `studio export --merged` then."]
        lines += [f"FROM {where}", "ADAPTER ."]
    lines.append("")
    if template.template is not None:
        label = {"chatml": "ChatML (<|im_start|>role ... <|im_end|>)",
                 "studio-default": "the studio's plain \"### User:\" / \"### Assistant:\" format"}[template.kind]
        lines += [f"# The prompt format training used: {label}. The leading BOS token of the chat",
                  "# template is left out: Ollama adds it when the model's tokenizer asks for one.",
                  f'TEMPLATE """{template.template}"""']
    else:
        lines += ["# No TEMPLATE: the chat template this run trained with (chat_template.jinja in this folder) is",
                  "# neither ChatML nor the studio's default format, and the studio does not translate other",
                  "# templates automatically. Without TEMPLATE, Ollama uses the template it detects from the",
                  "# base model, which is right only if training used the base model's own chat template.",
                  "# To be sure, add a TEMPLATE \"\"\"...\"\"\" in Ollama's Go template syntax that renders the same",
                  "# text as chat_template.jinja ({{ range .Messages }}{{ .Role }}{{ .Content }}{{ end }}, see",
                  "# https://github.com/ollama/ollama/blob/main/docs/template.md), with a PARAMETER stop line",
                  "# for each end-of-turn marker."]
    for stop in template.stops:
        lines.append(f"PARAMETER stop {_quote(stop)}")
    return "\n".join(lines) + "\n"


def wants_modelfile(facts: RunFacts, ollama: bool) -> bool:
    return ollama or (facts.model_type in OLLAMA_ADAPTER_TYPES)


# ---------------------------------------------------------------------------------------------
# The model card
# ---------------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def model_card(facts: RunFacts, *, merged: bool, dtype: str | None, export_dir: Path, has_modelfile: bool) -> str:
    c = facts.config
    license_ = facts.base_license or "unknown"
    title = f"{c.output.name}: {'merged model' if merged else 'LoRA adapter'} for {facts.base_name}"
    front = ["---"] + ([f"base_model: {_yaml(facts.base_hub_id)}"] if facts.base_hub_id else []) + [f"license: {_yaml(facts.base_license or 'other')}",
             f"library_name: {'transformers' if merged else 'peft'}", "pipeline_tag: text-generation",
             "tags: [lora-studio, lora, qlora" + (", merged" if merged else ", peft") + "]", "---", ""]
    stopped = ""
    if facts.status == "cancelled":
        stopped = f" It was stopped early, at step {facts.step}" + (f" of {facts.total_steps}." if facts.total_steps else ".")
    elif facts.status not in ("completed",):
        stopped = f" (The run's last status is {facts.status}; this adapter is the last one it saved.)"
    a, t, d = c.adapter, c.training, c.data
    quant = {"4bit": f"a 4-bit {t.quant_type.upper()} (QLoRA) copy of the base", "8bit": "an 8-bit copy of the base",
             "16bit": "the 16-bit base"}.get(facts.meta.get("precision") or t.precision, t.precision)
    lines = front + [f"# {title}", "",
                     f"Fine-tuned with LoRA Studio from the run `{facts.run_dir.name}`: a LoRA adapter "
                     f"(rank {a.rank}, alpha {a.alpha}, on {', '.join(a.targets)}) trained on {quant} for {facts.step} "
                     f"steps.{stopped}", ""]
    if merged:
        lines += [f"This folder holds the base model with the adapter merged into its weights, saved in {dtype} "
                  "(the merge was done on the unquantized 16-bit base, never on 4-bit weights). It loads with "
                  "`transformers` alone: no PEFT needed.", ""]
    lines += ["## Base model", "",
              f"- **Model:** {facts.base_name} (`{facts.base_reference}`)",
              f"- **License:** {license_}" + ("" if facts.base_license else " — check the base model's own page") +
              ". The adapter and anything made with it follow the base model's license.", ""]
    rows = ""
    if facts.train_rows is not None:
        rows = f"{facts.train_rows + (facts.eval_rows or 0)} rows used ({facts.train_rows} for training, {facts.eval_rows or 0} held out for eval loss)"
    lines += ["## Data", "",
              f"- **Source:** `{d.source}`" + (" (the studio's built-in demo dataset)" if d.source == "demo" else ""),
              f"- **Format:** {facts.data_format or 'detected automatically when training'}",
              f"- **Rows:** {rows or 'not recorded'}",
              f"- **Loss on:** {'the assistant turns only' if d.assistant_only else 'every token'}; sequences cut at "
              f"{t.seq_len} tokens", ""]
    first = facts.losses[0][1] if facts.losses else None
    lines += ["## Results", "",
              "| | loss |", "|---|---|",
              f"| training, first step | {_fmt(first)} |",
              f"| training, final (step {facts.losses[-1][0] if facts.losses else '—'}) | {_fmt(facts.final_loss)} |",
              f"| eval, final | {_fmt(facts.final_eval_loss)} |", "",
              f"![Training and eval loss per step]({PLOT})", ""]
    name = str(export_dir)
    if merged:
        code = ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'model = AutoModelForCausalLM.from_pretrained("{name}", dtype="auto")',
                f'tokenizer = AutoTokenizer.from_pretrained("{name}")']
    else:
        code = ["```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'base = AutoModelForCausalLM.from_pretrained("{facts.base_reference}", dtype="auto")',
                f'model = PeftModel.from_pretrained(base, "{name}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{name}")  # with the chat template training used']
    code += ['messages = [{"role": "user", "content": "Your question"}]',
             'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)',
             "out = model.generate(**inputs, max_new_tokens=128)",
             'print(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))', "```"]
    template_note = ("the studio's plain `### User:` / `### Assistant:` template (the base model has none of its own)"
                     if facts.meta.get("chat_template_is_default") else "the base model's own chat template")
    lines += ["## How to use it", "",
              f"{'Load it with transformers' if merged else 'Load the base model, then the adapter with PEFT'}. Prompts must be "
              f"rendered with the chat template saved here ({template_note}): `apply_chat_template` does that.", ""] + code + [""]
    if not merged and (facts.meta.get("precision") or t.precision) in ("4bit", "8bit"):
        lines += ["The adapter was trained on a quantized base. It also works on the 16-bit base as above; to reproduce "
                  "training exactly, load the base with `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="
                  f'"{t.quant_type}", bnb_4bit_use_double_quant={t.double_quant})`.', ""]
    if has_modelfile:
        lines += ["With [Ollama](https://ollama.com): `ollama create NAME -f Modelfile` in this folder (read the comments "
                  "in the Modelfile first).", ""]
    lines += ["## Recipe", "",
              f"`{runs.RECIPE}` in this folder is the complete recipe; `studio train --recipe {runs.RECIPE}` trains it again.", "",
              "```toml", c.to_toml().rstrip(), "```", ""]
    return "\n".join(lines)


def _yaml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if re.search(r"[:#\[\]{}&*!|>'\"%@`,]|^\s|\s$", value) else value


# ---------------------------------------------------------------------------------------------
# The target folder: what in it is an earlier export's, and what is the user's
# ---------------------------------------------------------------------------------------------


def is_export(folder: Path) -> bool:
    return (Path(folder) / MARKER).is_file() and _read_json(Path(folder) / MARKER).get("exporter") == "lora-studio"


def check_target(target: Path, run_dir: Path) -> None:
    target, run_dir = Path(target).resolve(), Path(run_dir).resolve()
    adapter = run_dir / runs.ADAPTER
    if target == run_dir or target in run_dir.parents or target == adapter or adapter in target.parents:
        raise StudioError(f"{target} would replace the run's own files.", "Export to a folder outside the run folder (--to DIR).")
    if target.exists() and not target.is_dir():
        raise StudioError(f"{target} is a file, not a folder.", "Choose a new or empty folder for the export (--to DIR).")


class FilesInTheWay(StudioError):
    """The export would overwrite files that are not an earlier export's, or land among someone's files.
    `files`: what it would overwrite (with --force); `others`: every file in the folder that is not an export's."""

    def __init__(self, message: str, advice: str, *, target: Path, files: list[str], others: list[str]):
        super().__init__(message, advice)
        self.target, self.files, self.others = target, tuple(files), tuple(others)


@dataclass(frozen=True)
class TargetFolder:
    earlier: bool  # it holds an earlier export (its marker)
    owned: frozenset[str]  # that export's files, unchanged since: the new export replaces or removes them
    changed: frozenset[str]  # that export's files that were changed since: the user's now
    others: tuple[str, ...]  # every file that is not the earlier export's: kept, unless the export writes its name


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(folder: Path, names: list[str]) -> list[dict]:
    """What an export wrote, so the next one knows which files are its own and whether they were changed."""
    entries = []
    for name in names:
        st = (folder / name).stat()
        entries.append({"path": name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _digest(folder / name)})
    return entries


def _inside(name: object) -> bool:
    """A manifest's path that stays inside the folder (a hand-edited marker must not reach elsewhere)."""
    return isinstance(name, str) and bool(name) and not Path(name).is_absolute() and ".." not in Path(name).parts


def _unchanged(target: Path, entry: dict) -> bool:
    path = target / entry["path"]
    try:
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != entry.get("size"):
        return False
    return st.st_mtime_ns == entry.get("mtime_ns") or _digest(path) == entry.get("sha256")


# What exports before the manifest wrote: the only names such a folder's export could have had.
_LEGACY_NAMES = re.compile(r"adapter_model\.safetensors|adapter_config\.json|studio\.json|(generation_)?config\.json|"
                           r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?|tokenizer.*|special_tokens_map\.json|"
                           r"added_tokens\.json|chat_template\.jinja|vocab\.json|merges\.txt|README\.md|loss\.svg|"
                           r"run\.toml|Modelfile")


def _legacy_owned(target: Path, present: list[str]) -> set[str]:
    """An export from before the manifest: its files are the export-named ones no newer than its marker
    (written last); a file changed or added since is the user's."""
    written = (target / MARKER).stat().st_mtime_ns
    return {name for name in present if "/" not in name and _LEGACY_NAMES.fullmatch(name)
            and (target / name).lstat().st_mtime_ns <= written}


def survey(target: Path) -> TargetFolder:
    """What is in the folder an export goes to."""
    target = Path(target)
    present = files_in(target) if target.is_dir() else []
    if not is_export(target):
        return TargetFolder(False, frozenset(), frozenset(), tuple(present))
    entries = _read_json(target / MARKER).get("files")
    if isinstance(entries, list):
        listed = [e for e in entries if isinstance(e, dict) and _inside(e.get("path"))]
        owned = {e["path"] for e in listed if _unchanged(target, e)}
        changed = {e["path"] for e in listed if e["path"] in present} - owned
    else:
        owned, changed = _legacy_owned(target, present), set()
    owned.add(MARKER)
    return TargetFolder(True, frozenset(owned), frozenset(changed), tuple(p for p in present if p not in owned))


def _listing(names, limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _refuse_if_in_the_way(target: Path, folder: TargetFolder, writes: Callable[[str], bool], *, force: bool) -> list[str]:
    """The user's files the export would overwrite (`writes(name)`: whether it writes that name); refused
    unless `force`. A folder that is not an earlier export and holds files is refused unless `force` too."""
    in_way = [name for name in folder.others if writes(name)]
    # a folder where the export writes a file: not even --force removes a folder
    blocked = [p.name for p in target.iterdir() if p.is_dir() and not p.is_symlink() and writes(p.name)] if target.is_dir() else []
    if blocked:
        raise StudioError(f"{target} holds folders where the export writes files: {_listing(blocked)}.",
                          "Move or rename them, or export to another folder (--to DIR).")
    if force or not (in_way or (folder.others and not folder.earlier)):
        return in_way
    changed = [name for name in in_way if name in folder.changed]
    why = f" ({_listing(changed)} changed since the earlier export)" if changed else ""
    if folder.earlier:
        message = (f"{target} holds {count(len(in_way), 'file')} of yours with the names this export writes: "
                   f"{_listing(in_way)}{why}. Nothing was written.")
        advice = ("Move or rename them and export again, or add --force to overwrite just these files "
                  "(your other files in the folder stay as they are).")
    else:
        message = (f"{target} is not an earlier LoRA Studio export and already holds {count(len(folder.others), 'file')}: "
                   f"{_listing(folder.others)}. Nothing was written.")
        overwrite = f"only {_listing(in_way)} would be overwritten" if in_way else "none of them is overwritten"
        advice = (f"Choose a new or empty folder, or add --force to write the export into this one: your files stay, "
                  f"{overwrite}.")
    raise FilesInTheWay(message, advice, target=target, files=in_way, others=list(folder.others))


# ---------------------------------------------------------------------------------------------
# The export
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    path: Path
    kind: str  # "adapter" or "merged"
    files: tuple[str, ...]  # the export's own files (relative paths), its marker included
    size_bytes: int  # of those files (the user's files in the folder are not counted)
    replaced: bool  # an earlier export at the same place was replaced
    modelfile: bool
    template: str | None  # the Modelfile's TEMPLATE: "chatml", "studio-default" or None
    notes: tuple[str, ...] = field(default_factory=tuple)
    kept: tuple[str, ...] = field(default_factory=tuple)  # the user's files in the folder, untouched
    overwritten: tuple[str, ...] = field(default_factory=tuple)  # the user's files the export overwrote (force)

    def as_dict(self) -> dict:
        return {"path": str(self.path), "kind": self.kind, "files": list(self.files), "size_bytes": self.size_bytes,
                "replaced": self.replaced, "modelfile": self.modelfile, "template": self.template, "notes": list(self.notes),
                "kept": list(self.kept), "overwritten": list(self.overwritten)}


def _safetensors_params(folder: Path) -> int:
    """Parameters stored in a folder's *.safetensors files, read from their headers (no weights loaded)."""
    total = 0
    for file in sorted(Path(folder).glob("*.safetensors")):
        with file.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(length))
        for name, entry in header.items():
            if name != "__metadata__":
                total += math.prod(entry.get("shape") or [1])
    return total


def expected_bytes(facts: RunFacts, merged: bool) -> int:
    tokenizer = sum(p.stat().st_size for p in facts.adapter_dir.iterdir() if p.is_file() and p.name not in _NOT_TOKENIZER)
    if not merged:
        return runs.folder_size(facts.adapter_dir) + 1024**2
    params = _safetensors_params(facts.base_path) if facts.base_path else 0
    weights = 2 * params if params else runs.folder_size(facts.base_path) if facts.base_path else 0
    return weights + tokenizer + 1024**2


def _check_space(target: Path, need: int) -> None:
    free = free_bytes(target.parent)
    if free < need + DISK_MARGIN:
        raise StudioError(f"Only {free / 1e6:,.0f} MB are free where the export goes; it needs about "
                          f"{(need + DISK_MARGIN) / 1e6:,.0f} MB.",
                          f"Free some disk space in {target.parent}, or export somewhere else (--to DIR).")


def _base_for_merge(facts: RunFacts) -> tuple[Path, dict]:
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


def _copy_tokenizer(facts: RunFacts, work: Path, *, with_adapter: bool) -> None:
    skip = {"README.md"} if with_adapter else _NOT_TOKENIZER
    for item in facts.adapter_dir.iterdir():
        if item.is_file() and item.name not in skip:
            shutil.copy2(item, work / item.name)


def _write_adapter(facts: RunFacts, work: Path) -> None:
    _copy_tokenizer(facts, work, with_adapter=True)
    # The adapter's config names the base others should load: its hub id when known.
    config_path = work / "adapter_config.json"
    adapter_config = _read_json(config_path)
    if adapter_config and facts.base_hub_id:
        adapter_config["base_model_name_or_path"] = facts.base_hub_id
        config_path.write_text(json.dumps(adapter_config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _write_merged(facts: RunFacts, work: Path, dtype: str, max_shard_size: int | str) -> None:
    import warnings

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    base, safe = _base_for_merge(facts)
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


def _write_extras(facts: RunFacts, work: Path, *, merged: bool, dtype: str | None, target: Path, ollama: bool) -> OllamaTemplate | None:
    shutil.copy2(facts.run_dir / runs.RECIPE, work / runs.RECIPE)
    (work / PLOT).write_text(loss_svg(facts.losses, facts.eval_losses, title=f"Loss — {facts.run_dir.name}"), encoding="utf-8")
    template = None
    if wants_modelfile(facts, ollama):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(facts.adapter_dir))
        template = ollama_template(tokenizer)
        (work / MODELFILE).write_text(modelfile_text(facts, template, merged=merged), encoding="utf-8")
    _write_card(facts, work, merged=merged, dtype=dtype, target=target, has_modelfile=template is not None)
    return template


def _write_card(facts: RunFacts, work: Path, *, merged: bool, dtype: str | None, target: Path, has_modelfile: bool) -> None:
    card = model_card(facts, merged=merged, dtype=DTYPES.get(dtype or "", dtype), export_dir=target, has_modelfile=has_modelfile)
    (work / CARD).write_text(card, encoding="utf-8")


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


# The merged model's weight files: model.safetensors, or model-00001-of-00003.safetensors and its index.
_WEIGHT_FILES = re.compile(r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?")


def _predicted_names(facts: RunFacts, merged: bool, ollama: bool) -> Callable[[str], bool]:
    """Whether the export will write a file of this name (known before anything is built; checked exactly after)."""
    skip = _NOT_TOKENIZER if merged else {"README.md"}
    names = {p.name for p in facts.adapter_dir.iterdir() if p.is_file() and p.name not in skip}
    names |= {runs.RECIPE, PLOT, CARD, MARKER} | ({MODELFILE} if wants_modelfile(facts, ollama) else set())
    if not merged:
        return names.__contains__
    names |= {"config.json", "generation_config.json"}
    return lambda name: name in names or bool(_WEIGHT_FILES.fullmatch(name))


def _disk_error(exc: BaseException) -> OSError | None:
    """The system's error inside another library's: safetensors reports a full disk as 'I/O error: ... (os error 28)'."""
    if isinstance(exc, OSError):
        return exc
    m = re.search(r"\(os error (\d+)\)", str(exc)) if type(exc).__name__ == "SafetensorError" else None
    return OSError(int(m.group(1)), os.strerror(int(m.group(1)))) if m else None


def _write_failed(exc: OSError, target: Path, earlier: bool, need: int) -> StudioError:
    what = exc.strerror or str(exc)
    file = f" (writing {Path(exc.filename).name})" if getattr(exc, "filename", None) else ""
    kept = "the earlier export there is still complete, as it was" if earlier else "no file there was written or removed"
    message = f"The export stopped: {what}{file}. Nothing in {target} changed: {kept}."
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        advice = (f"The disk is full. Free some space on it (the export needs about {need / 1e6:,.0f} MB) and "
                  "export again, or export to another disk (--to DIR).")
    elif exc.errno == errno.EFBIG:
        advice = ("A file was larger than this disk or this system allows. Export to another disk (--to DIR), or, for "
                  "a merged model, use smaller weight files (--max-shard-size 1GB).")
    else:
        advice = f"Check that you can write to {target} and that its disk is connected, then export again."
    return StudioError(message, advice)


def export_run(run_dir: Path, target: Path, *, merged: bool = False, dtype: str = "bf16", ollama: bool = False,
               force: bool = False, max_shard_size: str | int = DEFAULT_SHARD_SIZE,
               progress: Callable[[str, float], None] | None = None) -> ExportResult:
    """Export the run in `run_dir` to the folder `target` (see the module docstring for what it holds).
    An earlier export there is updated; the user's other files in it are kept. `force` overwrites the
    user's files that have the names the export writes (nothing else). `progress(message, fraction)`
    hears of each stage, for the window's progress bar."""
    say = progress or (lambda message, fraction: None)
    say("Checking the run and the target folder", 0.0)
    if merged and dtype not in DTYPES:
        raise StudioError(f"The merged model's dtype is {dtype!r}, but it must be bf16 or fp16.",
                          "Use --dtype bf16 (most GPUs since 2020) or --dtype fp16.")
    shard_bytes = shard_size_bytes(max_shard_size)
    facts = read_run(run_dir)
    target = Path(target).expanduser().absolute()
    check_target(target, facts.run_dir)
    recover(target)  # an export that was interrupted while moving its files into place is finished first
    folder = survey(target)
    _refuse_if_in_the_way(target, folder, _predicted_names(facts, merged, ollama), force=force)
    if merged:
        _base_for_merge(facts)
    _check_space(target, expected_bytes(facts, merged))
    plan = _ExportPlan(facts, target, merged, dtype, ollama, force, shard_bytes, folder, say)
    try:
        written = write_files(target, plan.build, plan.finish, last=MARKER)
    except Exception as exc:  # a full disk, a file too large, a folder gone: the target is as it was
        error = _disk_error(exc)
        if error is None:
            raise
        raise _write_failed(error, target, folder.earlier, expected_bytes(facts, merged)) from exc
    say("Done", 1.0)
    return plan.result(written)


def _usual_permissions(folder: Path) -> None:
    """The export's files readable as any file the user makes (safetensors writes its files 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~mask)


class _ExportPlan:
    """The steps of one export: what `write_files` calls to build the new files, and to check them before the swap."""

    def __init__(self, facts: RunFacts, target: Path, merged: bool, dtype: str, ollama: bool, force: bool,
                 shard_bytes: int, folder: TargetFolder, say: Callable[[str, float], None]):
        self.facts, self.target, self.merged, self.dtype, self.ollama = facts, target, merged, dtype, ollama
        self.force, self.shard_bytes, self.folder, self.say = force, shard_bytes, folder, say
        self.template: OllamaTemplate | None = None
        self.overwritten: list[str] = []
        self.sizes: dict[str, int] = {}

    def build(self, work: Path) -> None:
        if self.merged:
            self.say("Loading the base model in 16-bit and merging the adapter", 0.1)
            _write_merged(self.facts, work, self.dtype, self.shard_bytes)
        else:
            self.say("Copying the adapter and tokenizer", 0.2)
            _write_adapter(self.facts, work)
        self.say("Writing the model card, loss plot and recipe", 0.85)
        self.template = _write_extras(self.facts, work, merged=self.merged, dtype=self.dtype if self.merged else None,
                                      target=self.target, ollama=self.ollama)
        _usual_permissions(work)

    def finish(self, work: Path, names: list[str]) -> list[str]:
        """The new files are complete: refuse if they would overwrite the user's files, write the marker
        with the manifest, and name the earlier export's files that go."""
        new = set(names) | {MARKER}
        self.folder = survey(self.target)  # again: a merge takes minutes, and the user may have added files meanwhile
        self.overwritten = _refuse_if_in_the_way(self.target, self.folder, new.__contains__, force=self.force)
        self.say("Recording the files of this export", 0.95)
        manifest = _manifest(work, names)
        self.sizes = {entry["path"]: entry["size"] for entry in manifest}
        f = self.facts
        marker = {"exporter": "lora-studio", "kind": "merged" if self.merged else "adapter", "run": str(f.run_dir.absolute()),
                  "step": f.step, "dtype": DTYPES[self.dtype] if self.merged else None, "base_model": f.base_reference,
                  "time": round(time.time(), 3), "files": manifest}
        (work / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        return sorted(self.folder.owned - new)

    def result(self, written: list[str]) -> ExportResult:
        kept = tuple(name for name in self.folder.others if name not in written)
        notes = []
        if self.template is not None and self.template.template is None:
            notes.append("The Modelfile has no TEMPLATE: this run's chat template is not one the studio can translate "
                         "(see the comment in the Modelfile).")
        if self.overwritten:
            notes.append(f"Overwrote {count(len(self.overwritten), 'file')} of yours with the export's own, as you asked: "
                         f"{_listing(self.overwritten)}.")
        if kept:
            notes.append(f"Kept {count(len(kept), 'file')} of yours in the folder, untouched: {_listing(kept)}.")
        size = sum(self.sizes.values()) + (self.target / MARKER).stat().st_size
        return ExportResult(path=self.target, kind="merged" if self.merged else "adapter", files=tuple(written),
                            size_bytes=size, replaced=self.folder.earlier, modelfile=self.template is not None,
                            template=self.template.kind if self.template else None, notes=tuple(notes), kept=kept,
                            overwritten=tuple(self.overwritten))
