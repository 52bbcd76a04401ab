"""Every architecture the GGUF export writes, proven in llama.cpp: a tiny model of each (tokenizer trained here,
random weights briefly trained so answers are confident) written as a bf16 GGUF must answer three prompts
(one German, one with digits and an emoji) token for token as transformers does, with llama.cpp splitting
each prompt, and 33 more chat prompts, into transformers' very tokens; its q8_0 quantization must load and
answer. Also: Gemma 2 without softcaps and Phi-3's long rope, Llama 3.1's rope scaling (the rope_freqs tensor),
SentencePiece-style merges in transformers' order, Phi-3's special tokens (which llama.cpp recognises by the
model's name), and the error for an architecture the export does not write."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from studio.core.errors import StudioError
from studio.core.export.to_gguf import check_gguf, reference_answers, write_gguf
from studio.core.export.to_gguf.arch import known_labels
from studio.core.export.to_gguf.llama_run import run_llama
from studio.core.export.to_gguf.quantize import quantize
from tests import gguf_models as tiny

pytestmark = pytest.mark.slow

STEPS = 60  # whole-batch training steps on the eleven conversations: loss about 0.1–0.4 (Gemma 2: 1.0), answers peaked
COMMON = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=512)


def _ids(tok) -> dict:
    return dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, vocab_size=len(tok))


def _llama(tok):
    from transformers import LlamaConfig

    return LlamaConfig(**COMMON, **_ids(tok))


def _mistral(tok):
    from transformers import MistralConfig

    return MistralConfig(**COMMON, **_ids(tok))


def _qwen2(tok):
    from transformers import Qwen2Config

    # the embedding has rows no token uses (as Qwen2.5's 152064 rows for 151665 tokens), and is tied
    return Qwen2Config(**{**COMMON, **_ids(tok), "vocab_size": len(tok) + 61}, tie_word_embeddings=True)


def _qwen3(tok):
    from transformers import Qwen3Config

    return Qwen3Config(**COMMON, **_ids(tok), head_dim=32, tie_word_embeddings=True)  # heads × head_dim > hidden, as Qwen3's


def _gemma2(tok):
    from transformers import Gemma2Config

    # a window of 8 tokens, so the sliding layers (even ones) see less than the prompt; both softcaps on (50, 30)
    return Gemma2Config(**COMMON, **_ids(tok), head_dim=16, query_pre_attn_scalar=16, sliding_window=8)


def _gemma3(tok):
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(**{**COMMON, "num_hidden_layers": 3}, **_ids(tok), head_dim=16, query_pre_attn_scalar=16,
                            sliding_window=8, layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                            rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6},
                                             "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}})


def _phi3(tok):
    from transformers import Phi3Config

    # a partial rotary factor, as Phi-4-mini's (0.75): 12 of each head's 16 values rotate
    return Phi3Config(**COMMON, **_ids(tok), rope_parameters={"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.75})


@dataclass(frozen=True)
class Case:
    tokenizer: object  # (folder) -> tokenizer, saved there
    config: object  # (tokenizer) -> config
    arch: str  # general.architecture
    present: tuple[str, ...] = ()  # tensors the file must hold
    absent: tuple[str, ...] = ()  # … and must not
    keys: tuple[tuple[str, object], ...] = ()  # metadata it must hold


CASES = {
    "llama": Case(lambda f: tiny.byte_level_tokenizer(f, tiny.LLAMA3_REGEX), _llama, "llama", present=("output.weight",),
                  keys=(("tokenizer.ggml.model", "gpt2"), ("tokenizer.ggml.pre", "llama-bpe"), ("tokenizer.ggml.add_bos_token", True))),
    "mistral": Case(lambda f: tiny.sentencepiece_tokenizer(f, "metaspace-first"), _mistral, "llama",
                    keys=(("tokenizer.ggml.model", "llama"), ("tokenizer.ggml.add_space_prefix", False))),
    "qwen2": Case(lambda f: tiny.byte_level_tokenizer(f, tiny.QWEN2_REGEX, llama3=False), _qwen2, "qwen2",
                  present=("blk.0.attn_q.bias", "blk.1.attn_v.bias"), absent=("output.weight",),
                  keys=(("tokenizer.ggml.pre", "qwen2"),)),
    "qwen3": Case(lambda f: tiny.byte_level_tokenizer(f, tiny.QWEN2_REGEX, llama3=False), _qwen3, "qwen3",
                  present=("blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight"), absent=("output.weight",),
                  keys=(("qwen3.attention.key_length", 32),)),
    "gemma2": Case(lambda f: tiny.sentencepiece_tokenizer(f, "gemma"), _gemma2, "gemma2",
                   present=("blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight"), absent=("output.weight",),
                   keys=(("gemma2.attn_logit_softcapping", 50.0), ("gemma2.final_logit_softcapping", 30.0),
                         ("gemma2.attention.sliding_window", 8), ("tokenizer.ggml.add_space_prefix", False))),
    "gemma3": Case(lambda f: tiny.sentencepiece_tokenizer(f, "gemma"), _gemma3, "gemma3",
                   present=("blk.2.attn_q_norm.weight",), absent=("output.weight",),
                   keys=(("gemma3.attention.sliding_window_pattern", [True, False, True]), ("gemma3.rope.freq_base", 1e6),
                         ("gemma3.rope.freq_base_swa", 1e4), ("gemma3.rope.scaling.factor", 8.0))),
    "phi3": Case(lambda f: tiny.sentencepiece_tokenizer(f, "phi3"), _phi3, "phi3",
                 present=("blk.0.attn_qkv.weight", "output.weight"), absent=("blk.0.ffn_gate.weight", "blk.0.attn_q.weight"),
                 keys=(("phi3.rope.dimension_count", 12), ("general.name", "tiny-model (Phi-3 tokenizer)"),
                       ("tokenizer.ggml.add_space_prefix", True))),
}


@dataclass(frozen=True)
class Exported:
    case: str
    folder: Path
    gguf: Path
    tokenizer: object
    config: object
    reference: object
    loss: float


def _build(folder: Path, case: Case, steps: int = STEPS) -> tuple[object, object, float]:
    tok = case.tokenizer(folder)
    config = case.config(tok)
    loss = tiny.save_model(config, tok, folder, steps=steps)
    return tok, config, loss


@pytest.fixture(scope="module", params=list(CASES))
def exported(request, tmp_path_factory) -> Exported:
    case = CASES[request.param]
    folder = tmp_path_factory.mktemp(f"tiny-{request.param}") / "tiny-model"
    tok, config, loss = _build(folder, case)
    out = folder.parent / "model-bf16.gguf"
    write_gguf(folder, out, sixteen="bf16", chat_template=tok.chat_template)
    reference = reference_answers(folder, tiny.PROMPTS, tok.chat_template)
    return Exported(request.param, folder, out, tok, config, reference, loss)


def _fields(path: Path) -> tuple[dict, dict]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    return ({k: f.contents() for k, f in reader.fields.items()},
            {t.name: (tuple(int(n) for n in t.shape), t.tensor_type.name) for t in reader.tensors})


def test_the_bf16_file_answers_exactly_as_transformers(exported):
    check = check_gguf(exported.gguf, "bf16", exported.reference, exact=True, decode=exported.tokenizer.decode)
    print(f"{exported.case}: training loss {exported.loss:.2f}; {check.summary()}")
    assert check.tokenizer_agrees == 3, check.differences
    assert check.identical_answers == 3 and check.passed, check.summary()


# Texts beyond the three prompts: every conversation of the training text, the other lines, and awkward ones.
MORE_TEXTS = [text for pair in tiny.CONVERSATIONS for text in pair] + [line for line in tiny.corpus().splitlines()[:4]] + [
    "  double  spaces  and a trailing one ", "tabs\tand\nnew lines\n\n", "ünïcödé ½ ∑ 🌿🌿 𝔘 Ω", "aaaa bbbb 1234567 3.14159",
    "Strawberry! Don't, can't, WON'T; it's 'quoted'.", "植物需要光和水。多肉植物", "Растениям нужен свет 🌵🌵🌵"]


def test_llama_cpp_splits_many_chat_prompts_as_transformers(exported):
    """The tokenizer alone, on 33 more prompts, rendered with the chat template as runners render them."""
    assert len(MORE_TEXTS) == 33
    tok = exported.tokenizer
    prompts = []
    for text in MORE_TEXTS:
        rendered = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        prompts.append({"ids": tok(rendered, add_special_tokens=False)["input_ids"], "text": rendered})
    got = run_llama({"do": "answer", "model": str(exported.gguf), "tokens": 1, "prompts": prompts})["answers"]
    differ = [(text, tok.convert_ids_to_tokens(p["ids"]), tok.convert_ids_to_tokens(a["tokenized"]))
              for text, p, a in zip(MORE_TEXTS, prompts, got, strict=True) if a["tokenized"] != p["ids"]]
    assert not differ, differ[:2]


def test_the_q8_0_file_loads_and_answers(exported):
    q8 = exported.gguf.with_name("model-q8_0.gguf")
    quantize(exported.gguf, q8, "q8_0")
    check = check_gguf(q8, "q8_0", exported.reference, exact=False, decode=exported.tokenizer.decode)
    print(f"{exported.case} q8_0: top-1 {check.top1_agreement:.3f}, {check.identical_answers}/3 identical")
    assert check.tokenizer_agrees == 3 and all(len(a) > 0 for a in check.answers)
    assert check.top1_agreement >= 0.9  # measured: 1.00 for every architecture here
    assert q8.stat().st_size < exported.gguf.stat().st_size


def test_the_file_holds_what_llama_cpp_reads(exported):
    case = CASES[exported.case]
    fields, tensors = _fields(exported.gguf)
    assert fields["general.architecture"] == case.arch
    assert len(fields["tokenizer.ggml.tokens"]) == exported.config.vocab_size == tensors["token_embd.weight"][0][1]
    for name in case.present:
        assert name in tensors, name
    for name in case.absent:
        assert name not in tensors, name
    for key, value in case.keys:
        got = fields.get(key)
        assert got == pytest.approx(value) if isinstance(value, float) else got == value, (key, got)
    norms = [n for n in tensors if n.endswith("norm.weight")]
    assert norms and all(tensors[n][1] == "F32" for n in norms)  # 1-D tensors stay 32-bit
    assert tensors["blk.0.ffn_down.weight"][1] == "BF16"


# ---------------------------------------------------------------- variants: no softcaps, Phi-3's long rope


def _gemma2_without_caps(tok):
    from transformers import Gemma2Config

    return Gemma2Config(**COMMON, **_ids(tok), head_dim=16, query_pre_attn_scalar=16, sliding_window=8,
                        attn_logit_softcapping=None, final_logit_softcapping=None)


def _phi3_longrope(tok):
    from transformers import Phi3Config

    # Phi-3 mini 128k's kind of rope: factors per frequency, short ones within the original 4096 positions
    return Phi3Config(**{**COMMON, "max_position_embeddings": 131072}, **_ids(tok), original_max_position_embeddings=4096,
                      rope_parameters={"rope_type": "longrope", "rope_theta": 1e4, "original_max_position_embeddings": 4096,
                                       "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.0, 4.0],
                                       "long_factor": [1.0, 1.5, 2.5, 4.0, 8.0, 12.0, 16.0, 24.0]})


VARIANTS = {
    # llama.cpp's Gemma 2 always caps logits: "no cap" must be written as a cap too large to matter (0 gave NaN)
    "gemma2-without-softcaps": Case(lambda f: tiny.sentencepiece_tokenizer(f, "gemma"), _gemma2_without_caps, "gemma2",
                                    keys=(("gemma2.attn_logit_softcapping", 1e4), ("gemma2.final_logit_softcapping", 1e4))),
    "phi3-longrope": Case(lambda f: tiny.sentencepiece_tokenizer(f, "phi3"), _phi3_longrope, "phi3",
                          present=("rope_factors_long.weight", "rope_factors_short.weight"),
                          keys=(("phi3.rope.scaling.original_context_length", 4096),
                                ("phi3.rope.scaling.attn_factor", math.sqrt(1 + math.log(32) / math.log(4096))))),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants_answer_exactly_as_transformers(tmp_path, variant):
    case = VARIANTS[variant]
    folder = tmp_path / "tiny-model"
    tok, _, _ = _build(folder, case)
    out = tmp_path / "model.gguf"
    write_gguf(folder, out, chat_template=tok.chat_template)
    fields, tensors = _fields(out)
    assert fields["general.architecture"] == case.arch and all(name in tensors for name in case.present)
    for key, value in case.keys:
        assert fields.get(key) == pytest.approx(value, rel=1e-6), key
    check = check_gguf(out, "bf16", reference_answers(folder, tiny.PROMPTS, tok.chat_template), exact=True, decode=tok.decode)
    assert check.tokenizer_agrees == 3 and check.identical_answers == 3, check.summary()


# ---------------------------------------------------------------- Llama 3.1's rope scaling


def _llama3_factors(theta: float, dims: int, factor: float, low: float, high: float, original: int) -> list[float]:
    """What rope_freqs must hold: per frequency, how much Llama 3.1 slows it (1 for short wavelengths, `factor`
    for long ones, a smooth step between)."""
    values = []
    for i in range(dims // 2):
        wavelength = 2 * math.pi / theta ** (-2 * i / dims)
        if wavelength < original / high:
            values.append(1.0)
        elif wavelength > original / low:
            values.append(factor)
        else:
            s = (original / wavelength - low) / (high - low)
            values.append(1 / ((1 - s) / factor + s))
    return values


def test_llama3_rope_scaling_travels_as_rope_freqs_and_answers_as_transformers(tmp_path):
    from transformers import LlamaConfig

    rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64}  # 64 < 512: wavelengths over 64 positions are slowed 8×
    case = Case(lambda f: tiny.byte_level_tokenizer(f, tiny.LLAMA3_REGEX),
                lambda tok: LlamaConfig(**COMMON, **_ids(tok), rope_parameters=rope), "llama")
    folder = tmp_path / "llama31"
    tok, config, _ = _build(folder, case)
    out = tmp_path / "llama31.gguf"
    write_gguf(folder, out, chat_template=tok.chat_template)
    fields, tensors = _fields(out)
    assert tensors["rope_freqs.weight"] == ((8,), "F32") and not any(k.startswith("llama.rope.scaling") for k in fields)

    import gguf

    stored = next(t for t in gguf.GGUFReader(str(out)).tensors if t.name == "rope_freqs.weight").data.tolist()
    expected = _llama3_factors(10000.0, 16, 8.0, 1.0, 4.0, 64)
    assert stored == pytest.approx(expected, rel=1e-5)
    assert expected[0] == 1.0 and expected[-1] == 8.0 and 1.0 < expected[2] < 8.0  # all three regimes occur

    reference = reference_answers(folder, tiny.PROMPTS, tok.chat_template)
    check = check_gguf(out, "bf16", reference, exact=True, decode=tok.decode)
    assert check.tokenizer_agrees == 3 and check.identical_answers == 3, check.summary()
    # the scaling matters: without it, transformers itself answers otherwise
    plain = tmp_path / "unscaled"
    shutil.copytree(folder, plain)
    data = json.loads((plain / "config.json").read_text())
    data["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0}
    (plain / "config.json").write_text(json.dumps(data))
    assert reference_answers(plain, tiny.PROMPTS, tok.chat_template).answer_ids != reference.answer_ids


# ---------------------------------------------------------------- SentencePiece-style merges


def test_sentencepiece_style_pieces_join_in_transformers_order(tmp_path):
    """llama.cpp joins the neighbouring pair whose piece scores highest; transformers the pair whose merge ranks
    first. With "es" ranked before "▁l" and "▁le", transformers splits " les" into "▁l" "es"; llama.cpp, given
    equal scores, joined from the left: "▁le" "s"."""
    from transformers import LlamaConfig

    folder = tmp_path / "pieces"
    tok = tiny.sentencepiece_tokenizer(folder, "llama2", pieces=["\u2581", "l", "e", "s", "es", "\u2581l", "\u2581le"])
    tiny.save_model(LlamaConfig(**{**COMMON, "num_hidden_layers": 1}, **_ids(tok)), tok, folder, steps=0)
    write_gguf(folder, tmp_path / "pieces.gguf", chat_template=tok.chat_template)
    text = "<s>les les"
    assert tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"]) == ["<s>", "\u2581l", "es", "\u2581l", "es"]
    assert _tokenized(tmp_path / "pieces.gguf", tok, text) == tok(text, add_special_tokens=False)["input_ids"]


# ---------------------------------------------------------------- Phi-3's special tokens and the model's name


def _tokenized(path: Path, tok, text: str) -> list[int]:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return run_llama({"do": "answer", "model": str(path), "tokens": 1, "prompts": [{"ids": ids, "text": text}]})["answers"][0]["tokenized"]


def test_special_tokens_swallow_whitespace_in_llama_cpp_only_when_the_tokenizer_says_so(tmp_path):
    """llama.cpp treats special tokens as Phi-3's (whitespace after them dropped) when general.name says phi3; so
    a Phi-3 tokenizer gets "Phi-3" into the name, and another model named phi3 loses it (else llama.cpp stops
    loading: it looks up Phi-3's own tokens)."""
    phi = tmp_path / "plant-helper"
    tok, _, _ = _build(phi, CASES["phi3"], steps=0)
    text = tok.apply_chat_template([{"role": "user", "content": "Hello there"}], tokenize=False, add_generation_prompt=True)
    assert "\n" in text and "\n" not in tok.decode(tok(text, add_special_tokens=False)["input_ids"])
    write_gguf(phi, tmp_path / "phi.gguf", chat_template=tok.chat_template, name="Plant helper")
    assert _fields(tmp_path / "phi.gguf")[0]["general.name"] == "Plant helper (Phi-3 tokenizer)"
    assert _tokenized(tmp_path / "phi.gguf", tok, text) == tok(text, add_special_tokens=False)["input_ids"]

    other = tmp_path / "mistral"
    tok, _, _ = _build(other, CASES["mistral"], steps=0)
    write_gguf(other, tmp_path / "other.gguf", chat_template=tok.chat_template, name="Mistral-vs-Phi3 try")
    assert _fields(tmp_path / "other.gguf")[0]["general.name"] == "Mistral-vs-Phi 3 try"
    text = tok.apply_chat_template([{"role": "user", "content": "Hello there"}], tokenize=False, add_generation_prompt=True)
    assert _tokenized(tmp_path / "other.gguf", tok, text) == tok(text, add_special_tokens=False)["input_ids"]


# ---------------------------------------------------------------- architectures the export does not write


@pytest.mark.parametrize("model_type", ["gpt2", "plantformer"])
def test_an_unknown_architecture_is_a_studio_error_naming_the_known_ones(tmp_path, model_type):
    if model_type == "gpt2":
        from transformers import GPT2Config

        GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, bos_token_id=0, eos_token_id=0).save_pretrained(tmp_path)
    else:  # a model type transformers itself does not know
        (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": ["PlantformerForCausalLM"]}))
    with pytest.raises(StudioError) as raised:
        write_gguf(tmp_path, tmp_path / "x.gguf")
    assert f"'{model_type}'" in raised.value.message and raised.value.topic == "model"
    assert known_labels() in raised.value.advice
    for label in ("Llama", "Mistral", "Qwen2", "Qwen3", "Gemma 2", "Gemma 3", "Phi-3"):
        assert label in raised.value.advice
    assert not (tmp_path / "x.gguf").exists()
