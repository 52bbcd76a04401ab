"""GPU detection and GPU sizes as users type them."""

import pytest

from studio.core.errors import StudioError
from studio.core.hardware import GPU, detect_gpus, parse_gpu_memory

GiB = 1024**3


@pytest.mark.parametrize("text,expected", [
    ("24GB", 24 * GiB), ("24", 24 * GiB), ("80 GiB", 80 * GiB), ("16000MB", 16000 * 1024**2),
    ("4090", 24564 * 1024**2), ("RTX 4090", 24564 * 1024**2), ("H100", 81559 * 1024**2), ("A100 80GB", 81920 * 1024**2),
    ("12.5GB", int(12.5 * GiB)),
])
def test_parse_gpu_memory(text, expected):
    assert parse_gpu_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "-4GB", "0", "24TB"])
def test_bad_gpu_sizes_are_explained(text):
    with pytest.raises(StudioError) as err:
        parse_gpu_memory(text)
    assert "24GB" in err.value.advice


def test_detect_gpus_answers_without_a_gpu():
    gpus = detect_gpus()  # this machine and CI have none; a GPU machine lists its cards
    assert isinstance(gpus, list)
    for g in gpus:
        assert g.total_bytes > 0 and g.free_bytes <= g.total_bytes


def test_bf16_follows_compute_capability():
    assert GPU(0, "A100", 80 * GiB, 80 * GiB, (8, 0), "nvml").compute_dtype == "bfloat16"
    assert GPU(0, "T4", 16 * GiB, 16 * GiB, (7, 5), "nvml").compute_dtype == "float16"
