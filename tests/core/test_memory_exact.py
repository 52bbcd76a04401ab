"""The planner's weight, adapter, gradient and optimizer terms against what bitsandbytes, PEFT and
torch really allocate on this CPU, for tiny models of real architectures."""

from __future__ import annotations

import pytest
import torch

from studio.core.memory import AdapterSpec, Precision, TrainShape, plan
from studio.core.models import resolve_model
from tests.tiny_models import save_tiny_model

bnb = pytest.importorskip("bitsandbytes")


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind `tensors` (shared and tied tensors counted once)."""
    seen = {}
    for t in tensors:
        if t is None or not torch.is_tensor(t):
            continue
        s = t.untyped_storage()
        seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


def quant_state_tensors(model):
    for module in model.modules():
        weight = getattr(module, "weight", None)
        state = getattr(weight, "quant_state", None)
        if state is not None:  # 4-bit: packed weights and everything needed to dequantize them
            yield weight.data
            yield state.absmax
            yield state.code
            if state.nested:
                yield state.offset
                yield state.state2.absmax
                yield state.state2.code
        elif isinstance(module, bnb.nn.Linear8bitLt):
            yield module.weight.data
            yield module.weight.SCB


def load_quantized(folder, mode: str, quant_type="nf4", double_quant=True):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if mode == "4bit":
        qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                                bnb_4bit_use_double_quant=double_quant, bnb_4bit_compute_dtype=torch.bfloat16)
    else:
        qc = BitsAndBytesConfig(load_in_8bit=True)
    return AutoModelForCausalLM.from_pretrained(folder, quantization_config=qc, dtype=torch.bfloat16)


@pytest.fixture(scope="module", params=["llama", "qwen2", "phi3"])
def tiny(request, tmp_path_factory):
    folder = save_tiny_model(tmp_path_factory.mktemp(request.param), request.param)
    return folder, resolve_model(str(folder))


def test_exact_parameter_counts_match_an_instantiated_model(tiny):
    from transformers import AutoModelForCausalLM

    folder, info = tiny
    real = AutoModelForCausalLM.from_pretrained(folder)
    assert info.total_params == sum(p.numel() for p in real.parameters())
    linears = [m for n, m in real.named_modules() if isinstance(m, torch.nn.Linear) and m is not real.get_output_embeddings()]
    assert info.quantizable_params == sum(m.weight.numel() for m in linears)
    assert info.tied_embeddings == (real.get_output_embeddings().weight is real.get_input_embeddings().weight)
    assert info.embedding_params + info.lm_head_params + info.other_params + info.quantizable_params == info.total_params


@pytest.mark.parametrize("quant_type,double_quant", [("nf4", True), ("nf4", False), ("fp4", True)])
def test_quantized_weights_match_bitsandbytes(tiny, quant_type, double_quant):
    folder, info = tiny
    model = load_quantized(folder, "4bit", quant_type, double_quant)
    # the model bitsandbytes built quantizes exactly the layers the planner counts
    quantized = {n for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)}
    assert quantized == {layer.name for layer in info.linear_layers}
    measured = storage_bytes(quant_state_tensors(model))
    planned = plan(info, AdapterSpec(), TrainShape(), Precision("4bit", quant_type, double_quant)).bytes_of("quantized_weights")
    assert planned == pytest.approx(measured, rel=0.01)


def test_int8_weights_match_bitsandbytes(tiny):
    folder, info = tiny
    model = load_quantized(folder, "8bit")
    measured = storage_bytes(quant_state_tensors(model))
    planned = plan(info, AdapterSpec(), TrainShape(), Precision("8bit")).bytes_of("quantized_weights")
    assert planned == pytest.approx(measured, rel=0.01)


def _prepared_peft_model(folder, adapter: AdapterSpec):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = load_quantized(folder, "4bit")
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    config = LoraConfig(r=adapter.rank, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                        target_modules="all-linear" if "all-linear" in adapter.targets else list(adapter.targets),
                        use_dora=adapter.use_dora, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


@pytest.mark.parametrize("adapter", [AdapterSpec(rank=8), AdapterSpec(rank=4, targets=("q_proj", "v_proj")),
                                     AdapterSpec(rank=8, use_dora=True)], ids=["r8-all", "r4-qv", "dora"])
def test_unquantized_lora_gradient_and_optimizer_bytes(tiny, adapter):
    folder, info = tiny
    if info.model_type == "phi3" and "q_proj" in adapter.targets:
        pytest.skip("phi3 fuses q/k/v into qkv_proj")
    model = _prepared_peft_model(folder, adapter)
    p = plan(info, adapter, TrainShape(optimizer="adamw"), Precision("4bit"))

    frozen_float = [t for t in model.parameters() if not t.requires_grad and t.__class__.__name__ != "Params4bit"]
    assert p.bytes_of("unquantized_weights") == pytest.approx(storage_bytes(frozen_float), rel=0.01)
    assert all(t.dtype == torch.float32 for t in frozen_float)  # prepare_model_for_kbit_training upcast them

    trainable = [t for t in model.parameters() if t.requires_grad]
    assert p.trainable_params == sum(t.numel() for t in trainable)
    assert p.bytes_of("lora_weights") == pytest.approx(storage_bytes(trainable), rel=0.01)

    ids = torch.randint(0, info.vocab_size, (2, 16))
    model(input_ids=ids, labels=ids).loss.backward()
    assert p.bytes_of("lora_gradients") == pytest.approx(storage_bytes(t.grad for t in trainable), rel=0.01)

    for name, optimizer in (("adamw", torch.optim.AdamW(trainable, lr=1e-4)),
                            ("adamw-8bit", bnb.optim.AdamW8bit(trainable, lr=1e-4))):
        optimizer.step()
        states = [v for s in optimizer.state.values() for k, v in s.items() if torch.is_tensor(v) and v.numel() > 1]
        planned = plan(info, adapter, TrainShape(optimizer=name), Precision("4bit")).bytes_of("optimizer_states")
        assert planned == pytest.approx(storage_bytes(states), rel=0.01), name


def test_8bit_optimizer_blocks_large_tensors(tmp_path):
    """A rank large enough for 8-bit states (≥ 4096 values per tensor) on the same tiny model."""
    folder = save_tiny_model(tmp_path / "m", "llama")
    info = resolve_model(str(folder))
    adapter = AdapterSpec(rank=64)
    model = _prepared_peft_model(folder, adapter)
    trainable = [t for t in model.parameters() if t.requires_grad]
    assert any(t.numel() >= 4096 for t in trainable)
    ids = torch.randint(0, info.vocab_size, (1, 8))
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer = bnb.optim.PagedAdamW8bit(trainable, lr=1e-4)
    optimizer.step()
    states = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.numel() > 1]
    planned = plan(info, adapter, TrainShape(optimizer="paged-adamw-8bit"), Precision("4bit")).bytes_of("optimizer_states")
    assert planned == pytest.approx(storage_bytes(states), rel=0.01)
