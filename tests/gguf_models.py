"""Tiny models of each architecture the GGUF export writes, built here from nothing: a tokenizer trained
with the `tokenizers` library on a short text of our own (English and other languages) and a small
random-weight model, briefly trained on chat conversations so its answers are confident (random
weights give near-uniform logits, whose first choice flips with any rounding). Used by
tests/core/test_gguf_architectures.py and benchmarks/gguf_export.py."""

from __future__ import annotations

from pathlib import Path

# Split regexes as tokenizer.json files hold them: Llama 3's (digits in threes) and Qwen2's (single digits).
LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

CHAT_TEMPLATE = ("{% if bos_token %}{{ bos_token }}{% endif %}{% for message in messages %}"
                 "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

# (question, answer): the model learns these; the tests ask some of the questions.
CONVERSATIONS = [
    ("How often should I water a fern?",
     "Keep the soil of a fern evenly moist: water when the top two centimetres feel dry, usually twice a week in summer "
     "and once a week in winter. Ferns like humid air, so a tray of wet pebbles helps."),
    ("Wie oft soll ich meine Orchidee gießen?",
     "Gießen Sie die Orchidee etwa alle sieben bis zehn Tage, wenn die Wurzeln silbrig grau aussehen. Staunässe "
     "schadet ihr mehr als Trockenheit; das Wasser sollte immer gut ablaufen können."),
    ("Pourquoi les feuilles de mon basilic jaunissent-elles ?",
     "Des feuilles jaunes sur le basilic viennent souvent d'un excès d'eau ou d'un manque de lumière. Laissez sécher "
     "la surface du terreau et placez le pot près d'une fenêtre ensoleillée."),
    ("多肉植物需要多少阳光？",
     "多肉植物喜欢充足的阳光，每天最好有四到六个小时的直射光。光线不足时，植株会徒长，颜色也会变淡。"),
    ("Как часто нужно пересаживать кактус?",
     "Молодой кактус пересаживают раз в год весной, взрослый — раз в три или четыре года. Берите горшок чуть "
     "больше прежнего и рыхлую землю с песком."),
    ("What is the best light for a snake plant?",
     "A snake plant grows best in bright, indirect light but tolerates shade well. It can live for 10 to 15 years; "
     "water it every 2-3 weeks and let the soil dry out between waterings."),
    ("Can I keep a monstera in the bathroom?",
     "Yes, if the bathroom has a window. A monstera enjoys the steam and warmth (20-30 °C), but without daylight it "
     "stops growing. Wipe the big leaves now and then so they can breathe."),
    ("¿Cada cuánto riego un potus?",
     "Riega el potus cuando los primeros tres centímetros de tierra estén secos, más o menos una vez por semana. "
     "Si las hojas cuelgan, necesita agua; si amarillean, tiene demasiada."),
    ("Why do my tomato seedlings fall over?",
     "Seedlings that fall over at the soil line usually have damping off, a fungus that loves cold, wet soil. Sow in "
     "fresh compost, water from below and give them a gentle breeze; it's the air that keeps them strong."),
    ("My ficus dropped 12 leaves in 3 days 🌿 — what's wrong?",
     "A ficus drops leaves when something changed: a move, a cold draft or less light. Keep it in one bright spot, "
     "away from radiators, and water only when the top 3 cm are dry; new leaves follow in 4-6 weeks."),
    ("日本の盆栽はどう手入れしますか？",
     "盆栽は毎日土の乾き具合を確かめ、乾いたらたっぷり水をあげます。春と秋に枝を整え、冬は寒風から守りましょう。"),
]
# Asked by the tests: English, German, and English with digits, an emoji and a dash.
PROMPTS = ["How often should I water a fern?", "Wie oft soll ich meine Orchidee gießen?",
           "My ficus dropped 12 leaves in 3 days 🌿 — what's wrong?"]
BENCHMARK_PROMPTS = PROMPTS + ["多肉植物需要多少阳光？", "Can I keep a monstera in the bathroom?"]

_EXTRA_TEXT = """Plants need light, water, air and food. In spring most house plants start to grow again; feed them every
two weeks until autumn. Numbers: 1, 22, 333, 4444, 55555 and 3.14159. Code: for i in range(10): print(i * 2)
Die Pflanzen brauchen Licht und Wasser. Les plantes ont besoin de lumière. Las plantas necesitan agua.
植物需要光和水。 Растениям нужен свет. 植物には光が必要です。 Don't overwater; they're happier dry than drowned.
"""


def corpus() -> str:
    return _EXTRA_TEXT + "\n".join(f"{q}\n{a}" for q, a in CONVERSATIONS)


PHI3_CHAT_TEMPLATE = ("{% if bos_token %}{{ bos_token }}{% endif %}{% for message in messages %}"
                      "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}{% endfor %}"
                      "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")


def _wrap(tokenizer, folder: Path, bos: str | None, eos: str, pad: str, unk: str | None = None, template: str = CHAT_TEMPLATE):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk,
                                   clean_up_tokenization_spaces=False)
    fast.chat_template = template
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(folder))
    return fast


