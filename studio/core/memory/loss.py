"""The loss's vocabulary-sized tensors: how many bytes per logit are alive at each moment of a step,
for the two ways the studio computes the loss (issue #17: "how the loss is computed" is a choice
the plan describes).

  transformers' loss (`ForCausalLMLoss`, the plain script's): the model makes every position's
    logits in the compute dtype, upcasts them to fp32 and keeps log_softmax's fp32 output for
    backward. Forward and evaluation hold about 10 bytes per logit at once (the 16-bit logits, the
    fp32 copy, the log-probabilities); the start of backward 12 (the log-probabilities, their
    incoming gradient and its result). Gemma 2's soft-capping runs on the 16-bit logits first
    (tanh keeps its output): +2 bytes.
  the studio's chunked loss (training/chunked_loss.py): the same tensors for one chunk of positions
    at a time, recomputed chunk by chunk in backward; soft-capping runs after the fp32 upcast: +4.
  lm_head kept in fp32 (the fp32 copy of prepare_model_for_kbit_training) multiplies under autocast,
    which makes a compute-dtype copy of the whole lm_head weight for the loss's matmul; training
    keeps it for backward, evaluation frees it at once.

  DPO (TRL's DPOTrainer): the model never makes the whole vocabulary's scores; TRL's fused LM head
    projects TOKEN_TILE positions × VOCAB_TILE vocabulary entries at a time into one compute-dtype
    buffer, and backward adds an fp32 gradient of the final hidden states (positions × hidden). The
    positions are the chosen and rejected sequences' (shape.tokens: twice the micro-batch). The
    reference pass makes the same tile without gradients.
  ORPO (TRL's ORPOTrainer): the model's own logits for the chosen and rejected sequences, with
    transformers' loss on them: the bytes per logit above, over both sequences.

Measured on an H100 (benchmarks/RESULTS.md, "On a GPU"): 12.3–13.1 bytes per logit at the start of
backward for transformers' loss and 12.5–12.9 for the chunked one once the lm_head copy is taken
out; 9.7–10.8 in forward and evaluation; Gemma 2 +3.4–4.0 with the chunked loss.
"""

from __future__ import annotations

from studio.core.memory.choices import Precision, TrainShape
from studio.core.models import ModelInfo

FORWARD_BYTES_PER_LOGIT = 10  # 16-bit logits + their fp32 copy + fp32 log-probabilities
BACKWARD_BYTES_PER_LOGIT = 12  # fp32 log-probabilities + their incoming gradient + its result
SOFTCAP_BYTES_PER_LOGIT = {"full": 2, "chunked": 4}  # tanh's kept output: 16-bit before the upcast, fp32 after
# transformers before 4.46: the model's forward returned fp32 logits and the loss made a shifted,
# contiguous fp32 copy of them (measured +3.9–4.9 bytes per logit in fms-acceleration's published runs).
LEGACY_LOSS_BYTES_PER_LOGIT = 4
# TRL's fused LM head (trl/kernels/chunked_logprob.py, TOKEN_CHUNK_SIZE and _CHUNKED_LOGPROB_CHUNK_SIZE):
# one [positions, vocabulary] tile of the scores at a time.
TOKEN_TILE, VOCAB_TILE = 4096, 32768


def positions(model: ModelInfo, shape: TrainShape) -> int:
    """Positions whose logits are alive at once: the chunk, or every token of the micro-batch."""
    chunk = shape.loss_chunk_tokens
    return min(chunk, shape.tokens) if chunk else shape.tokens


def _softcap(model: ModelInfo, shape: TrainShape) -> int:
    if not model.logit_softcapping:
        return 0
    return SOFTCAP_BYTES_PER_LOGIT["chunked" if shape.loss_chunk_tokens else "full"]


def lm_head_copy(model: ModelInfo, precision: Precision) -> int:
    """Autocast's compute-dtype copy of an fp32 lm_head, made for the loss's matmul."""
    upcast = precision.quantized and precision.upcast_frozen
    return model.vocab_size * model.hidden_size * precision.compute_bytes if upcast else 0


def fused_head_bytes(model: ModelInfo, shape: TrainShape, precision: Precision, moment: str) -> int:
    """DPO's loss through TRL's fused LM head at `moment`: its tile (and, with an fp32 lm_head, the
    compute-dtype copy of one tile's rows of it), plus in backward the fp32 gradient of the hidden states."""
    p = precision.compute_bytes
    tile = min(shape.tokens, TOKEN_TILE) * min(model.vocab_size, VOCAB_TILE) * p
    if precision.quantized and precision.upcast_frozen:
        tile += min(model.vocab_size, VOCAB_TILE) * model.hidden_size * p
    return tile + (4 * shape.tokens * model.hidden_size if moment == "backward" else 0)


def loss_bytes(model: ModelInfo, shape: TrainShape, precision: Precision, moment: str) -> int:
    """Bytes of the loss's vocabulary-sized tensors alive at `moment`: "forward" (training's),
    "backward" (its start, where the loss's gradient is made) or "evaluation" (no gradients)."""
    if shape.method == "dpo":
        return fused_head_bytes(model, shape, precision, moment)
    per_logit = BACKWARD_BYTES_PER_LOGIT if moment == "backward" else FORWARD_BYTES_PER_LOGIT
    per_logit += _softcap(model, shape)
    if shape.loss == "transformers<4.46" and not shape.loss_chunk_tokens:
        per_logit += LEGACY_LOSS_BYTES_PER_LOGIT
    copy = 0 if moment == "evaluation" else lm_head_copy(model, precision)
    return per_logit * positions(model, shape) * model.vocab_size + copy


def largest_block(model: ModelInfo, shape: TrainShape, precision: Precision) -> int:
    """The step's largest short-lived tensor: the loss's fp32 logits of the positions alive at once
    (DPO: the fused head's tile)."""
    if shape.method == "dpo":
        return fused_head_bytes(model, shape, precision, "forward")
    return 4 * positions(model, shape) * model.vocab_size


def describe(model: ModelInfo, shape: TrainShape) -> str:
    n = positions(model, shape)
    if shape.method == "dpo":
        return (f"TRL's fused LM head scores the chosen and rejected answers' {n:,} tokens {min(n, TOKEN_TILE):,} "
                f"at a time against {min(model.vocab_size, VOCAB_TILE):,} vocabulary entries at a time (of "
                f"{model.vocab_size:,}), never all at once")
    if shape.method == "orpo":
        return (f"ORPO's trainer makes the vocabulary scores of the chosen and rejected answers' {n:,} tokens at once "
                f"(× {model.vocab_size:,})")
    if shape.loss_chunk_tokens and n < shape.tokens:
        return f"the chunked loss makes the vocabulary scores {n:,} tokens at a time (× {model.vocab_size:,})"
    return f"transformers' loss makes the vocabulary scores of all {n:,} tokens at once (× {model.vocab_size:,})"
