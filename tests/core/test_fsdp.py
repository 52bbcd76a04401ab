"""FSDP on two processes through the real launcher (accelerate launch → torchrun → the worker), on this
CPU over gloo, with the studio's 4-bit bitsandbytes layers.

accelerate 1.15 turns its FSDP plugin on only where there is a GPU-like device; on a CPU it would run
the same launch as plain DDP. tests/fsdp_on_cpu/sitecustomize.py lifts that one gate (see its
docstring); everything else is the libraries' own FSDP2 code, as on GPUs."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from studio.core import runs
from studio.core.errors import StudioError
from studio.core.training import distributed, launcher
from tests.core.test_training import events_of, recipe, wait_for_event

SHIM = Path(__file__).resolve().parents[1] / "fsdp_on_cpu"


@pytest.fixture
def fsdp_on_cpu(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SHIM), os.environ.get("PYTHONPATH")])))


def test_fsdp_trains_survives_kill_9_resumes_and_saves_the_whole_adapter(tmp_path, fsdp_on_cpu):
    config = recipe(steps=30, eval_every=0, save_every=10, num_processes=2, strategy="fsdp")
    run = launcher.start(config, tmp_path / "fsdp")
    wait_for_event(run.run_dir, lambda e: e["type"] == "step" and e["step"] >= 13, timeout=300)
    os.killpg(run.pid, signal.SIGKILL)  # the launcher, as a crash would: its processes must end with it
    deadline = time.monotonic() + 30
    while _processes_of(run.run_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_of(run.run_dir)  # none goes on writing into a run the studio sees as free
    first = {e["step"]: e["loss"] for e in events_of(run.run_dir, "step")}
    checkpoint = run.run_dir / runs.CHECKPOINTS / "checkpoint-10"
    assert runs.checkpoint_problem(checkpoint) is None
    assert (checkpoint / "pytorch_model_fsdp_0" / ".metadata").is_file()  # each process's shard, not a whole copy

    resumed = launcher.resume(run.run_dir)
    assert launcher.wait(resumed, timeout=400)["status"] == "completed"
    started = events_of(run.run_dir, "started")
    assert [(e["processes"], e["resumed_from_step"]) for e in started] == [(2, 0), (2, 10)]
    steps = events_of(run.run_dir, "step")
    again = {e["step"]: e["loss"] for e in steps[len(first):]}
    for step in (11, 12, 13):  # the sharded optimizer, model and data order came back exactly
        assert again[step] == pytest.approx(first[step], rel=1e-4)
    losses = [e["loss"] for e in steps if e["step"] <= 10] + [again[s] for s in range(21, 31)]
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    assert any("With FSDP each GPU holds only a part" in e["message"] for e in events_of(run.run_dir, "log"))
    _assert_adapter_whole(run.run_dir, config)
    _assert_shares_as_planned(steps[0]["process_bytes"], config)


def _processes_of(run_dir: Path) -> list:
    import psutil

    return [p for p in psutil.process_iter(["cmdline"]) if str(run_dir) in " ".join(p.info["cmdline"] or [])]


def _assert_adapter_whole(run_dir: Path, config) -> None:
    """The adapter is saved whole (every tensor at its full shape, as one process makes it) and loads in PEFT."""
    from peft import PeftModel, get_peft_model
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from studio.core.models import resolve_model
    from studio.core.training.model import lora_config

    base = str(resolve_model("demo").path)
    with safe_open(str(run_dir / runs.ADAPTER / "adapter_model.safetensors"), "pt") as f:
        saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    fresh = get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora_config(config))
    expected = {k.replace(".default", ""): tuple(v.shape) for k, v in fresh.state_dict().items() if "lora_" in k}
    assert saved == expected
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(run_dir / runs.ADAPTER))
    assert any(v.abs().sum() > 0 for k, v in loaded.state_dict().items() if "lora_B" in k)  # trained, not fresh zeros


def _assert_shares_as_planned(measured: dict, config) -> None:
    """What the main process really held after its first step, against the plan for one of 2 GPUs."""
    from studio.core.memory import plan
    from studio.core.models import resolve_model

    info = resolve_model("demo")
    planned = {c.name: c.bytes for c in plan(info, config.adapter_spec(), config.train_shape(False, info.model_type),
                                             config.precision_for("float32")).components}
    packed = sum((layer.weight_params + 1) // 2 for layer in info.linear_layers)
    assert measured["quant_scales"] == planned["quantized_weights"] - -(-packed // 2)  # whole on each process
    # at rest the root unit's weights (embeddings, norms, lm_head) are sharded too; the plan counts them
    # whole, since they stay gathered for the whole step
    assert measured["frozen_weights"] == -(-packed // 2) + info.unquantized_params * 4 // 2
    assert measured["adapter"] == planned["lora_weights"]
    assert measured["optimizer_states"] == pytest.approx(planned["optimizer_states"], rel=0.01)  # + AdamW's step counters


def test_the_launcher_asks_accelerate_for_what_the_recipe_says():
    t = recipe(num_processes=4, strategy="fsdp").training
    worker = ["-m", "studio.core.training.worker", "RUN"]
    fsdp = distributed.launch_command(t, worker)
    assert fsdp[fsdp.index("--num_processes") + 1] == "4" and "--use_fsdp" in fsdp and "--multi_gpu" not in fsdp
    assert fsdp[fsdp.index("--fsdp_version") + 1] == "2" and fsdp[-3:] == worker
    t.strategy, t.machines, t.machine_rank, t.main_address = "ddp", 2, 1, "10.0.0.5:29501"
    ddp = distributed.launch_command(t, worker)
    assert "--multi_gpu" in ddp and "--use_fsdp" not in ddp
    assert [ddp[ddp.index(f) + 1] for f in ("--num_machines", "--machine_rank", "--main_process_ip",
                                            "--main_process_port")] == ["2", "1", "10.0.0.5", "29501"]
    assert launcher.worker_command(Path("RUN"), resume=False, training=recipe().training)[1:] == worker


@pytest.mark.parametrize("change,flag", [
    ({"machines": 2, "num_processes": 2}, "--main-address"),
    ({"machines": 2, "main_address": "box", "num_processes": 1}, "--num-processes"),
    ({"machine_rank": 1}, "--machine-rank"),
    ({"strategy": "fsdp", "num_processes": 2, "precision": "8bit"}, "--precision"),
    ({"strategy": "fsdp", "num_processes": 2, "optimizer": "paged-adamw-8bit"}, "--optim"),
])
def test_several_gpus_and_machines_refuse_what_cannot_run(change, flag):
    with pytest.raises(StudioError) as err:
        recipe(**change)
    assert flag in err.value.advice


def test_fsdp_plans_and_trains_with_adamw():
    """bitsandbytes' 8-bit optimizer states are not sharded by FSDP: "auto" takes AdamW there."""
    assert recipe(strategy="fsdp", num_processes=2).optimizer_for(on_gpu=True) == "adamw"
    assert recipe(num_processes=2).optimizer_for(on_gpu=True) == "paged-adamw-8bit"


