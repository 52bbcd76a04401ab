"""The DPO and ORPO cases of benchmarks/gpu_calibrate.py: random preference pairs, and TRL's trainer built
as the worker builds it (training/session.py `_build_preference_trainer`)."""

from __future__ import annotations

from pathlib import Path


def random_pairs(n: int, seq_len: int, tokenizer, seed: int = 0) -> list[dict]:
    """Preference pairs of random text: a prompt of half the sequence and two answers that fill the rest
    (TRL cuts each sequence at the sequence length), so both sequences of a pair are as long as the case's."""
    import torch

    g = torch.Generator().manual_seed(seed)
    vocab = len(tokenizer)

    def text(tokens: int) -> str:
        return tokenizer.decode(torch.randint(5, vocab, (tokens,), generator=g).tolist(), skip_special_tokens=True)

    return [{"prompt": text(seq_len // 2), "chosen": text(seq_len // 2 + 64), "rejected": text(seq_len // 2 + 64)}
            for _ in range(n)]


def preference_trainer(case, config, info, device, compute: str, on_gpu: bool, out: str, trainer_base_class):
    """TRL's DPO or ORPO trainer built as the worker builds it (session._build_preference_trainer), on
    random pairs; `trainer_base_class` gets the probe's compute_loss mark."""
    from datasets import Dataset

    from studio.core.models import load_tokenizer
    from studio.core.training import model as training_model
    from studio.core.training import trainer as training_trainer

    tokenizer = load_tokenizer(info)
    shape = config.train_shape(on_gpu, info.model_type)
    trl_wraps = case.method == "dpo"
    model = training_model.load_model(config, info, device, compute, adapter=not trl_wraps)
    args = training_trainer.training_arguments(config, shape, run_dir=Path(out), total_steps=2, compute_dtype=compute,
                                               on_gpu=on_gpu, has_eval=False)
    pairs = random_pairs(3 * case.batch_size, case.seq_len, tokenizer)
    # the eval pairs are given now: ORPO tokenizes its datasets when it is made, not in evaluate()
    return trainer_base_class(model=model, args=args, train_dataset=Dataset.from_list(pairs[: 2 * case.batch_size]),
                              eval_dataset=Dataset.from_list(pairs[2 * case.batch_size:]), processing_class=tokenizer,
                              peft_config=training_model.lora_config(config) if trl_wraps else None)
