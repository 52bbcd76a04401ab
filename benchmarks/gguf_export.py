"""GGUF export: what each GGUF type costs and how close llama.cpp's answers stay to transformers'.

For three models — the bundled demo model as it is, and two built here (a Qwen2-style one with tied
embeddings and a Llama-3-style one with untied embeddings, hidden 512, 8 layers, an 8k byte-level BPE
trained on the demo corpus and Python's standard library) — and for each GGUF type (bf16, f16, q8_0, q6_k,
q5_k_m, q4_k_m) this measures the file's size, the time to write it (write_gguf for 16-bit types, llama.cpp's quantizer from the bf16
file for the others) and, over 5 prompts × 32 greedy tokens, how many answers are identical to
transformers' (fp32), the share of tokens before the first difference, and top-1 agreement along
transformers' answer. Random weights give near-uniform logits whose first choice flips at any rounding,
so the two built models are first trained briefly (whole-parameter AdamW on the demo's chat data, --steps)
until their next-token distributions are peaked like a real model's. Per answer it also prints transformers'
smallest gap between its first and second choice: where that is tiny, any rounding may flip the choice.

    python benchmarks/gguf_export.py [--steps 120] [--models demo,qwen2,llama3] [--results benchmarks/RESULTS.md]

With --results, the table goes between `<!-- gguf-export:start -->` and `<!-- gguf-export:end -->` in that
file (a new section at its end when the markers are absent).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests import gguf_models as tiny  # noqa: E402

DEMO = ROOT / "resources" / "demo-model"
TYPES = ("bf16", "f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m")
PROMPTS = ["My fern has brown, crispy tips. What is wrong?", "How often should I water a cactus in winter?",
           "Mon ficus perd ses feuilles, que faire ?", "Which plants are safe for cats?", "Why are my basil leaves drooping?"]
START, END = "<!-- gguf-export:start -->", "<!-- gguf-export:end -->"
SIZE = dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
            max_position_embeddings=2048)  # rows of 512 and 1536: whole K-quant blocks of 256


def tokenizer_texts() -> list[str]:
    """The demo corpus and chat data, the tests' multilingual text, and 3 MB of Python's own standard library
    (the houseplant text alone has words for only 3,600 tokens)."""
    corpus = DEMO / "corpus"
    chats = [m["content"] for line in (corpus / "qa_prose.jsonl").read_text(encoding="utf-8").splitlines()
             for m in json.loads(line)["messages"]]
    code, total = [], 0
    for path in sorted(Path(os.__file__).parent.glob("*.py")):
        code.append(path.read_text(encoding="utf-8", errors="replace"))
        total += len(code[-1])
        if total > 3_000_000:
            break
    return [p.read_text(encoding="utf-8") for p in sorted(corpus.glob("*.txt"))] + chats + [tiny.corpus()] + code


def demo_conversations(limit: int = 4000) -> list[list[dict]]:
    rows = []
    with (DEMO / "corpus" / "qa_prose.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rows.append([m for m in json.loads(line)["messages"] if m["role"] != "system"])
            if len(rows) >= limit:
                break
    return rows


def train(model, tokenizer, steps: int, batch: int = 16, width: int = 192, lr: float = 2e-3, seed: int = 0) -> list[float]:
    """Whole-parameter AdamW on random batches of the demo's conversations, rendered with the chat template."""
    import torch

    rng = random.Random(seed)
    torch.manual_seed(seed)
    rows = [tokenizer(tokenizer.apply_chat_template(c, tokenize=False), add_special_tokens=False)["input_ids"][:width]
            for c in demo_conversations()]
    pad = tokenizer.pad_token_id
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 10))
    model.train()
    losses = []
    for _ in range(steps):
        chosen = rng.sample(rows, batch)
        longest = max(map(len, chosen))
        ids = torch.tensor([r + [pad] * (longest - len(r)) for r in chosen])
        labels = torch.tensor([r + [-100] * (longest - len(r)) for r in chosen])
        loss = model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def build(kind: str, folder: Path, steps: int) -> dict:
    """A Qwen2-style (tied) or Llama-3-style (untied) model of SIZE in `folder`, trained `steps` steps, in bf16."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    start = time.monotonic()
    if kind == "qwen2":
        tok = tiny.byte_level_tokenizer(folder, tiny.QWEN2_REGEX, vocab_size=8000, llama3=False, texts=tokenizer_texts())
        rows = (len(tok) // 128 + 1) * 128  # embedding rows no token uses, as Qwen pads its embedding
        config = Qwen2Config(**SIZE, vocab_size=rows, tie_word_embeddings=True, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
    else:
        tok = tiny.byte_level_tokenizer(folder, tiny.LLAMA3_REGEX, vocab_size=8000, llama3=True, texts=tokenizer_texts())
        config = LlamaConfig(**SIZE, vocab_size=len(tok), tie_word_embeddings=False, bos_token_id=tok.bos_token_id,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, rope_theta=500000.0)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    losses = train(model, tok, steps)
    model.to(torch.bfloat16).save_pretrained(str(folder))
    parameters = sum(p.numel() for p in model.parameters())
    return {"parameters": parameters, "tokens": len(tok), "loss_first": losses[0] if losses else None,
            "loss_last": sum(losses[-5:]) / len(losses[-5:]) if losses else None, "seconds": time.monotonic() - start}


def closest_calls(folder: Path, reference) -> list[float]:
    """Per prompt, the smallest gap between transformers' first and second choice (logits) along its answer: where
    it is tiny, any rounding (llama.cpp rounds activations to 16 bits for 16-bit weights) may flip the choice."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    gaps = []
    with torch.no_grad():
        for prompt, answer in zip(reference.prompt_ids, reference.answer_ids, strict=True):
            logits = model(torch.tensor([list(prompt) + list(answer)])).logits[0, len(prompt) - 1:-1]
            top = logits.topk(2, dim=-1).values
            gaps.append(float((top[:, 0] - top[:, 1]).min()))
    return gaps


