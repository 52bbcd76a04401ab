"""The recipe's [training] section: how the base is held, how long and how fast to train, the batch
shape, the memory options and how often to measure, save and show samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

from studio.core.memory import ATTENTION, METHODS, OPTIMIZERS, PRECISIONS, STRATEGIES
from studio.core.recipe.fields import refuse, require, require_choice, setting

SCHEDULERS = ("cosine", "linear", "constant")
PACKING = ("auto", "on", "off")


@dataclass
class TrainingSection:
    method: str = setting("how the adapter learns: sft (imitate the answers), dpo (prefer each chosen answer over its "
                          "rejected one, measured against the base model: data with preference pairs), orpo (learn the "
                          "chosen answers and the preference at once, with no reference pass: less memory and time)",
                          flag="--method", label="Training method", plans=True, choices=METHODS, default="sft")
    beta: float = setting("dpo/orpo: how hard the preference pulls. DPO: how far the model may move from the base to "
                          "prefer the chosen answers (0.1 is usual; lower moves further, higher stays closer). ORPO: the "
                          "weight of the preference beside learning the chosen answers (0.1 is usual)",
                          flag="--beta", label="Preference strength (beta)", default=0.1)
    precision: str = setting("4bit (QLoRA), 8bit, or 16bit (LoRA on a 16-bit base)", flag="--precision", plans=True,
                             choices=tuple(p for p in PRECISIONS if not p.startswith("full")), default="4bit")
    quant_type: str = setting("4-bit data type: nf4 or fp4", flag="--quant-type", plans=True, choices=("nf4", "fp4"),
                              default="nf4")
    double_quant: bool = setting("quantize the 4-bit block scales too (saves ~0.4 bits per weight)",
                                 flag="--double-quant", plans=True, default=True)
    compute_dtype: str = setting("auto (bf16 where the GPU supports it, else fp16; fp32 on CPU), bfloat16, float16, "
                                 "float32", flag="--compute-dtype", plans=True,
                                 choices=("auto", "bfloat16", "float16", "float32"), default="auto")
    steps: int | None = setting("optimizer steps to train (or set epochs)", flag="--steps", default=None)
    epochs: float | None = setting("passes over the data (used when steps is not set)", flag="--epochs", default=1.0)
    learning_rate: float = setting("peak learning rate", flag="--lr", default=2e-4)
    scheduler: str = setting("learning-rate schedule after warmup: cosine, linear or constant", flag="--scheduler",
                             choices=SCHEDULERS, default="cosine")
    warmup_ratio: float = setting("share of the steps spent warming the learning rate up", flag="--warmup-ratio",
                                  default=0.03)
    weight_decay: float = setting("AdamW weight decay", flag="--weight-decay", default=0.0)
    max_grad_norm: float = setting("gradients are clipped to this norm", flag="--max-grad-norm", default=1.0)
    batch_size: int = setting("micro-batch: sequences per forward pass", flag="--batch-size", plans=True, default=1)
    grad_accum: int = setting("micro-batches per optimizer step", flag="--grad-accum", plans=True, default=8)
    seq_len: int = setting("tokens per sequence; longer examples are cut", flag="--seq-len", label="Sequence length",
                           plans=True, default=2048)
    gradient_checkpointing: bool = setting("recompute activations in backward: much less memory, ~30% slower",
                                           flag="--grad-ckpt", plans=True, default=True)
    optimizer: str = setting("auto (paged 8-bit AdamW on a GPU, AdamW on CPU), adamw, adamw-8bit, paged-adamw-8bit",
                             flag="--optim", plans=True, choices=("auto",) + OPTIMIZERS, default="auto")
    attention: str = setting("attention implementation: sdpa, eager, or flash_attention_2 (CUDA with the flash-attn "
                             "package; otherwise sdpa is used)", flag="--attention", plans=True, choices=ATTENTION,
                             default="sdpa")
    seed: int = setting("random seed: same seed, same data order and initial adapter", flag="--seed", default=42)
    eval_every: int = setting("steps between eval-loss measurements (0: only at the end)", flag="--eval-every", default=50)
    save_every: int = setting("steps between checkpoints (resume points)", flag="--save-every", default=50)
    keep_checkpoints: int = setting("how many checkpoints to keep", flag="--keep-checkpoints", default=2)
    sample_every: int = setting("steps between sample answers (0: never)", flag="--sample-every", default=50)
    sample_prompts: list = setting("prompts answered during training so you can watch the model change",
                                   flag="--sample-prompt", many=True, default_factory=list)
    sample_max_tokens: int = setting("length of each sample answer, in tokens", flag="--sample-max-tokens", default=64)
    num_processes: int = setting("GPUs (processes) to train on with accelerate; 1 for one GPU (the plan is per GPU)",
                                 flag="--num-processes", plans=True, default=1)
    strategy: str = setting("how several GPUs share the run: ddp (a whole copy of the model on each: fastest, when it "
                            "fits one card) or fsdp (the weights, gradients and optimizer states sharded across them: "
                            "a model bigger than one card)", flag="--strategy", label="Several GPUs", plans=True,
                            choices=STRATEGIES, default="ddp")
    machines: int = setting("machines training together (each with its GPUs; num_processes counts the GPUs of all of "
                            "them); start the same recipe on each machine with its --machine-rank",
                            flag="--machines", default=1)
    machine_rank: int = setting("this machine's number when several train together: 0 on the main machine, then 1, 2, …",
                                flag="--machine-rank", default=0)
    main_address: str = setting("the main machine's address as host:port (port 29500 when left out), reachable from "
                                "every machine, when several train together", flag="--main-address", default="")
    preflight: bool = setting("before training, run the longest batch once to check it fits (a few seconds)",
                              flag="--preflight", default=True)
    chunked_loss: bool = setting("compute the loss a chunk of tokens at a time: same result, without the "
                                 "vocabulary-sized peak (Llama, Mistral, Qwen, Gemma, Phi-3 families)",
                                 flag="--chunked-loss", plans=True, default=True)
    loss_chunk_tokens: int = setting("tokens per chunk of the chunked loss", flag="--loss-chunk", plans=True, default=1024)
    packing: str = setting("padding-free batches (examples joined, attention kept apart): auto = with flash attention, "
                           "where it costs nothing; on = always (other attention needs a mask over the whole batch); "
                           "off", flag="--packing", plans=True, choices=PACKING, default="auto")
    upcast_frozen: bool = setting("4/8-bit: keep an fp32 copy of embeddings, norms and lm_head, as "
                                  "prepare_model_for_kbit_training does (off, the default: keep them in the compute "
                                  "dtype; measured on an H100 with Llama 3 8B at 8192 tokens: 4.9 GiB less at the "
                                  "peak, 1.3x the tokens/s, the same losses)",
                                  flag="--fp32-frozen", plans=True, default=False)

    def validate(self) -> None:
        self._check_choices()
        self._check_length()
        self._check_sizes()
        self._check_cadence()

    def _check_choices(self) -> None:
        for name, what in (("method", "The training method"),
                           ("precision", "Precision"),
                           ("strategy", "The strategy"), ("quant_type", "The 4-bit type"), ("compute_dtype", "Compute dtype"),
                           ("scheduler", "The scheduler"), ("optimizer", "The optimizer"), ("attention", "Attention"),
                           ("packing", "Packing")):
            require_choice(self, name, what)

    def _check_length(self) -> None:
        if self.steps is None and (self.epochs is None or self.epochs <= 0):
            refuse(self, "epochs", "Epochs", "a positive number when no step count is set", flag="--epochs (or --steps)")
        require(self.steps is None or self.steps >= 1, self, "steps", "Steps", "at least 1")
        lr = self.learning_rate
        require(0 < lr < 1 and not math.isnan(lr), self, "learning_rate", "The learning rate",
                "between 0 and 1 (typically 1e-4 to 5e-4 for LoRA)")
        require(0 <= self.warmup_ratio < 1, self, "warmup_ratio", "Warmup ratio", "in [0, 1)")
        require(0 < self.beta <= 10 and not math.isnan(self.beta), self, "beta", "Beta",
                "above 0 and at most 10 (0.1 is usual)")

    def _check_sizes(self) -> None:
        for name, what in (("batch_size", "Batch size"), ("grad_accum", "Gradient accumulation"),
                           ("seq_len", "Sequence length"), ("num_processes", "Processes")):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, self, name, what, "a whole number of at least 1")
        require(self.seq_len >= 16, self, "seq_len", "Sequence length", "at least 16 tokens")
        self._check_machines()
        require(self.loss_chunk_tokens >= 64, self, "loss_chunk_tokens", "The loss chunk", "at least 64 tokens")

    def _check_machines(self) -> None:
        require(isinstance(self.machines, int) and self.machines >= 1, self, "machines", "Machines",
                "a whole number of at least 1")
        require(self.num_processes >= self.machines, self, "num_processes", "Processes",
                f"at least one per machine ({self.machines} machines); it counts the GPUs of all of them")
        require(0 <= self.machine_rank < self.machines, self, "machine_rank", "The machine rank",
                f"0 on the main machine, up to {self.machines - 1}")
        require(self.machines == 1 or bool(self.main_address.strip()), self, "main_address", "The main machine's address",
                "host:port of the main machine (its rank 0) when several machines train together")
        if self.strategy == "fsdp" and self.num_processes > 1:  # FSDP shards floating-point tensors only
            require(self.precision != "8bit", self, "precision", "Precision", "4bit or 16bit with FSDP (its 8-bit "
                    "weights cannot be sharded)")
            require("8bit" not in self.optimizer, self, "optimizer", "The optimizer", "auto or adamw with FSDP (8-bit "
                    "optimizer states are not sharded)")

    def _check_cadence(self) -> None:
        for name in ("eval_every", "save_every", "sample_every"):
            require(getattr(self, name) >= 0, self, name, name, "0 or more")
        require(self.keep_checkpoints >= 1, self, "keep_checkpoints", "keep_checkpoints", "at least 1")
