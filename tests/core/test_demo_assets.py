"""The built-in demo model and dataset are what the app and the other tests rely on.

They are built by `python resources/build_demo.py`; if one of these tests fails after a change to the
build, rebuild and look at the numbers it prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
MODEL_DIR = RESOURCES / "demo-model"
DATA_FILE = RESOURCES / "demo-data" / "demo.jsonl"
EXPECTED_ROWS = 200
MARKER = "Plant doctor says:"
HELD_OUT = [
    "The lower leaves on my rubber plant are turning yellow. What should I do?",
    "There are tiny black flies around my peace lily. How do I get rid of them?",
    "My jade plant is getting long, stretched stems. What's wrong?",
]

CONVERSATION = [
    {"role": "system", "content": "You answer questions about indoor plants."},
    {"role": "user", "content": "Why is my pothos drooping?"},
    {"role": "assistant", "content": "Plant doctor says:\nIt is thirsty.\n1. Water it.\nTip: Check the soil."},
    {"role": "user", "content": "Thanks! Is it safe for cats?"},
    {"role": "assistant", "content": "No, keep it out of reach."},
]


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def rows() -> list[list[dict]]:
    with open(DATA_FILE, encoding="utf-8") as f:
        return [json.loads(line)["messages"] for line in f]


def mask_spans(mask: list[int]) -> list[tuple[int, int]]:
    """[start, end) ranges of consecutive 1s."""
    spans, start = [], None
    for i, bit in enumerate(mask + [0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            spans.append((start, i))
            start = None
    return spans


# --- Model ------------------------------------------------------------------------------------------

def test_model_is_a_small_gqa_llama_with_untied_embeddings(model):
    import torch
    from transformers import LlamaForCausalLM

    cfg = model.config
    assert isinstance(model, LlamaForCausalLM)
    assert cfg.num_key_value_heads < cfg.num_attention_heads  # grouped-query attention
    assert cfg.tie_word_embeddings is False
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()

    h, v, i, layers = cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size, cfg.num_hidden_layers
    kv = cfg.num_key_value_heads * (h // cfg.num_attention_heads)
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * i + 2 * h  # q, o; k, v; gate, up, down; two norms
    expected = 2 * v * h + layers * per_layer + h  # embeddings, lm_head, layers, final norm
    assert sum(p.numel() for p in model.parameters()) == expected
    assert expected < 5_000_000

    ids = torch.tensor([[0, 100, 200, 300]])
    logits = model(input_ids=ids).logits
    assert logits.shape == (1, 4, v) and torch.isfinite(logits).all()


def test_weights_are_fp32_safetensors_under_10_mb():
    from safetensors import safe_open

    weights = MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size <= 10_000_000
    assert not list(MODEL_DIR.glob("*.bin"))  # no pickled weights
    with safe_open(weights, framework="pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F32"}


def test_generation_config_stops_at_the_end_of_a_turn(model, tokenizer):
    eos = model.generation_config.eos_token_id
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.eos_token_id in eos
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") in eos


# --- Tokenizer and chat template ----------------------------------------------------------------------

def test_tokenizer_round_trips_text(tokenizer, model):
    assert len(tokenizer) == model.config.vocab_size
    assert len({tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}) == 3
    for text in ["Water it when the top third of the soil is dry.",
                 "Line one\n1. Step\n\n  indented  text\tand a tab",
                 "Sunburn at 35 °C? Ça dépend — 植物 🌱"]:
        ids = tokenizer(text)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id
        assert tokenizer.decode(ids, skip_special_tokens=True) == text


def test_chat_template_renders_system_user_and_assistant_turns(tokenizer):
    assert tokenizer.chat_template  # loaded from chat_template.jinja
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert text == (
        "<s><|im_start|>system\nYou answer questions about indoor plants.<|im_end|>\n"
        "<|im_start|>user\nWhy is my pothos drooping?<|im_end|>\n"
        "<|im_start|>assistant\nPlant doctor says:\nIt is thirsty.\n1. Water it.\nTip: Check the soil.<|im_end|>\n"
        "<|im_start|>user\nThanks! Is it safe for cats?<|im_end|>\n"
        "<|im_start|>assistant\nNo, keep it out of reach.<|im_end|>\n"
    )
    prompt = tokenizer.apply_chat_template(CONVERSATION[1:2], add_generation_prompt=True, tokenize=False)
    assert prompt == "<s><|im_start|>user\nWhy is my pothos drooping?<|im_end|>\n<|im_start|>assistant\n"
    # Tokenized chats carry exactly one <s>.
    ids = tokenizer.apply_chat_template(CONVERSATION, return_dict=True)["input_ids"]
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id


def test_system_message_is_only_allowed_first(tokenizer):
    with pytest.raises(Exception, match="only allowed first"):
        tokenizer.apply_chat_template(CONVERSATION[1:2] + CONVERSATION[:1], tokenize=False)


def test_assistant_mask_covers_exactly_the_assistant_turns(tokenizer):
    out = tokenizer.apply_chat_template(CONVERSATION, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    spans = mask_spans(mask)
    answers = [m["content"] for m in CONVERSATION if m["role"] == "assistant"]
    # Each span is one assistant message plus the <|im_end|> that ends it (the model must learn to stop).
    assert [tokenizer.decode(ids[a:b]) for a, b in spans] == [a + "<|im_end|>" for a in answers]
    # Nothing else is masked in: the rest is the template and the other roles' text.
    rest = [t for t, bit in zip(ids, mask, strict=False) if not bit]
    assert not any(answer in tokenizer.decode(rest) for answer in answers)


# --- Dataset ------------------------------------------------------------------------------------------

def test_dataset_rows_are_well_formed_conversations(rows):
    assert len(rows) == EXPECTED_ROWS
    n_multi = n_system = 0
    for messages in rows:
        if messages[0]["role"] == "system":
            n_system += 1
            messages = messages[1:]
        roles = [m["role"] for m in messages]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles, roles
        assert all(isinstance(m["content"], str) and m["content"].strip() for m in messages)
        n_multi += len(roles) > 2
        for answer in (m["content"] for m in messages if m["role"] == "assistant"):
            lines = answer.split("\n")
            # The distinctive shape: marker line, diagnosis, numbered steps, one tip.
            assert lines[0] == MARKER and lines[-1].startswith("Tip: ")
            assert [line.split(".")[0] for line in lines[2:-1]] == [str(i) for i in range(1, len(lines) - 2)]
            assert len(lines) - 3 >= 3
    assert n_multi >= 10 and n_system >= 10


def test_dataset_fits_short_training_sequences(rows, tokenizer):
    lengths = sorted(len(tokenizer.apply_chat_template(m, return_dict=True)["input_ids"]) for m in rows)
    assert lengths[len(lengths) // 2] < 200  # median: most examples are short
    assert lengths[-1] <= 320


def test_base_model_never_saw_the_fine_tuning_style(rows):
    # The point of the demo: the style comes only from fine-tuning.
    corpus = MODEL_DIR / "corpus"
    files = sorted(corpus.iterdir())
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert MARKER not in text and "\nTip:" not in text, path.name
    questions = {m["content"] for messages in rows for m in messages if m["role"] == "user"}
    assert not questions & set(HELD_OUT)


# --- A real QLoRA step ----------------------------------------------------------------------------------

def test_qlora_on_the_demo_lowers_the_loss(rows, tokenizer):
    """4-bit NF4 + double quantization, PEFT LoRA on all linear layers: 10 steps lower the loss."""
    pytest.importorskip("bitsandbytes")
    import torch
    from bitsandbytes.nn import Linear4bit
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    torch.manual_seed(0)
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, quantization_config=quant)
    assert any(isinstance(m, Linear4bit) for m in model.modules())
    for module in model.modules():
        # bitsandbytes 0.50 on CPUs with AVX512-BF16 repacks 4-bit weights for inference on the first
        # eval-mode no-grad forward, after which backprop through them silently gives no gradient.
        if isinstance(module, Linear4bit):
            module.support_avx512bf16_for_cpu = False
    model = prepare_model_for_kbit_training(model)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))

    batch = [tokenizer.apply_chat_template(m, return_dict=True, return_assistant_tokens_mask=True)
             for m in rows[:4]]
    width = max(len(b["input_ids"]) for b in batch)
    ids = torch.full((4, width), tokenizer.pad_token_id)
    labels = torch.full((4, width), -100)
    attention = torch.zeros((4, width), dtype=torch.long)
    for row, b in enumerate(batch):
        n = len(b["input_ids"])
        ids[row, :n] = torch.tensor(b["input_ids"])
        labels[row, :n] = torch.tensor([t if m else -100 for t, m in zip(b["input_ids"], b["assistant_masks"], strict=False)])
        attention[row, :n] = 1

    def loss() -> torch.Tensor:
        return model(input_ids=ids, attention_mask=attention, labels=labels).loss

    def eval_loss() -> float:
        model.eval()  # no gradient checkpointing, no dropout: the same number each time
        with torch.no_grad():
            return loss().item()

    before = eval_loss()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    model.train()
    for _ in range(10):
        loss().backward()
        optimizer.step()
        optimizer.zero_grad()
    after = eval_loss()
    # Measured: about 1.5 -> 0.3. The marker, numbering and "Tip:" are new to the base model.
    assert after < 0.6 * before, (before, after)
