"""The user's choices the planner reads: the LoRA adapter (`AdapterSpec`), how data flows through a
step (`TrainShape`) and how the base model is held (`Precision`), each checked as it is made."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.errors import StudioError

PRECISIONS = ("4bit", "8bit", "16bit", "full", "full-bf16")  # full: fp32 master weights; full-bf16: pure bf16
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit")
COMPUTE_DTYPES = {"bfloat16": 2, "float16": 2, "float32": 4}
ATTENTION = ("sdpa", "eager", "flash_attention_2")  # flash keeps no s×s matrix either: planned as sdpa
# How transformers computes the loss when it is not chunked: since 4.46 the loss upcasts the logits
# itself; before, the model returned fp32 logits and the loss shifted them into one more fp32 copy.
LOSSES = ("transformers", "transformers<4.46")
# How the adapter learns: sft imitates the answers; dpo and orpo (preference tuning, TRL's trainers)
# put a chosen and a rejected answer through the model together, so a micro-batch holds two sequences
# per example. DPO also runs a reference forward pass (the base: the adapter switched off) without
# gradients; ORPO needs none.
METHODS = ("sft", "dpo", "orpo")
# How several GPUs share a run: ddp copies the whole model to every GPU (faster, when it fits one card);
# fsdp shards the weights, the adapter's gradients and the optimizer's states across them (FSDP-QLoRA),
# so a model bigger than one card trains.
STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class AdapterSpec:
    """The LoRA adapter: how much the model can change (rank) and how strongly (alpha / rank)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: tuple[str, ...] = ("all-linear",)
    use_dora: bool = False
    use_rslora: bool = False
    saved: bool = False  # an earlier run's adapter trained further (adapter.start_from): its shape cannot change

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise StudioError(f"LoRA rank must be at least 1 (got {self.rank}).", "Use --rank 8, 16 or 32.")
        if not 0 <= self.dropout < 1:
            raise StudioError(f"LoRA dropout must be in [0, 1) (got {self.dropout}).", "Use --dropout 0.05.")
        if not self.targets:
            raise StudioError("No LoRA target modules were chosen.", "Use --targets all-linear, or e.g. q_proj,v_proj.")


