"""Build LoRA Studio's built-in demo: dataset, pretraining corpus, tokenizer and a tiny Llama model.

    python resources/build_demo.py               # everything, into resources/ (about 4.5 minutes on 2 CPU cores)
    python resources/build_demo.py --data-only   # only demo-data/ and the corpus (seconds)
    python resources/build_demo.py --out /tmp/x  # somewhere else

Needs no network and no GPU; everything is seeded, so a rebuild on the same machine gives the same
files (the model card's build time aside). The domain is houseplant care (see demo_domain.py). The
base model is pretrained on prose, how-to guides and questions answered in prose; the "Plant doctor
says:" answer style exists only in the fine-tuning dataset, so a short QLoRA run on demo-data visibly
changes how the model answers (ARCHITECTURE.md, "The demo model must show learning").
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import demo_domain as domain

HERE = Path(__file__).resolve().parent

BOS, EOS, PAD = "<s>", "<|im_end|>", "<pad>"
IM_START, END_OF_TEXT = "<|im_start|>", "<|endoftext|>"
# Ids 0..4, in this order. EOS is <|im_end|> because the app chats: generation must stop at the end of
# an assistant turn. <|endoftext|> ends a plain-prose document in pretraining; generation_config lists
# both as end tokens, as Qwen2.5-Instruct does.
SPECIAL_TOKENS = [BOS, END_OF_TEXT, PAD, IM_START, EOS]

# ChatML with an optional leading system message. `{% generation %}` marks what the model should learn
# to write (assistant content and its closing <|im_end|>), so that
# `apply_chat_template(..., return_assistant_tokens_mask=True)` gives the loss mask directly.
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' and not loop.first %}"
    "{{- raise_exception('A system message is only allowed first.') }}"
    "{%- endif %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}{{- message['content'] + '<|im_end|>' }}{%- endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Small enough that fp32 weights stay under 10 MB and 30 QLoRA steps take about a minute on a laptop
# CPU; GQA (2 kv heads for 4 query heads) and untied embeddings so the demo exercises the same code
# paths (parameter counting, memory plan) as real Llama-family models.
MODEL_CONFIG = dict(
    vocab_size=2048,
    hidden_size=192,
    intermediate_size=512,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    initializer_range=0.02,
)


# --- Data -----------------------------------------------------------------------------------------

def write_data(out: Path, seed: int) -> tuple[list[dict], dict[str, str], list[list[dict]]]:
    rows = domain.build_dataset(seed)
    corpus = domain.build_corpus(seed)
    prose_qa = domain.build_prose_qa(seed)

    data_dir = out / "demo-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "demo.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(data_dir / "golden.jsonl", "w", encoding="utf-8") as f:  # `studio eval`'s questions for the demo
        for row in domain.build_golden(seed):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(data_dir / "preferences.jsonl", "w", encoding="utf-8") as f:  # the demo's DPO data
        for row in domain.build_preferences(seed):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    corpus_dir = out / "demo-model" / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    for name, text in corpus.items():
        (corpus_dir / name).write_text(text, encoding="utf-8")
    with open(corpus_dir / "qa_prose.jsonl", "w", encoding="utf-8") as f:
        for messages in prose_qa:
            f.write(json.dumps({"messages": messages}, ensure_ascii=False) + "\n")
    return rows, corpus, prose_qa


# --- Tokenizer ------------------------------------------------------------------------------------

def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (GPT-2 style), so any text round-trips with no unknown token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # Plain text gets <s> in front (a base model's usual input). The chat template writes its own <s>,
    # and apply_chat_template tokenizes with add_special_tokens=False, so chats get exactly one.
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        extra_special_tokens=[IM_START, END_OF_TEXT], model_max_length=MODEL_CONFIG["max_position_embeddings"],
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tokenizer(tokenizer, model_dir: Path) -> None:
    """save_pretrained, then name things so that transformers 4.x reads them too (pyproject allows
    >= 4.56): the generic fast-tokenizer class instead of v5's `TokenizersBackend`, and the extra
    special tokens under their long-standing key. The template goes to chat_template.jinja."""
    tokenizer.save_pretrained(model_dir)
    path = model_dir / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if "extra_special_tokens" in config:
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# --- Pretraining ----------------------------------------------------------------------------------

def corpus_documents(tokenizer, corpus: dict[str, str]) -> list[list[int]]:
    """Token ids per corpus document (documents are separated by a blank line), <s> ... <|endoftext|>."""
    eot = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    return [tokenizer(doc.strip())["input_ids"] + [eot]
            for text in corpus.values() for doc in text.split("\n\n") if doc.strip()]


def chat_documents(tokenizer, prose_qa: list[list[dict]]) -> list[list[int]]:
    """Token ids per prose Q&A conversation, rendered with the chat template."""
    eot = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    return [list(tokenizer.apply_chat_template(m, return_dict=True)["input_ids"]) + [eot] for m in prose_qa]


def pretrain(model, docs: list[list[int]], *, steps: int, batch: int, seq_len: int, lr: float, seed: int,
             bf16: bool, log=print) -> list[float]:
    """Plain next-token training on packed sequences; AdamW, linear warmup, cosine decay to 10%.

    With `bf16`, the forward pass runs under CPU bf16 autocast (weights stay fp32): about 1.4x faster
    on CPUs with native bf16, which buys the extra steps the model needs to learn to answer the
    question it is asked within the build's few minutes.
    """
    import torch

    rng = random.Random(seed)

    def batches():
        # Each epoch: shuffle documents, concatenate, cut into seq_len windows, shuffle the windows.
        while True:
            order = docs[:]
            rng.shuffle(order)
            stream = [t for d in order for t in d]
            windows = [stream[i:i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]
            rng.shuffle(windows)
            for i in range(0, len(windows) - batch + 1, batch):
                yield torch.tensor(windows[i:i + batch])

    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim < 2 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95))
    warmup = max(1, steps // 20)

    def lr_at(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    model.train()
    losses, start, it = [], time.time(), batches()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        x = next(it)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 25 == 0 or step == steps - 1:
            recent = sum(losses[-25:]) / len(losses[-25:])
            log(f"  step {step:4d}/{steps}  loss {recent:.3f}  lr {lr_at(step):.2e}  {time.time() - start:5.0f}s")
    model.eval()
    return losses


def sample(model, tokenizer, question: str, max_new_tokens: int = 80) -> str:
    import torch

    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


# --- Cards ----------------------------------------------------------------------------------------

def data_card(rows: list[dict]) -> str:
    n_multi = sum(1 for r in rows if sum(m["role"] == "assistant" for m in r["messages"]) > 1)
    n_system = sum(1 for r in rows if r["messages"][0]["role"] == "system")
    example = "\n".join("    " + line for line in domain.doctor_answer(
        *domain.care_answer("water", domain.PLANT_BY_NAME["pothos"])).splitlines())
    held_out = "\n".join(f"- {q}" for q in domain.HELD_OUT_PROMPTS)
    return f"""# Demo dataset: the Plant doctor

