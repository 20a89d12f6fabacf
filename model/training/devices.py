"""Where a model runs and in which precision: the `--device` and `--amp` settings.

`--device`: `auto` (CUDA when present, else the CPU), `cpu`, `cuda`, `cuda:N` or `mps`.
Under `torchrun` a process's `cuda` is `cuda:LOCAL_RANK` (one GPU per process).

`--amp`: `off` (float32), `bf16` or `fp16` autocast for the forward pass (PyTorch's
`torch.autocast`; matmuls and convolutions in half precision). fp16 trains with a gradient
scaler (`torch.amp.GradScaler`), bf16 needs none (float32's exponent range). Whatever the
mode, the LIF membrane update and threshold comparison (`model/nn/lif.py`) and the spike
products of the attention (`model/nn/attention.py`) run in float32.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

from sparsespikformer.simulator.errors import InputError

DEVICE_CHOICES_HELP = "auto | cpu | cuda | cuda:N | mps (default auto: CUDA if present, else CPU)"
AMP_MODES = ("off", "bf16", "fp16")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
HALF_DTYPES = (torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class Runtime:
    """How a run executes (not what it computes): device, precision, batch-norm sync.

    Not part of `TrainConfig`: a checkpoint resumes on any device, in any precision and on
    any number of processes (each checkpoint records what wrote it)."""

    device: str = "auto"      # auto | cpu | cuda | cuda:N | mps
    amp: str = "off"          # off | bf16 | fp16
    sync_bn: bool = False     # batch-norm statistics over the global batch (torchrun)

    def __post_init__(self) -> None:
        check_amp(self.amp)

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)


def local_rank() -> int | None:
    """This process's GPU index under torchrun (LOCAL_RANK), None outside it."""
    value = os.environ.get("LOCAL_RANK")
    return int(value) if value is not None and value.isdigit() else None


def resolve_device(spec: str = "auto") -> torch.device:
    """The torch device named by a `--device` value; InputError if it is not there."""
    spec = spec.strip().lower()
    if spec == "auto":
        return _cuda(None) if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not torch.backends.mps.is_available():
            raise InputError("--device mps: this machine has no usable Apple GPU (MPS)")
        return torch.device("mps")
    if spec == "cuda" or spec.startswith("cuda:"):
        index = spec.partition(":")[2]
        if index and not index.isdigit():
            raise InputError(f"--device {spec}: expected cuda or cuda:N with N a GPU index")
        if not torch.cuda.is_available():
            raise InputError(f"--device {spec}: CUDA is not available (no GPU, or torch "
                             f"{torch.__version__} is a CPU build); use --device cpu")
        return _cuda(int(index) if index else None)
    raise InputError(f"--device {spec!r}: expected {DEVICE_CHOICES_HELP}")


def _cuda(index: int | None) -> torch.device:
    rank = local_rank()
    if index is None:
        index = rank if rank is not None else torch.cuda.current_device()
    elif rank is not None and int(os.environ.get("WORLD_SIZE", "1")) > 1 and index != rank:
        raise InputError(f"--device cuda:{index} under torchrun: each process uses the GPU "
                         f"of its LOCAL_RANK ({rank}); pass --device cuda")
    count = torch.cuda.device_count()
    if index >= count:
        raise InputError(f"--device cuda:{index}: this machine has {count} GPU(s)")
    return torch.device("cuda", index)


def check_amp(amp: str) -> str:
    if amp not in AMP_MODES:
        raise InputError(f"--amp {amp!r}: expected one of {', '.join(AMP_MODES)}")
    return amp


def autocast(device: torch.device, amp: str):
    """The forward pass's autocast context (a no-op context for `off`)."""
    if check_amp(amp) == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_AMP_DTYPES[amp])


def grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler:
    """A loss scaler, enabled for fp16 only (bf16 has float32's exponent range)."""
    return torch.amp.GradScaler(device.type, enabled=check_amp(amp) == "fp16")


def float32_copy(x: torch.Tensor) -> torch.Tensor:
    """x in float32 if it is a half-precision tensor (exact: every half value is a float32)."""
    return x.float() if x.dtype in HALF_DTYPES else x


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (timing); nothing to wait for on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