@dataclass(frozen=True)
class TrainShape:
    """How the data flows through one optimizer step."""

    batch_size: int = 1  # micro-batch: sequences per forward pass
    seq_len: int = 2048
    grad_accum: int = 8
    gradient_checkpointing: bool = True
    optimizer: str = "paged-adamw-8bit"
    attention: str = "sdpa"
    loss_chunk_tokens: int = 0  # 0: transformers' loss over all logits at once; N: the chunked loss
    packing: bool = False  # padding-free: the worst micro-batch is unchanged, the average one smaller
    # (without flash attention a packed micro-batch also needs a batch·seq square mask)
    loss: str = "transformers"  # LOSSES: which transformers computes the unchunked loss (the studio: today's)
    method: str = "sft"  # METHODS
    reference_adapter: bool = False  # DPO going on from an earlier adapter: TRL keeps a frozen copy as the reference
    gpus: int = 1  # GPUs training together (the plan is per GPU)
    strategy: str = "ddp"  # STRATEGIES: how they share the run

    def __post_init__(self) -> None:
        if self.loss_chunk_tokens < 0:
            raise StudioError(f"The loss chunk must be 0 or more tokens (got {self.loss_chunk_tokens}).", "Use 0 (off) or e.g. 1024.")
        if self.batch_size < 1 or self.seq_len < 1 or self.grad_accum < 1:
            raise StudioError(
                f"Batch size, sequence length and gradient accumulation must be positive "
                f"(got {self.batch_size}, {self.seq_len}, {self.grad_accum}).",
                "Use e.g. --batch-size 1 --seq-len 2048 --grad-accum 8.",
            )
        if self.optimizer not in OPTIMIZERS:
            raise StudioError(f"Unknown optimizer '{self.optimizer}'.", f"Choose one of: {', '.join(OPTIMIZERS)}.")
        if self.loss not in LOSSES:
            raise StudioError(f"Unknown loss '{self.loss}'.", f"Choose one of: {', '.join(LOSSES)}.")
        if self.gpus < 1:
            raise StudioError(f"The GPU count must be at least 1 (got {self.gpus}).", "Use --gpus 1, 2, 4 ...")
        if self.strategy not in STRATEGIES:
            raise StudioError(f"Unknown strategy '{self.strategy}'.", f"Choose one of: {', '.join(STRATEGIES)}.")
        if self.method not in METHODS:
            raise StudioError(f"Unknown training method '{self.method}'.", f"Choose one of: {', '.join(METHODS)}.")
        if self.attention not in ATTENTION:
            raise StudioError(f"Unknown attention '{self.attention}'.", f"Choose one of: {', '.join(ATTENTION)}.")

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.grad_accum

    @property
    def sharded(self) -> bool:
        """FSDP across several GPUs: each holds a share of the weights, gradients and optimizer states."""
        return self.strategy == "fsdp" and self.gpus > 1

    @property
    def preference(self) -> bool:
        """A preference method: a chosen and a rejected sequence for every example."""
        return self.method in ("dpo", "orpo")

    @property
    def sequences(self) -> int:
        """Sequences in one forward pass: the micro-batch, twice over for a preference method."""
        return self.batch_size * (2 if self.preference else 1)

    @property
    def tokens(self) -> int:
        return self.sequences * self.seq_len

    def method_words(self) -> str:
        """The method's memory in words ("" for supervised training)."""
        if self.method == "dpo":
            reference = "a frozen copy of the adapter it starts from" if self.reference_adapter else "the base with the adapter off"
            return (f"DPO: every example is a chosen and a rejected sequence, scored again by the reference "
                    f"({reference}; no second copy of the model)")
        if self.method == "orpo":
            return "ORPO: every example is a chosen and a rejected sequence; no reference pass"
        return ""

    def batch_words(self) -> str:
        """"2×2048 tokens", or "2×2048 tokens (chosen and rejected answers)"."""
        return f"{self.sequences}×{self.seq_len} tokens" + (" (chosen and rejected answers)" if self.preference else "")


@dataclass(frozen=True)
class Precision:
    """How the base model is held: 4-bit (QLoRA), 8-bit, 16-bit LoRA, or 16-bit full fine-tuning."""

    mode: str = "4bit"
    quant_type: str = "nf4"  # 4-bit only: "nf4" or "fp4"
    double_quant: bool = True  # 4-bit only: quantize the absmax values too
    compute_dtype: str = "bfloat16"  # bf16 where the GPU supports it, else float16; float32 on CPU
    upcast_frozen: bool = True  # 4/8-bit: prepare_model_for_kbit_training's fp32 copy of embeddings, norms, lm_head
    # 4/8-bit without that copy, as TRL's SFTTrainer leaves a model with bf16=True: norms in fp32 (so
    # an fp32 residual stream), embeddings and lm_head back in the compute dtype. Off: the studio's
    # own `upcast_frozen = false`, everything in the compute dtype.
    norms_fp32: bool = False

    def __post_init__(self) -> None:
        if self.mode not in PRECISIONS:
            raise StudioError(f"Unknown precision '{self.mode}'.", f"Choose one of: {', '.join(PRECISIONS)}.")
        if self.quant_type not in ("nf4", "fp4"):
            raise StudioError(f"Unknown 4-bit type '{self.quant_type}'.", "Choose nf4 (recommended) or fp4.")
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise StudioError(f"Unknown compute dtype '{self.compute_dtype}'.", f"Choose one of: {', '.join(COMPUTE_DTYPES)}.")

    @property
    def quantized(self) -> bool:
        return self.mode in ("4bit", "8bit")

    @property
    def fp32_residual(self) -> bool:
        """Whether the residual stream runs in fp32 (fp32 norms or embeddings)."""
        return self.quantized and (self.upcast_frozen or self.norms_fp32)

    @property
    def full(self) -> bool:
        """Every weight trained (no adapter)."""
        return self.mode in ("full", "full-bf16")

    @property
    def compute_bytes(self) -> int:
        return COMPUTE_DTYPES[self.compute_dtype]