`demo.jsonl` is a small instruction dataset about **houseplant care**, written by LoRA Studio itself
(templates and a hand-written knowledge base in `resources/demo_domain.py`, seeded, rebuilt by
`python resources/build_demo.py --data-only`). It is the dataset the demo fine-tune trains on.

- {len(rows)} conversations, JSON Lines, OpenAI/chat `messages` format
  (`{{"messages": [{{"role": "system"|"user"|"assistant", "content": ...}}]}}`).
- {n_multi} are multi-turn (user, assistant, user, assistant); {n_system} start with a system message.
  Every conversation alternates user/assistant and ends with an assistant turn.
- Topics: 24 common houseplants x 16 problems (yellow leaves, pests, root rot, ...), everyday care
  (water, light, soil, pets, propagation) and general questions.

## The style the fine-tune learns
Every answer has the same distinctive shape: the marker line `Plant doctor says:`, a one-sentence
diagnosis, three or four numbered steps, and a one-line `Tip:`.

{example}

The demo base model (`resources/demo-model`) was pretrained on the same facts written as plain
prose, and never saw this marker or shape. So before fine-tuning it answers in prose; after a short
QLoRA run it answers like the Plant doctor.

## Held-out questions
These plant/problem pairs are in neither the dataset nor the base model's question-and-answer
prose; use them to try the model before and after fine-tuning:

