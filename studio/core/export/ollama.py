"""Ollama: the TEMPLATE that renders prompts as training did, and the Modelfile that uses it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio.core.export.go_template import render_go_template
from studio.core.runs import RunFacts

# Ollama documented `ADAPTER` (safetensors LoRA) for Llama, Mistral/Mixtral and Gemma 1/2 models
# (docs/import.md, "Importing a fine tuned adapter from Safetensors weights"); Ollama 0.34.1 and later
# refuse any Modelfile with ADAPTER (ollama/ollama PR 14969), so that route is only ever asked for.
OLLAMA_ADAPTER_TYPES = ("llama", "mistral", "mixtral", "gemma", "gemma2")
ADAPTER_ROUTE = "For Ollama before 0.34.1 only (later versions refuse ADAPTER): the base model plus this adapter."

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


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def modelfile_text(facts: RunFacts, template: OllamaTemplate, *, merged: bool, gguf_file: str | None = None) -> str:
    """The Modelfile: FROM the GGUF file (the default), FROM the merged weights, or — the explicit route for
    Ollama before 0.34.1 — FROM the base with ADAPTER; then TEMPLATE and the stop parameters."""
    name = facts.config.output.name
    which = "" if facts.checkpoint is None else f" ({facts.weights})"
    lines = [f"# Ollama Modelfile written by LoRA Studio for the run {facts.run_dir.name}{which}.",
             f"# In this folder:  ollama create {name.lower()} -f Modelfile   then:  ollama run {name.lower()}", "#"]
    if gguf_file:
        lines += ["# The fine-tuned model as one GGUF file (base + adapter merged), checked in llama.cpp after the export.",
                  f"FROM ./{gguf_file}"]
    elif merged:
        lines += ["# The merged model in this folder (base + adapter, 16-bit safetensors).", "FROM ."]
    else:
        lines += _adapter_route(facts)
    lines.append("")
    lines += _template_lines(template)
    for stop in template.stops:
        lines.append(f"PARAMETER stop {_quote(stop)}")
    return "\n".join(lines) + "\n"


def _adapter_route(facts: RunFacts) -> list[str]:
    base_dir = facts.base_path or facts.meta.get("base_model_path")
    where = str(base_dir) if base_dir and Path(base_dir).exists() else facts.base_reference
    lines = [f"# {ADAPTER_ROUTE}",
             f"# FROM must be the very base model this adapter was trained on: {facts.base_name} ({facts.base_reference}).",
             "# Point it at that model's safetensors folder (as below) or at an Ollama model made from the same",
             "# weights; another model, even a fine-tuned sibling of it, gives erratic answers."]
    if facts.meta.get("precision") in ("4bit", "8bit"):
        bits = facts.meta["precision"].replace("bit", "-bit")
        lines += [f"# The adapter was trained on a {bits} (QLoRA) copy of the base; Ollama applies it",
                  "# to the base at Ollama's own precision, so answers can differ a little from the studio's."]
    if facts.model_type and facts.model_type not in OLLAMA_ADAPTER_TYPES:
        lines += ["# Note: Ollama documents adapters only for Llama, Mistral and Gemma models; this base is",
                  f"# '{facts.model_type}', which `ollama create` may refuse."]
    return lines + ["# `studio export --gguf q4_k_m --ollama` gives a Modelfile every Ollama version takes.",
                    f"FROM {where}", "ADAPTER ."]


def _template_lines(template: OllamaTemplate) -> list[str]:
    if template.template is not None:
        label = {"chatml": "ChatML (<|im_start|>role ... <|im_end|>)",
                 "studio-default": "the studio's plain \"### User:\" / \"### Assistant:\" format"}[template.kind]
        return [f"# The prompt format training used: {label}. The leading BOS token of the chat",
                "# template is left out: Ollama adds it when the model's tokenizer asks for one.",
                f'TEMPLATE """{template.template}"""']
    return ["# No TEMPLATE: the chat template this run trained with is neither ChatML nor the studio's default",
            "# format, and the studio does not translate other templates automatically. Ollama then uses the",
            "# template it recognises in the GGUF file or the base model, which is right only if training used",
            "# the base model's own chat template.",
            "# To be sure, add a TEMPLATE \"\"\"...\"\"\" in Ollama's Go template syntax that renders the same",
            "# text as chat_template.jinja ({{ range .Messages }}{{ .Role }}{{ .Content }}{{ end }}, see",
            "# https://github.com/ollama/ollama/blob/main/docs/template.md), with a PARAMETER stop line",
            "# for each end-of-turn marker."]


def wants_modelfile(ollama: bool, ollama_adapter: bool = False) -> bool:
    return ollama or ollama_adapter