def test_two_machines_train_one_run(tmp_path, fsdp_on_cpu):
    """Several machines, here two on this computer (one process each, rendezvous on 127.0.0.1): the main
    machine starts the run, the other joins it with `studio train --join RUN --machine-rank 1`."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = recipe(steps=6, eval_every=0, save_every=3, num_processes=2, machines=2, strategy="fsdp",
                    main_address=f"127.0.0.1:{port}")
    main = launcher.start(config, tmp_path / "run")
    try:
        other = subprocess.run([sys.executable, "-m", "studio", "train", "--join", str(main.run_dir), "--machine-rank",
                                "1"], capture_output=True, text=True, timeout=300)
        assert other.returncode == 0, other.stderr[-2000:]
        assert "Joined" in other.stdout and "as machine 1" in other.stdout
        assert launcher.wait(main, timeout=120)["status"] == "completed"
    finally:
        if main.alive():  # never left waiting for a machine that will not come
            os.killpg(main.pid, signal.SIGKILL)
    assert events_of(main.run_dir, "started")[0]["processes"] == 2
    assert runs.checkpoint_problem(main.run_dir / runs.CHECKPOINTS / "checkpoint-6") is None
    assert (main.run_dir / runs.ADAPTER / "adapter_model.safetensors").is_file()
    with pytest.raises(StudioError, match="does not join"):
        launcher.join(main.run_dir, 2)


def _vote(rank: int, port: int, answers) -> None:
    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE="2")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        answers[rank] = (distributed.agreed(rank == 1), distributed.agreed(False))
    finally:
        dist.destroy_process_group()


def test_a_cancel_one_process_sees_stops_every_process():
    """Each process looks for the cancel request on its own, maybe a step apart: they vote, so all stop at
    the same step instead of one stopping while the others wait for it forever."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    answers = mp.Manager().dict()
    mp.start_processes(_vote, args=(port, answers), nprocs=2, join=True, start_method="fork")  # no re-import: quick
    assert dict(answers) == {0: (True, False), 1: (True, False)}