{held_out}

`golden.jsonl` holds 15 golden questions with the answer the Plant doctor would give, none of them a
question the dataset asks: these three first, three more plant/problem pairs the dataset never uses,
then nine pairs it does teach, asked in words its rows never use. `studio train --questions` scores each
checkpoint's answers against them as it is saved, `studio eval RUN --questions` after training.

## License
Written by the LoRA Studio project; dedicated to the public domain under
[CC0 1.0](https://creativecommons.org/publicdomain/zero/1.0/). The advice is general houseplant
care, checked for common sense, not expert horticultural or veterinary advice.
"""


def model_card(config, n_params: int, size_bytes: int, n_tokens: int, args, losses: list[float], seconds: float,
               samples: list[tuple[str, str]]) -> str:
    def mean_at(end: int) -> float:
        window = losses[max(0, end - 25):end]
        return sum(window) / len(window)

    shown = "\n\n".join(f"**{q}**\n\n> {a.strip()}" for q, a in samples)
    compute = "bf16 autocast, fp32 weights" if args.bf16 else "fp32"
    return f"""---
license: cc0-1.0
language: en
library_name: transformers
pipeline_tag: text-generation
tags: [llama, demo, tiny]
---
# LoRA Studio demo model (tiny Llama, houseplant care)

A deliberately tiny causal language model bundled with LoRA Studio, so that the whole fine-tuning
path (4-bit load, LoRA, training, samples, export) runs on a laptop CPU in about a minute, and so
that the tests have a real model. It knows a little about houseplants and nothing else, and is not
useful for anything except demonstrating and testing fine-tuning.

## Architecture
`LlamaForCausalLM`, {n_params:,} parameters, stored in fp32 (`model.safetensors`, {size_bytes / 1e6:.1f} MB).

| hidden | layers | attention heads | key/value heads | MLP | vocabulary | context | embeddings |
|---|---|---|---|---|---|---|---|
| {config.hidden_size} | {config.num_hidden_layers} | {config.num_attention_heads} | {config.num_key_value_heads} (GQA) | \
{config.intermediate_size} | {config.vocab_size} | {config.max_position_embeddings} | untied |

## Tokenizer
Byte-level BPE with {config.vocab_size} tokens, trained with the `tokenizers` library on the corpus and
the demo dataset. Special tokens: `<s>` (bos), `<|im_end|>` (eos, ends a chat turn), `<pad>`,
`<|im_start|>`, `<|endoftext|>` (ends a plain-text document). Plain `tokenizer(text)` prepends `<s>`.
Chat template: ChatML (`<|im_start|>role\\n...<|im_end|>\\n`) after a leading `<s>`, with an optional
first system message and `{{% generation %}}` markers, so `apply_chat_template(...,
return_assistant_tokens_mask=True)` returns the loss mask (assistant content and its `<|im_end|>`).

## Training
From random initialisation, seed {args.seed}, AdamW with cosine schedule, batches of {args.batch} x
{args.seq_len} tokens, {compute}, {seconds / 60:.1f} minutes on a CPU:

1. {args.steps} steps (peak learning rate {args.lr}) on all the data below, {n_tokens:,} tokens:
   training loss {mean_at(args.steps):.2f} at the end;
2. {args.chat_steps} steps (peak learning rate {args.chat_lr}) on the prose Q&A alone, which teaches it to answer
   the question asked: training loss {mean_at(len(losses)):.2f} at the end.

The data, all written by the project and kept in `corpus/`: paragraphs and how-to guides about
houseplants (`*.txt`), and questions answered in plain prose, formatted with the chat template
(`qa_prose.jsonl`), so that the model knows the chat markup and ends its turns with `<|im_end|>`.
It never saw the "Plant doctor says:" answer style of `resources/demo-data`: that is what a demo
fine-tune teaches it.

Before fine-tuning (greedy decoding, questions not in its training data):

{shown}

Rebuild from scratch, offline: `python resources/build_demo.py` (seeded; identical output needs the
same kind of CPU and the same thread count).

## License
Weights, tokenizer and corpus: written by the LoRA Studio project, released under
[CC0 1.0](https://creativecommons.org/publicdomain/zero/1.0/). The build script is part of LoRA
Studio (Apache-2.0).
"""


# --- Main -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder that receives demo-data/ and demo-model/")
    parser.add_argument("--data-only", action="store_true", help="write the dataset and corpus, skip the model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=400,
                        help="pretraining steps on corpus + prose Q&A (about 0.36 s each on 2 cores with bf16)")
    parser.add_argument("--chat-steps", type=int, default=250, help="then steps on the prose Q&A alone")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--chat-lr", type=float, default=1e-3)
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast for pretraining (default: when the CPU supports bf16 natively)")
    args = parser.parse_args(argv)

    started = time.time()
    rows, corpus, prose_qa = write_data(args.out, args.seed)
    (args.out / "demo-data" / "README.md").write_text(data_card(rows), encoding="utf-8")
    print(f"dataset: {len(rows)} rows; corpus: {sum(len(t) for t in corpus.values()):,} characters "
          f"+ {len(prose_qa)} prose Q&A")
    if args.data_only:
        return 0

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    if args.bf16 is None:
        args.bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    torch.manual_seed(args.seed)
    model_dir = args.out / "demo-model"
    texts = [p for t in corpus.values() for p in t.split("\n\n")]
    texts += [m["content"] for qa in prose_qa for m in qa]
    texts += [m["content"] for r in rows for m in r["messages"]]
    tokenizer = train_tokenizer(texts, MODEL_CONFIG["vocab_size"])

    config = LlamaConfig(
        **MODEL_CONFIG,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    chat_docs = chat_documents(tokenizer, prose_qa)
    docs = corpus_documents(tokenizer, corpus) + chat_docs
    n_tokens = sum(len(d) for d in docs)
    print(f"tokenizer: {len(tokenizer)} tokens; model: {n_params:,} parameters; pretraining data: {n_tokens:,} tokens")

    # Two phases, like a base model followed by a short chat warm-up: first everything, then only the
    # prose Q&A, which is what teaches the model to answer *the question asked* (which plant, which
    # problem) rather than a plausible answer to some question.
    t0 = time.time()
    losses = pretrain(model, docs, steps=args.steps, batch=args.batch, seq_len=args.seq_len, lr=args.lr,
                      seed=args.seed, bf16=args.bf16)
    print("chat warm-up (prose Q&A only):")
    losses += pretrain(model, chat_docs, steps=args.chat_steps, batch=args.batch, seq_len=args.seq_len,
                       lr=args.chat_lr, seed=args.seed + 1, bf16=args.bf16)
    seconds = time.time() - t0

    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TEXT)],
        pad_token_id=tokenizer.pad_token_id, max_new_tokens=200, do_sample=False,
    )
    samples = [(q, sample(model, tokenizer, q)) for q in domain.HELD_OUT_PROMPTS]
    for q, a in samples:
        print(f"Q: {q}\nA: {a}\n")

    model.save_pretrained(model_dir)  # safetensors, fp32
    (model_dir / "model.safetensors").chmod(0o644)  # written via a private temp file (0600)
    save_tokenizer(tokenizer, model_dir)
    size = (model_dir / "model.safetensors").stat().st_size
    (model_dir / "README.md").write_text(
        model_card(config, n_params, size, n_tokens, args, losses, seconds, samples), encoding="utf-8")
    print(f"wrote {model_dir} ({size / 1e6:.1f} MB weights) in {time.time() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
