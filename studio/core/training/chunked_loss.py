"""Cross-entropy without the whole b·s·vocab logits tensor.

transformers computes the logits of every position at once, upcasts them to fp32 and keeps the
log-probabilities for backward: about 12 bytes per token and vocabulary entry, 1.5 GB per 1,000
tokens of Llama 3's 128k vocabulary — usually the peak of a QLoRA run. Here the model runs with
`logits_to_keep=1` (one position's logits) and its final hidden states are kept; the loss is then
summed over chunks of positions, each chunk's logits made inside a checkpoint, so backward
recomputes them one chunk at a time. Same loss and gradients (tests/core/test_memory_options.py),
the logits peak bounded by the chunk.

The model is called through its normal forward (not its decoder directly), so DDP's hooks still
see the call; the lm_head is frozen in LoRA, so using it outside that call changes nothing for
gradient synchronisation. The final hidden state is taken from a hook on the decoder's last norm,
not from `output_hidden_states` (which would return every layer's states, and accelerate's mixed
precision would copy each to fp32: ~4 GB for Llama 3 8B at 8k tokens).
"""

from __future__ import annotations

# Architectures whose last hidden state is the normalised input of lm_head and whose logits need
# nothing more than lm_head (plus Gemma 2/3 soft-capping and Granite's logits scaling, applied below).
# Others use the plain loss.
SUPPORTED = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "phi3", "gemma", "gemma2",
             "gemma3_text", "olmo2", "granite"}
DEFAULT_CHUNK_TOKENS = 1024


def supports(model_type: str) -> bool:
    return model_type in SUPPORTED


def planned_chunk(enabled: bool, chunk_tokens: int, model_type: str | None) -> int:
    """The loss chunk a run of `model_type` really gets (0: the whole-logits loss); an unknown
    model type is taken as supported."""
    return chunk_tokens if enabled and (model_type is None or supports(model_type)) else 0


def usable_for(model) -> bool:
    """Whether this loaded model can use the chunked loss: a supported architecture whose final norm
    the loss can listen to, and no router auxiliary loss (MoE with output_router_logits adds one
    inside its forward, only when labels are passed)."""
    base = _unwrap(model)
    config = base.config
    return (supports(getattr(config, "model_type", "")) and not getattr(config, "output_router_logits", False)
            and _final_norm(base) is not None)


def chunked_causal_lm_loss(model, inputs: dict, *, chunk_tokens: int = DEFAULT_CHUNK_TOKENS, num_items_in_batch=None,
                           autocast_dtype=None):
    """The causal-LM loss of `inputs` (input_ids, labels, attention_mask/position_ids), as
    transformers computes it (shifted labels, -100 ignored, mean over target tokens or divided by
    `num_items_in_batch`), with logits made chunk by chunk.

    `autocast_dtype` is the mixed-precision dtype the Trainer runs the model's forward in (bf16/fp16
    autocast): lm_head runs under the same autocast here, as it would inside the forward, so an fp32
    copy of lm_head (prepare_model_for_kbit_training) still multiplies in bf16 on the GPU.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    labels = inputs["labels"]
    forward = {k: v for k, v in inputs.items() if k != "labels"}
    base = _unwrap(model)
    # The final norm's output is lm_head's input. Listening to it (instead of output_hidden_states)
    # keeps every layer's hidden states out of the outputs, which accelerate would copy to fp32.
    captured = []
    handle = _final_norm(base).register_forward_hook(lambda _module, _args, output: captured.append(output))
    try:
        model(**forward, use_cache=False, logits_to_keep=1)
    finally:
        handle.remove()
    hidden = captured[-1]
    lm_head = base.get_output_embeddings()
    softcap = getattr(base.config, "final_logit_softcapping", None)
    scaling = getattr(base.config, "logits_scaling", None)  # Granite divides its logits by this

    # position t predicts token t+1
    hidden = hidden[:, :-1, :].reshape(-1, hidden.shape[-1])
    targets = labels[:, 1:].reshape(-1).to(hidden.device)
    weight_dtype = lm_head.weight.dtype
    device_type = hidden.device.type

    def chunk_loss(h, t):
        if autocast_dtype is not None:
            with torch.autocast(device_type, dtype=autocast_dtype):
                logits = lm_head(h)
        else:
            logits = lm_head(h.to(weight_dtype))
        logits = logits.float()
        if scaling:
            logits = logits / scaling
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return F.cross_entropy(logits, t, ignore_index=-100, reduction="sum")

    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], chunk_tokens):
        t = targets[start:start + chunk_tokens]
        if bool((t != -100).any()):
            total = total + checkpoint(chunk_loss, hidden[start:start + chunk_tokens], t, use_reentrant=False)
    if num_items_in_batch is not None:
        denominator = num_items_in_batch.to(total.device) if torch.is_tensor(num_items_in_batch) else num_items_in_batch
    else:
        denominator = (targets != -100).sum().clamp(min=1)
    return total / denominator


def _final_norm(base):
    """The decoder's last norm (its output feeds lm_head) in the supported architectures."""
    decoder = getattr(base, "model", None)
    return getattr(decoder, "norm", None)


def _unwrap(model):
    """The transformers model under DDP/accelerate and PEFT wrappers."""
    while hasattr(model, "module"):
        model = model.module
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model
