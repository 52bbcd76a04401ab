"""The model a run trains: the device and compute dtype, the attention kernel, and the base model
loaded as the memory plan assumed (4-bit NF4 + double quantization, 8-bit or 16-bit) and wrapped in
a PEFT LoRA adapter."""

from __future__ import annotations

import os
import warnings

from studio.core.recipe import RunConfig
from studio.core.training.distributed import fsdp_running


def weight_load_kwargs(config: RunConfig, info) -> dict:
    """Check the base model's weight files (pickles only when allowed, none damaged) and return what
    makes from_pretrained load exactly those (weights.py decides, for every place that loads)."""
    from studio.core.weights import check_base

    return check_base(info.path, info.name, allow_pickle=config.model.allow_pickle)


def device_and_dtype(config: RunConfig):
    """(torch device, compute dtype name): this process's GPU in bf16 (fp16 where bf16 is missing), or
    the CPU in fp32, unless the recipe names a dtype."""
    import torch

    wanted = config.training.compute_dtype
    if not torch.cuda.is_available():
        return torch.device("cpu"), "float32" if wanted == "auto" else wanted
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if wanted == "auto":
        wanted = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return device, wanted


def attention_for(requested: str, device) -> str:
    """flash_attention_2 needs CUDA and the flash-attn package; without them SDPA (same memory plan)."""
    if requested != "flash_attention_2":
        return requested
    import importlib.util

    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return requested
    return "sdpa"


def load_model(config: RunConfig, info, device, compute_dtype: str, *, adapter: bool = True):
    """The base model, prepared for training, with its LoRA adapter on it: a fresh one, or the one the
    recipe starts from (adapter.start_from). `adapter=False`: the prepared base alone, for a trainer
    that adds the adapter itself (TRL's DPOTrainer, given `lora_config`)."""
    from transformers import AutoModelForCausalLM

    where = str(info.path) if info.path is not None else info.hub_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(where, **_load_kwargs(config, info, device, compute_dtype))
    model = _prepared(model, config)
    if adapter:
        model = _with_adapter(model, config)
    if device.type == "cpu":
        _keep_training_layout(model)
    model.config.use_cache = False  # the cache is for generation; in training it only costs memory
    return model


def _load_kwargs(config: RunConfig, info, device, compute_dtype: str) -> dict:
    import torch
    from transformers import BitsAndBytesConfig

    dtype = getattr(torch, compute_dtype)
    t = config.training
    kwargs: dict = {"dtype": dtype, "attn_implementation": attention_for(t.attention, device),
                    "trust_remote_code": config.model.trust_remote_code}
    sharded = fsdp_running()
    if t.precision == "4bit":
        # FSDP shards only floating-point tensors: the 4-bit weights are stored in the compute dtype
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=t.quant_type,
                                                           bnb_4bit_use_double_quant=t.double_quant,
                                                           bnb_4bit_compute_dtype=dtype,
                                                           bnb_4bit_quant_storage=dtype if sharded else torch.uint8)
    elif t.precision == "8bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    if device.type == "cuda":
        # with FSDP the whole model would not fit one GPU: it is loaded into CPU memory, FSDP moves each shard
        kwargs["device_map"] = {"": "cpu"} if sharded else {"": device.index or 0}
    return {**kwargs, **weight_load_kwargs(config, info)}


def _prepared(model, config: RunConfig):
    """Frozen, with gradient checkpointing as the recipe asks."""
    from peft import prepare_model_for_kbit_training

    t = config.training
    ckpt_kwargs = {"use_reentrant": False}
    if t.precision in ("4bit", "8bit") and t.upcast_frozen:
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=t.gradient_checkpointing,
                                               gradient_checkpointing_kwargs=ckpt_kwargs)
    # What prepare_model_for_kbit_training does, without its fp32 copy of every unquantized weight
    # (embeddings and lm_head: ~4 GB for a 128k vocabulary): freeze, checkpoint, let gradients
    # reach the first layer's input. The norms still compute their statistics in fp32 internally.
    for param in model.parameters():
        param.requires_grad = False
    if t.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
        model.enable_input_require_grads()
    return model


def lora_config(config: RunConfig):
    """PEFT's LoraConfig for the recipe's [adapter] section."""
    from peft import LoraConfig

    a = config.adapter
    targets = "all-linear" if "all-linear" in a.targets else list(a.targets)
    return LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=a.dropout, target_modules=targets, use_dora=a.use_dora,
                      use_rslora=a.use_rslora, bias="none", task_type="CAUSAL_LM")


def _with_adapter(model, config: RunConfig):
    from peft import PeftModel, get_peft_model

    if config.adapter.start_from:
        from studio.core.recipe.start_from import start_adapter

        return PeftModel.from_pretrained(model, str(start_adapter(config.adapter.start_from)), is_trainable=True)
    return get_peft_model(model, lora_config(config))


def _keep_training_layout(model) -> None:
    """bitsandbytes repacks 4-bit weights for fast CPU inference the first time a layer runs in eval
    mode without grad (evaluation, samples); training then takes its gemv path, which has no backward,
    and gradients through the frozen layers go silently wrong. Keep the training layout on CPU."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "CPU"