def measure(name: str, folder: Path, work: Path, types: tuple[str, ...]) -> tuple[list[dict], list[float]]:
    from transformers import AutoTokenizer

    from studio.core.data.tokens import chat_template_of
    from studio.core.export.to_gguf import check_gguf, reference_answers, write_gguf
    from studio.core.export.to_gguf.quantize import quantize

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    template = chat_template_of(tokenizer)[0]
    start = time.monotonic()
    reference = reference_answers(folder, PROMPTS, template)
    gaps = closest_calls(folder, reference)
    print(f"{name}: transformers' answers in {time.monotonic() - start:.1f} s (fp32: {reference.exact}); smallest "
          f"top-2 logit gap per answer: {', '.join(f'{g:.4f}' for g in gaps)}", flush=True)
    rows, files = [], {}
    for quant in types:
        path = work / f"{name}-{quant}.gguf"
        start = time.monotonic()
        if quant in ("bf16", "f16"):
            write_gguf(folder, path, sixteen=quant, chat_template=template, name=name)
        else:
            source = files.get("bf16") or work / f"{name}-bf16.gguf"
            if not source.exists():
                write_gguf(folder, source, sixteen="bf16", chat_template=template, name=name)
            quantize(source, path, quant)
        seconds = time.monotonic() - start
        files[quant] = path
        check = check_gguf(path, quant, reference, exact=quant in ("bf16", "f16"), decode=tokenizer.decode)
        row = {"model": name, "type": quant, "bytes": path.stat().st_size, "seconds": seconds,
               "identical": check.identical_answers, "prompts": check.prompts, "share": check.identical_token_share,
               "top1": check.top1_agreement, "tokenizer": check.tokenizer_agrees}
        rows.append(row)
        print(f"  {quant:7s} {row['bytes'] / 1e6:8.2f} MB {seconds:6.2f} s  identical {row['identical']}/{row['prompts']}  "
              f"tokens {row['share']:.0%}  top-1 {row['top1']:.1%}  tokenizer {row['tokenizer']}/{row['prompts']}", flush=True)
    return rows, gaps


