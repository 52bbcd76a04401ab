"""The recipe's [adapter] section: the LoRA adapter's size, strength and where it attaches."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core.recipe.fields import require, setting


@dataclass
class AdapterSection:
    rank: int = setting("LoRA rank: how much the model can change", flag="--rank", plans=True, default=16)
    alpha: int = setting("LoRA alpha: alpha / rank is how strongly the change applies", flag="--alpha", plans=True,
                         default=32)
    dropout: float = setting("LoRA dropout: regularisation on the adapter's input", flag="--dropout", plans=True,
                             default=0.05)
    targets: list = setting("layers that get an adapter: ['all-linear'] or names such as ['q_proj', 'v_proj']",
                            flag="--targets", plans=True, default_factory=lambda: ["all-linear"])
    use_dora: bool = setting("DoRA: weight-decomposed LoRA (slower, sometimes better)", flag="--dora", plans=True,
                             default=False)
    use_rslora: bool = setting("rank-stabilised LoRA: scale by alpha / sqrt(rank)", flag="--rslora", plans=True,
                               default=False)
    start_from: str | None = setting("go on training an earlier run's adapter (its run folder, or an adapter folder) "
                                     "instead of a new one: the usual path is a supervised run, then DPO from its "
                                     "adapter. Its rank, alpha and layers are used; DPO then measures against it",
                                     flag="--start-from", label="Start from", plans=True, default=None)

    def validate(self) -> None:
        require(1 <= self.rank <= 1024, self, "rank", "LoRA rank", "between 1 and 1024 (8–64 is typical)")
        require(self.alpha > 0, self, "alpha", "LoRA alpha", "positive (often 2 × rank)")
        require(0 <= self.dropout < 1, self, "dropout", "LoRA dropout", "in [0, 1)")
        t = self.targets
        names_ok = bool(t) and not isinstance(t, str) and all(isinstance(x, str) and x for x in t)
        require(names_ok, self, "targets", "LoRA targets", "all-linear or a list of layer names")
