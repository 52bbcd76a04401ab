"""Lets accelerate turn FSDP on where there is no GPU, for tests/core/test_fsdp.py only.

accelerate 1.15 enables its FSDP plugin only for GPU-like devices: on a CPU its launcher (asked for
FSDP) starts the processes as plain multi-CPU DDP, and `Trainer.is_fsdp_enabled` is False. torch's
FSDP2 (`fully_shard`) itself runs on the CPU over gloo, so this one gate is lifted: when the
launcher asked for FSDP and accelerate chose multi-CPU, the state becomes FSDP with the plugin
accelerate built from the launcher's flags. Everything after that — the wrapping, the sharded
checkpoints, the gathered adapter — is accelerate's, transformers' and torch's own code, as on GPUs.
Put on PYTHONPATH by the test; nothing in the studio imports it.
"""

import os

if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
    import accelerate.state as _state

    _init = _state.AcceleratorState.__init__

    def _fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
        _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if self.distributed_type == _state.DistributedType.MULTI_CPU and fsdp_plugin is not None:
            self.distributed_type = _state.DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin

    _state.AcceleratorState.__init__ = _fsdp_on_cpu