def table(rows: list[dict], models: dict[str, str]) -> str:
    lines = ["| model | type | file | export | identical answers | identical tokens | top-1 agreement |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {models[r['model']]} | {r['type']} | {r['bytes'] / 1e6:.2f} MB | {r['seconds']:.2f} s | "
                     f"{r['identical']}/{r['prompts']} | {r['share']:.0%} | {r['top1']:.1%} |")
    return "\n".join(lines)


def machine() -> str:
    from importlib.metadata import version

    import llama_cpp
    import torch
    import transformers

    cores = os.cpu_count()
    return (f"{cores} CPU cores ({platform.processor() or platform.machine()}), no GPU used; Python {platform.python_version()}, "
            f"torch {torch.__version__}, transformers {transformers.__version__}, gguf {version('gguf')}, "
            f"llama-cpp-python {llama_cpp.__version__}")


def write_results(path: Path, body: str, command: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    block = f"{START}\n{body}\n{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        today = datetime.date.today().isoformat()
        text = (text.rstrip("\n") + f"\n\n## GGUF export: llama.cpp answers beside transformers (2 CPU cores, no GPU) — {today}\n\n"
                f"```\n{command}\n```\n\n{block}\n")
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,qwen2,llama3")
    parser.add_argument("--types", default=",".join(TYPES))
    parser.add_argument("--steps", type=int, default=120, help="training steps for the two built models")
    parser.add_argument("--work", type=Path, help="where the models and files go (default: a temporary folder, removed)")
    parser.add_argument("--results", type=Path, help="write the table into this markdown file")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gguf-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    types = tuple(t.strip() for t in args.types.split(",") if t.strip())
    labels, notes, rows = {}, [], []
    try:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            if name == "demo":
                folder = DEMO
                labels[name] = "demo (Llama, 2.4M, fp32)"
                notes.append("demo: resources/demo-model as shipped (fp32 weights, hidden 192: rows not a multiple of 256, so "
                             "llama.cpp's K-quant types fall back to other block types for most tensors).")
            else:
                folder = work / name
                built = build(name, folder, args.steps)
                style = "Qwen2-style, tied" if name == "qwen2" else "Llama-3-style, untied"
                labels[name] = f"{name} ({style}, {built['parameters'] / 1e6:.1f}M)"
                notes.append(f"{name}: {style} embeddings, hidden 512, 8 layers, 8 heads (2 KV), MLP 1536, "
                             f"{built['tokens']} tokens; trained {args.steps} steps (loss {built['loss_first']:.2f} → "
                             f"{built['loss_last']:.2f}) in {built['seconds']:.0f} s, saved in bf16.")
                print(notes[-1], flush=True)
            measured, gaps = measure(name, folder, work, types)
            rows += measured
            notes.append(f"{name}: transformers' smallest gap between its first and second choice along each answer: "
                         + ", ".join(f"{g:.4f}" for g in gaps) + " (logits).")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    body = table(rows, labels)
    print()
    print(body)
    if args.results:
        command = "python benchmarks/gguf_export.py " + " ".join(sys.argv[1:])
        text = (f"{machine()}.\n\n{body}\n\n" + "\n".join(f"- {n}" for n in notes) + "\n\n"
                "Each file answered the same 5 prompts (English, one French) for 32 greedy tokens, beside transformers in fp32 "
                "on the same weights. Identical tokens: the share before the first difference; top-1: how often llama.cpp's "
                "first choice is transformers' next token along transformers' own answer. Export time: write_gguf for 16-bit, "
                "llama.cpp's quantizer from the bf16 file for the others. The two built models are random weights trained "
                f"{args.steps} AdamW steps (16 of the demo's chat conversations a step, lr 2e-3) so their "
                "next-token distributions are peaked; untrained random weights give near-uniform logits whose first choice "
                "flips at any rounding, which would make every quantized figure look worse than on a real model.")
        write_results(args.results, text, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
