"""What the computer check means (studio/core/doctor.py): whether a GPU was found and its memory,
whether 4-bit training is available, and the exact command to fix it if not — for every situation a
user's computer can be in, from reports as `collect_report()` makes them."""

from __future__ import annotations

from studio.core import doctor as dd

BASE = {"studio": "0.1.0", "python": "3.11.7", "platform": "Linux-6.1-x86_64", "transformers": "5.23.0",
        "peft": "0.21.2", "datasets": "5.2.0", "accelerate": "1.15.0", "qt": "PySide6 6.12.0, Qt 6.12.0",
        "qt_platform": "xcb", "runs_folder": "/home/u/.local/share/lora-studio/runs",
        "settings_folder": "/home/u/.config/lora-studio", "frozen": False}
CPU_ONLY = dict(BASE, torch="2.13.0+cpu", cuda_build="none (CPU build)", cuda_available=False, bitsandbytes="0.50.2",
                bitsandbytes_backend="cpu (4-bit works, slowly; no GPU found)", gpus=[])
RTX_4090 = {"name": "NVIDIA GeForce RTX 4090", "total_gib": 23.99, "free_gib": 23.5, "compute_capability": "8.9", "bf16": True}
GPU_READY = dict(BASE, torch="2.13.0+cu128", cuda_build="12.8", cuda_available=True, bitsandbytes="0.50.2",
                 bitsandbytes_backend="cuda (4-bit training on the GPU)", gpus=[RTX_4090], nvidia_driver="570.86",
                 cuda_driver="12.8", nvidia_smi="/usr/bin/nvidia-smi")


def _text(verdict: dd.Verdict) -> str:
    return verdict.headline + "\n" + "\n".join(f"{f.title}\n{f.text}\n" + "\n".join(f.fixes) for f in verdict.findings)


# ---------------------------------------------------------------------------------------------
# What the report means
# ---------------------------------------------------------------------------------------------


def test_a_computer_without_a_gpu_is_told_so_plainly():
    verdict = dd.explain(CPU_ONLY)
    assert not verdict.four_bit_ready
    assert verdict.headline.startswith("No NVIDIA GPU was found")
    gpu, training = verdict.findings[0], verdict.findings[1]
    assert (gpu.key, gpu.ok, gpu.title) == ("gpu", False, "No NVIDIA GPU found")
    assert "install its driver" in gpu.text and "nvidia-smi" in gpu.text
    assert gpu.fixes[0].endswith("-m pip install --force-reinstall torch==2.13.0 --index-url "
                                 "https://download.pytorch.org/whl/cu128")  # after the driver: the CUDA build
    assert training.key == "training" and not training.ok and "not available" in training.title
    assert len(verdict.findings) == 2  # bitsandbytes loads (CPU backend): nothing to fix there


def test_a_ready_gpu_shows_its_name_memory_and_4bit_training():
    verdict = dd.explain(GPU_READY)
    assert verdict.four_bit_ready
    assert verdict.headline == "This computer is ready for 4-bit training on the GPU."
    gpu, training = verdict.findings
    assert gpu.ok and gpu.title == "GPU: NVIDIA GeForce RTX 4090"
    assert "24.0 GiB of memory" in gpu.text and "Driver 570.86 (CUDA 12.8)" in gpu.text
    assert training.ok and training.title == "4-bit training (QLoRA) on the GPU: available"
    assert not gpu.fixes and not training.fixes


def test_a_gpu_with_the_cpu_build_of_pytorch_gets_the_exact_pip_command(monkeypatch):
    monkeypatch.setattr(dd.sys, "executable", "/home/u/.local/share/lora-studio/app/venv/bin/python")
    report = dict(GPU_READY, torch="2.13.0+cpu", cuda_build="none (CPU build)", cuda_available=False,
                  bitsandbytes_backend="cpu (4-bit works, slowly; no GPU found)")
    verdict = dd.explain(report)
    assert not verdict.four_bit_ready
    assert verdict.headline.startswith("A GPU was found, but 4-bit training on it is not available")
    training = verdict.findings[1]
    assert "PyTorch is a CPU build" in training.title
    assert training.fixes == ("/home/u/.local/share/lora-studio/app/venv/bin/python -m pip install --force-reinstall "
                              "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128",)


def test_the_cuda_index_follows_the_driver():
    assert dd.torch_index_tag("12.2") == "cu126"  # CUDA 12 minor-version compatibility
    assert dd.torch_index_tag("12.6") == "cu126"
    assert dd.torch_index_tag("12.9") == "cu128"
    assert dd.torch_index_tag("13.0") == "cu130"
    assert dd.torch_index_tag(None) == "cu128"  # unknown driver: what a driver installed today supports


def test_a_driver_too_old_for_the_cuda_build_says_update_the_driver():
    report = dict(GPU_READY, cuda_available=False, nvidia_driver="470.82", cuda_driver="11.4",
                  bitsandbytes_backend="cpu (4-bit works, slowly; no GPU found)")
    training = dd.explain(report).findings[1]
    assert "PyTorch cannot reach the GPU" in training.title
    assert "Update the NVIDIA driver" in training.text and "470.82" in training.text


def test_a_broken_bitsandbytes_gets_the_reinstall_command():
    report = dict(GPU_READY, bitsandbytes="not importable: libcudart.so.12: cannot open shared object file",
                  bitsandbytes_backend="unavailable: libcudart.so.12")
    verdict = dd.explain(report)
    assert not verdict.four_bit_ready
    fix = [f for f in verdict.findings if f.key == "bitsandbytes"][0]
    assert "libcudart" in fix.text
    assert fix.fixes[0].endswith('-m pip install --force-reinstall "bitsandbytes>=0.45"')


def test_the_self_contained_app_points_to_the_installer_for_gpu_training():
    report = dict(GPU_READY, torch="2.13.0+cpu", cuda_build="none (CPU build)", cuda_available=False,
                  bitsandbytes_backend="cpu (4-bit works, slowly; no GPU found)", frozen=True)
    training = dd.explain(report).findings[1]
    assert "install.sh" in training.text and not training.fixes  # no pip inside a frozen app


def test_the_report_of_this_computer_is_complete_and_explained():
    report = dd.collect_report()
    for key in ("studio", "python", "torch", "cuda_build", "cuda_available", "transformers", "peft", "bitsandbytes",
                "bitsandbytes_backend", "gpus", "qt", "runs_folder", "settings_folder", "frozen"):
        assert key in report, key
    assert report["qt"].startswith("PySide6 6.")  # read from the package metadata, without importing Qt
    verdict = dd.explain(report)
    assert verdict.headline and verdict.findings[0].key == "gpu" and verdict.findings[1].key == "training"
    text = dd.verdict_text(verdict)
    assert text.startswith(verdict.headline) and all(f.title in text for f in verdict.findings)
    details = dd.details_text(report)
    assert f"{'runs_folder':<22}{report['runs_folder']}" in details.splitlines()
