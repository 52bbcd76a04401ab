"""The model card (README.md) of an export: the base model and its license, the data, the results
with the loss plot, how to load it, and the recipe that trains it again. A checkpoint's card says
which checkpoint it is, and its results stop at that checkpoint's step."""

from __future__ import annotations

import json
import re
from pathlib import Path

from studio.core.export.layout import PLOT
from studio.core.runs import RECIPE, RunFacts


def model_card(facts: RunFacts, *, merged: bool, dtype: str | None, export_dir: Path, has_modelfile: bool,
               gguf_files=()) -> str:
    """README.md of an export. `gguf_files`: its GGUF files (to_gguf.GgufFile), each with its llama.cpp check."""
    usage = _gguf_section(gguf_files, has_modelfile) if gguf_files and not merged else \
        _usage_section(facts, merged, str(export_dir), has_modelfile) + _gguf_section(gguf_files, False)
    lines = (_front_matter(facts, merged) + _introduction(facts, merged, dtype, gguf=bool(gguf_files)) + _base_section(facts)
             + _data_section(facts) + _results_section(facts) + usage + _recipe_section(facts))
    return "\n".join(lines)


def _gguf_section(files, has_modelfile: bool) -> list[str]:
    """The GGUF files, what llama.cpp answered with each, and how to open them in llama.cpp, Ollama and LM Studio."""
    if not files:
        return []
    lines = ["## GGUF files (llama.cpp, Ollama, LM Studio)", "",
             "The base with the adapter merged into it, one file per type. After writing each, the studio loaded it in "
             "llama.cpp and compared its greedy answers to the run's sample prompts with the merged model's in transformers.", "",
             "| file | type | size | checked in llama.cpp |", "|---|---|---|---|"]
    for f in files:
        lines.append(f"| `{f.path}` | {f.quant} | {f.size_bytes / 2**20:,.1f} MiB | {f.check.summary()} |")
    first = files[0].path
    lines += ["", f"- **llama.cpp:** `llama-cli -m {first} -cnv` (the chat template is inside the file).",
              f"- **LM Studio:** `lms import {first}`, or copy the folder `{first.split('/')[0]}` into LM Studio's models "
              "folder (~/.lmstudio/models): it has the publisher/model/file layout LM Studio reads." if "/" in first else
              f"- **LM Studio:** `lms import {first}`."]
    if has_modelfile:
        lines.append("- **Ollama:** `ollama create NAME -f Modelfile` in this folder (it names the GGUF file, the prompt "
                     "template and the stop words).")
    return lines + [""]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _yaml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False) if re.search(r"[:#\[\]{}&*!|>'\"%@`,]|^\s|\s$", value) else value


def _front_matter(facts: RunFacts, merged: bool) -> list[str]:
    """The Hugging Face hub's metadata block."""
    base = [f"base_model: {_yaml(facts.base_hub_id)}"] if facts.base_hub_id else []
    return ["---"] + base + [f"license: {_yaml(facts.base_license or 'other')}",
                             f"library_name: {'transformers' if merged else 'peft'}", "pipeline_tag: text-generation",
                             "tags: [lora-studio, lora, qlora" + (", merged" if merged else ", peft") + "]", "---", ""]


def _how_it_ended(facts: RunFacts) -> str:
    if facts.checkpoint is not None:
        return (f" These are the weights of {facts.weights}, a checkpoint saved while training — not the run's final "
                "adapter.")
    if facts.status == "cancelled":
        return f" It was stopped early, at step {facts.step}" + (f" of {facts.total_steps}." if facts.total_steps else ".")
    if facts.status not in ("completed",):
        return f" (The run's last status is {facts.status}; this adapter is the last one it saved.)"
    return ""


def _precision(facts: RunFacts) -> str:
    """What the adapter was trained on, as the run loaded the base."""
    return facts.meta.get("precision") or facts.config.training.precision


def _introduction(facts: RunFacts, merged: bool, dtype: str | None, gguf: bool = False) -> list[str]:
    c, a, t = facts.config, facts.config.adapter, facts.config.training
    kind = "merged model" if merged else "GGUF model" if gguf else "LoRA adapter"
    title = f"{c.output.name}: {kind} for {facts.base_name}"
    if facts.checkpoint is not None:
        title += f" (checkpoint-{facts.checkpoint})"
    quant = {"4bit": f"a 4-bit {t.quant_type.upper()} (QLoRA) copy of the base", "8bit": "an 8-bit copy of the base",
             "16bit": "the 16-bit base"}.get(_precision(facts), t.precision)
    lines = [f"# {title}", "",
             f"Fine-tuned with LoRA Studio from the run `{facts.run_dir.name}`: a LoRA adapter "
             f"(rank {a.rank}, alpha {a.alpha}, on {', '.join(a.targets)}) trained on {quant} for {facts.step} "
             f"steps.{_how_it_ended(facts)}", ""]
    lines += _method(facts)
    if merged:
        lines += [f"This folder holds the base model with the adapter merged into its weights, saved in {dtype} "
                  "(the merge was done on the unquantized 16-bit base, never on 4-bit weights). It loads with "
                  "`transformers` alone: no PEFT needed.", ""]
    return lines