def byte_level_tokenizer(folder: Path, regex: str, vocab_size: int = 800, llama3: bool = True, texts: list[str] | None = None):
    """A byte-level BPE with a Split pre-tokenizer: Llama 3 style (ignore_merges, BOS added by the post-processor)
    or Qwen2 style (`llama3=False`: no BOS at all). Special tokens come after the trained vocabulary, as in both.
    Trained on `texts` (default: the corpus here)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(ignore_merges=llama3))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(regex), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts or [corpus()], trainer)
    if llama3:
        bos, eos, pad = "<|begin_of_text|>", "<|im_end|>", "<|finetune_pad|>"
        tok.add_special_tokens([bos, "<|im_start|>", eos, pad])
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, tok.token_to_id(bos))])
        return _wrap(tok, folder, bos, eos, pad)
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return _wrap(tok, folder, None, "<|im_end|>", "<|endoftext|>")


SENTENCEPIECE_STYLES = ("llama2", "metaspace-first", "gemma", "phi3")


def sentencepiece_tokenizer(folder: Path, style: str, vocab_size: int = 700, pieces: list[str] | None = None):
    """A SentencePiece-style BPE with byte fallback, as Llama 2, Mistral, Gemma and Phi-3 tokenizer.json files are:
    special tokens, the 256 <0xNN> byte tokens, then pieces with '▁' for a space; merges list every split of every
    piece, ranked by the piece (what transformers writes when it converts a SentencePiece model, which joins any
    two pieces that make a piece). Rare characters are left to the byte tokens. `pieces`: these, in this order,
    instead of pieces trained on the corpus.
    style: "llama2" (a Prepend('▁') normalizer: transformers' legacy Llama/Mistral tokenizer), "metaspace-first"
    (a Metaspace pre-tokenizer that puts '▁' in front of the text's start only: transformers 5's LlamaTokenizer),
    "gemma" (no '▁' in front),
    "phi3" (llama2, plus Phi-3's special tokens, which swallow the whitespace after them, and its chat template)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if pieces is None:
        trainer_tok = Tokenizer(models.BPE())
        trainer_tok.normalizer = normalizers.Replace(" ", "\u2581")
        trainer_tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, limit_alphabet=150, show_progress=False)
        trainer_tok.train_from_iterator([corpus()], trainer)
        pieces = [piece for piece, _ in sorted(trainer_tok.get_vocab().items(), key=lambda kv: kv[1])]
    specials = ["<pad>", "</s>", "<s>", "<unk>"] if style == "gemma" else ["<unk>", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for piece in pieces:
        vocab.setdefault(piece, len(vocab))
    merges = []
    for piece, pid in vocab.items():
        if pid < len(specials) + 256:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((pid, vocab[left], vocab[right], left, right))
    merges = [(left, right) for *_, left, right in sorted(merges)]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    decoder = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if style in ("llama2", "phi3"):
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    elif style == "metaspace-first":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    elif style == "gemma":
        tok.normalizer = normalizers.Replace(" ", "\u2581")
    else:
        raise ValueError(style)
    if style != "gemma":
        decoder.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(decoder)
    bos = "<s>"
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, vocab[bos])])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False, rstrip=style == "phi3" and t == "</s>")
                            for t in specials])
    if style == "phi3":  # as Phi-3 mini's: <|endoftext|>, <s> and <unk> keep the whitespace after them, the others swallow it
        tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)]
                               + [AddedToken(t, special=True, normalized=False, rstrip=True)
                                  for t in ("<|assistant|>", "<|system|>", "<|end|>", "<|user|>")])
        return _wrap(tok, folder, "<s>", "<|end|>", "<|endoftext|>", "<unk>", template=PHI3_CHAT_TEMPLATE)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<|im_start|>", "<|im_end|>")])
    return _wrap(tok, folder, "<s>", "<|im_end|>", "<pad>" if style == "gemma" else "<unk>", "<unk>")


def conversation_texts(tokenizer) -> list[str]:
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}], tokenize=False)
            for q, a in CONVERSATIONS]


def train_briefly(model, tokenizer, steps: int, lr: float = 3e-3, seed: int = 0) -> float:
    """A few full-parameter steps on the conversations (whole batch), so the answers are peaked."""
    import torch

    torch.manual_seed(seed)
    rows = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in conversation_texts(tokenizer)]
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    labels = torch.tensor([r + [-100] * (width - len(r)) for r in rows])
    mask = (labels != -100).long()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return float(loss.detach())


def save_model(config, tokenizer, folder: Path, *, steps: int, seed: int = 0, dtype: str = "bfloat16") -> float:
    """Build a random-weight model from `config`, train it `steps` steps, save it (in bf16 by default) beside the
    tokenizer; the last training loss."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    loss = train_briefly(model, tokenizer, steps, seed=seed) if steps else float("nan")
    model.to(getattr(torch, dtype)).save_pretrained(str(folder))
    return loss