def _method(facts: RunFacts) -> list[str]:
    """How it learned, when not by imitating answers: the preference method and its settings."""
    t, start = facts.config.training, facts.config.adapter.start_from
    if t.method == "sft":
        return [f"It went on training the adapter of `{start}`.", ""] if start else []
    what = {"dpo": "DPO (Direct Preference Optimization, TRL's DPOTrainer): it learned to prefer each chosen answer "
                   "over its rejected one, measured against " + ("the adapter it started from" if start else "the base model"),
            "orpo": "ORPO (Odds Ratio Preference Optimization, TRL's ORPOTrainer): it learned the chosen answers and "
                    "to prefer them over the rejected ones, with no reference model"}[t.method]
    lines = [f"Training method: {what}; beta {t.beta:g}."]
    if start:
        lines.append(f"It started from the adapter of `{start}`.")
    return [" ".join(lines), ""]


def _base_section(facts: RunFacts) -> list[str]:
    license_ = facts.base_license or "unknown"
    return ["## Base model", "",
            f"- **Model:** {facts.base_name} (`{facts.base_reference}`)",
            f"- **License:** {license_}" + ("" if facts.base_license else " — check the base model's own page") +
            ". The adapter and anything made with it follow the base model's license.", ""]


def _data_section(facts: RunFacts) -> list[str]:
    d, t = facts.config.data, facts.config.training
    rows = ""
    if facts.train_rows is not None:
        rows = (f"{facts.train_rows + (facts.eval_rows or 0)} rows used ({facts.train_rows} for training, "
                f"{facts.eval_rows or 0} held out for eval loss)")
    return ["## Data", "",
            f"- **Source:** `{d.source}`" + (" (the studio's built-in demo dataset)" if d.source == "demo" else ""),
            f"- **Format:** {facts.data_format or 'detected automatically when training'}",
            f"- **Rows:** {rows or 'not recorded'}",
            f"- **Loss on:** {'the assistant turns only' if d.assistant_only else 'every token'}; sequences cut at "
            f"{t.seq_len} tokens", ""]


def _results_section(facts: RunFacts) -> list[str]:
    first = facts.losses[0][1] if facts.losses else None
    last = "final" if facts.checkpoint is None else f"at checkpoint-{facts.checkpoint}"
    until = [] if facts.checkpoint is None else [f"Up to {facts.weights}: the steps after it are not in these weights.", ""]
    return ["## Results", ""] + until + [
            "| | loss |", "|---|---|",
            f"| training, first step | {_fmt(first)} |",
            f"| training, {last} (step {facts.losses[-1][0] if facts.losses else '—'}) | {_fmt(facts.final_loss)} |",
            f"| eval, {last}{_eval_step(facts)} | {_fmt(facts.final_eval_loss)} |", "",
            f"![Training and eval loss per step]({PLOT})", ""]


def _eval_step(facts: RunFacts) -> str:
    """A checkpoint's eval loss is the last one measured up to it: at which step."""
    return f" (step {facts.eval_losses[-1][0]})" if facts.checkpoint is not None and facts.eval_losses else ""


def _loading_code(facts: RunFacts, merged: bool, name: str) -> list[str]:
    if merged:
        code = ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'model = AutoModelForCausalLM.from_pretrained("{name}", dtype="auto")',
                f'tokenizer = AutoTokenizer.from_pretrained("{name}")']
    else:
        code = ["```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                f'base = AutoModelForCausalLM.from_pretrained("{facts.base_reference}", dtype="auto")',
                f'model = PeftModel.from_pretrained(base, "{name}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{name}")  # with the chat template training used']
    return code + ['messages = [{"role": "user", "content": "Your question"}]',
                   'inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", '
                   'return_dict=True)',
                   "out = model.generate(**inputs, max_new_tokens=128)",
                   'print(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))', "```"]


def _usage_section(facts: RunFacts, merged: bool, name: str, has_modelfile: bool) -> list[str]:
    t = facts.config.training
    template_note = ("the studio's plain `### User:` / `### Assistant:` template (the base model has none of its own)"
                     if facts.meta.get("chat_template_is_default") else "the base model's own chat template")
    lines = ["## How to use it", "",
             f"{'Load it with transformers' if merged else 'Load the base model, then the adapter with PEFT'}. Prompts must be "
             f"rendered with the chat template saved here ({template_note}): `apply_chat_template` does that.", ""]
    lines += _loading_code(facts, merged, name) + [""]
    if not merged and _precision(facts) in ("4bit", "8bit"):
        lines += ["The adapter was trained on a quantized base. It also works on the 16-bit base as above; to reproduce "
                  "training exactly, load the base with `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="
                  f'"{t.quant_type}", bnb_4bit_use_double_quant={t.double_quant})`.', ""]
    if has_modelfile:
        lines += ["With [Ollama](https://ollama.com): `ollama create NAME -f Modelfile` in this folder (read the comments "
                  "in the Modelfile first).", ""]
    return lines


def _recipe_section(facts: RunFacts) -> list[str]:
    return ["## Recipe", "",
            f"`{RECIPE}` in this folder is the complete recipe; `studio train --recipe {RECIPE}` trains it again.", "",
            "```toml", facts.config.to_toml().rstrip(), "```", ""]
