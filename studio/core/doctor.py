"""Is this computer ready to train? The report behind `studio doctor` and the window's
"Check this computer" dialog, and what it means in plain words.

`collect_report()` gathers versions, GPUs (NVML first), bitsandbytes' backend, Qt, the folders in
use and the NVIDIA driver's CUDA version (nvidia-smi). `explain()` turns it into findings: whether
an NVIDIA GPU was found and its memory, whether 4-bit (QLoRA) training on the GPU is available, and
if not what to do — install the driver, the CUDA build of PyTorch (the exact pip command for this
environment and driver, the wheel index chosen as packaging/install.sh chooses it), or reinstall
bitsandbytes. Plain functions: tested without a window or a GPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from studio.core.window_libraries import debian_package, missing_libraries, uses_xcb, xcb_plugin

PYTORCH_INDEX = "https://download.pytorch.org/whl"
BNB_REQUIREMENT = "bitsandbytes>=0.45"
INSTALLER_HINT = ("packaging/install.sh on Linux, packaging/install.ps1 on Windows; see packaging/README.md")


# ---------------------------------------------------------------------------------------------
# The report and what it means (plain functions: tested without a window)
# ---------------------------------------------------------------------------------------------


def nvidia_smi_info() -> dict:
    """The driver version and the newest CUDA it supports, from nvidia-smi; {} when there is none."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {}
    info: dict = {}
    try:
        header = subprocess.run([exe], capture_output=True, text=True, timeout=15).stdout
        query = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                               text=True, timeout=15).stdout
    except (OSError, subprocess.SubprocessError):
        return {"nvidia_smi": "found, but it did not answer"}
    match = re.search(r"CUDA Version:\s*([0-9][0-9.]*)", header)
    if match:
        info["cuda_driver"] = match.group(1)
    if query.strip():
        info["nvidia_driver"] = query.strip().splitlines()[0].strip()
    info["nvidia_smi"] = exe
    return info


def torch_index_tag(cuda_driver: str | None) -> str:
    """The PyTorch wheel index for a driver that supports CUDA `cuda_driver` (as install.sh chooses it)."""
    try:
        major, minor = (int(x) for x in (cuda_driver or "").split(".")[:2])
    except ValueError:
        return "cu128"  # unknown: a driver installed today supports CUDA 12.8 or newer
    n = major * 10 + minor
    return "cu130" if n >= 130 else "cu128" if n >= 128 else "cu126"


def pip_command(args: str) -> str:
    """A pip command for the Python this studio runs in (quoted when its path has spaces)."""
    python = sys.executable
    if " " in python:
        python = f'"{python}"'
    return f"{python} -m pip install {args}"


@dataclass(frozen=True)
class Finding:
    """One line of the check: what was found, whether that is good, and what to do if not."""

    key: str  # "gpu", "training", "bitsandbytes", "window"
    ok: bool
    title: str
    text: str
    fixes: tuple[str, ...] = ()  # commands to run, exactly


@dataclass
class Verdict:
    headline: str
    four_bit_ready: bool
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class _Setup:
    """What the advice depends on, read from a doctor report."""

    report: dict
    gpus: list
    torch_version: str
    torch_ok: bool
    cuda_build: str
    cpu_build: bool
    cuda_ok: bool
    bnb: str
    bnb_ok: bool
    backend: str
    frozen: bool

    @classmethod
    def of(cls, report: dict) -> _Setup:
        torch_version = str(report.get("torch", ""))
        cuda_build = str(report.get("cuda_build", ""))
        bnb = str(report.get("bitsandbytes", ""))
        return cls(report, report.get("gpus") or [], torch_version, not torch_version.startswith("not importable"),
                   cuda_build, cuda_build.startswith("none") or not cuda_build, bool(report.get("cuda_available")),
                   bnb, bool(bnb) and not bnb.startswith("not importable"), str(report.get("bitsandbytes_backend", "")),
                   bool(report.get("frozen")))

    @property
    def four_bit(self) -> bool:
        return self.torch_ok and self.cuda_ok and self.bnb_ok and self.backend.startswith("cuda")

    @property
    def base_version(self) -> str:
        return self.torch_version.split("+")[0] if self.torch_ok else "2.13.0"

    @property
    def index_tag(self) -> str:
        return torch_index_tag(self.report.get("cuda_driver"))

    @property
    def cuda_torch(self) -> str:
        """The pip command that installs the CUDA build of PyTorch for this driver."""
        return pip_command(f"--force-reinstall torch=={self.base_version} --index-url {PYTORCH_INDEX}/{self.index_tag}")


def explain(report: dict) -> Verdict:
    """What the doctor report means for this user, in plain words."""
    s = _Setup.of(report)
    findings = [_gpu_finding(s), _training_finding(s), _bnb_finding(s), _window_finding(report)]
    if s.four_bit:
        headline = "This computer is ready for 4-bit training on the GPU."
    elif s.gpus:
        headline = "A GPU was found, but 4-bit training on it is not available yet: see below."
    else:
        headline = "No NVIDIA GPU was found: the studio will train on the processor (fine for the demo model)."
    return Verdict(headline, s.four_bit, [f for f in findings if f is not None])


def _gpu_finding(s: _Setup) -> Finding:
    report = s.report
    if s.gpus:
        g = s.gpus[0]
        more = f" (and {len(s.gpus) - 1} more)" if len(s.gpus) > 1 else ""
        driver = (f" Driver {report['nvidia_driver']} (CUDA {report.get('cuda_driver', '?')})."
                  if report.get("nvidia_driver") else "")
        return Finding("gpu", True, f"GPU: {g['name']}{more}",
                       f"{g['total_gib']:.1f} GiB of memory, {g['free_gib']:.1f} GiB free now." + driver)
    if sys.platform == "darwin":
        return Finding("gpu", False, "No NVIDIA GPU (this is a Mac)",
                       "Training runs on the processor: fine for the demo model, far too slow for real models. "
                       "You can still plan a run for any GPU on the Memory page.")
    if report.get("nvidia_smi"):
        return Finding("gpu", False, "The NVIDIA driver found no working GPU",
                       "nvidia-smi is installed but lists no GPU. Restart the computer after a driver update; "
                       "run `nvidia-smi` in a terminal to see the driver's own message.", ("nvidia-smi",))
    then, fixes = "", ()
    if s.cpu_build and s.torch_ok:
        if s.frozen:
            then = f" Then install LoRA Studio with the installer ({INSTALLER_HINT}): this app carries no CUDA."
        else:
            then, fixes = " Then install the CUDA build of PyTorch (or run the installer again):", (s.cuda_torch,)
    return Finding("gpu", False, "No NVIDIA GPU found",
                   "Training runs on the processor: fine for the demo model, far too slow for real models "
                   "(you can still plan a run for any GPU on the Memory page). If this computer has an "
                   "NVIDIA card, install its driver (Linux: your distribution's nvidia-driver package, e.g. "
                   "`sudo ubuntu-drivers install`; Windows: nvidia.com/drivers) and restart: `nvidia-smi` "
                   "should then list it." + then, fixes)


def _training_finding(s: _Setup) -> Finding:
    if s.four_bit:
        return Finding("training", True, "4-bit training (QLoRA) on the GPU: available",
                       f"PyTorch {s.torch_version} with CUDA {s.cuda_build}, bitsandbytes {s.bnb}.")
    if not s.torch_ok:
        return _torch_missing(s)
    if s.gpus and s.cpu_build:
        return _torch_cpu_build(s)
    if s.gpus and not s.cuda_ok:
        report = s.report
        return Finding("training", False, "4-bit training on the GPU: not available — PyTorch cannot reach the GPU",
                       f"PyTorch {s.torch_version} is built for CUDA {s.cuda_build}, but the NVIDIA driver "
                       f"{report.get('nvidia_driver', '')} (CUDA {report.get('cuda_driver', '?')}) does not run it. "
                       "Update the NVIDIA driver (525 or newer for CUDA 12), restart, or install the PyTorch "
                       "build that matches this driver:", (s.cuda_torch,))
    if s.gpus:  # PyTorch reaches the GPU; bitsandbytes is what fails
        return Finding("training", False, "4-bit training on the GPU: not available — bitsandbytes does not load",
                       "PyTorch reaches the GPU, but bitsandbytes, which holds the 4-bit weights, does not work "
                       "(see below).")
    return Finding("training", False, "4-bit training on the GPU: not available (no GPU)",
                   "The studio still trains on the processor (bitsandbytes' CPU backend): slowly, which is "
                   "fine for the demo model. 4-bit training of real models needs an NVIDIA GPU with its "
                   "driver and the CUDA build of PyTorch.")


def _torch_missing(s: _Setup) -> Finding:
    if s.frozen:
        return Finding("training", False, "PyTorch does not load in this app",
                       f"{s.torch_version}. Download the app again, or install LoRA Studio with the installer "
                       f"({INSTALLER_HINT}).")
    index = f" --index-url {PYTORCH_INDEX}/{s.index_tag}" if s.gpus else ""
    return Finding("training", False, "PyTorch is missing or broken",
                   f"{s.torch_version}. Install it again, then restart the studio:",
                   (pip_command(f"torch=={s.base_version}" + index),))


def _torch_cpu_build(s: _Setup) -> Finding:
    if s.frozen:
        return Finding("training", False, "4-bit training on the GPU: not available in this build",
                       "This self-contained app carries the CPU build of PyTorch, so it cannot use the GPU. "
                       f"Install LoRA Studio with the installer instead ({INSTALLER_HINT}): it picks the CUDA "
                       "build of PyTorch that suits your driver.")
    return Finding("training", False, "4-bit training on the GPU: not available — PyTorch is a CPU build",
                   f"PyTorch {s.torch_version} cannot use the GPU. Install its CUDA build (a download of "
                   "2–3 GB), then restart the studio:", (s.cuda_torch,))


def _bnb_finding(s: _Setup) -> Finding | None:
    if s.bnb_ok and not s.backend.startswith("unavailable"):
        return None
    problem = s.bnb if not s.bnb_ok else s.backend
    if s.frozen:
        return Finding("bitsandbytes", False, "bitsandbytes (4-bit and 8-bit) does not load",
                       f"{problem}. Download the app again, or install LoRA Studio with the installer ({INSTALLER_HINT}).")
    return Finding("bitsandbytes", False, "bitsandbytes (4-bit and 8-bit) does not load",
                   f"{problem}. Reinstall it, then restart the studio:",
                   (pip_command(f'--force-reinstall "{BNB_REQUIREMENT}"'),))


def _window_finding(report: dict) -> Finding | None:
    missing = report.get("window_libraries_missing") or []
    if not missing:
        return None
    packages = " ".join(debian_package(lib) for lib in missing)
    return Finding("window", False, "The window needs system libraries this computer lacks",
                   f"Qt cannot open its window without {', '.join(missing)}. On Debian or Ubuntu:",
                   (f"sudo apt install {packages}",))


def details_text(report: dict) -> str:
    """The report as `studio doctor` prints it: one `key  value` line each, a line per GPU."""
    lines = []
    for key, value in report.items():
        if key == "gpus":
            if not value:
                lines.append(f"{'gpus':<22}none found")
            for i, g in enumerate(value):
                lines.append(f"{'gpu ' + str(i):<22}{g['name']}: {g['total_gib']} GiB ({g['free_gib']} free), "
                             f"compute {g['compute_capability']}, bf16 {'yes' if g['bf16'] else 'no'}")
        else:
            lines.append(f"{key:<22}{value}")
    return "\n".join(lines)


def verdict_text(verdict: Verdict) -> str:
    """What the report means, for a terminal: the headline, then each finding and its commands."""
    lines = [verdict.headline, ""]
    for f in verdict.findings:
        lines.append(f"{'ok ' if f.ok else 'NO '} {f.title}")
        lines.append(f"    {f.text}")
        lines.extend(f"      {command}" for command in f.fixes)
    return "\n".join(lines)


def report_text(report: dict) -> str:
    """What "Copy report" puts on the clipboard: the doctor report as JSON."""
    return json.dumps(report, indent=2, default=str)


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


def collect_report() -> dict:
    """Versions, GPUs, bitsandbytes' backend, Qt, the folders in use, and what nvidia-smi says about
    the driver (what the advice needs): `studio doctor --json`."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from studio import __version__
    from studio.core import paths
    from studio.core.hardware import GiB, detect_gpus

    report: dict = {"studio": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    try:
        import torch

        report["torch"] = torch.__version__
        report["cuda_build"] = torch.version.cuda or "none (CPU build)"
        report["cuda_available"] = torch.cuda.is_available()
    except Exception as exc:
        report["torch"] = f"not importable: {exc}"
    for lib in ("transformers", "peft", "bitsandbytes", "datasets", "accelerate"):
        try:
            report[lib] = __import__(lib).__version__
        except Exception as exc:
            report[lib] = f"not importable: {exc}"
    report["bitsandbytes_backend"] = _bnb_backend()
    report["gpus"] = [{"name": g.name, "total_gib": round(g.total_bytes / GiB, 2), "free_gib": round(g.free_bytes / GiB, 2),
                       "compute_capability": ".".join(map(str, g.compute_capability or ())), "bf16": g.supports_bf16}
                      for g in detect_gpus()]
    report["qt"] = "not installed"
    for dist in ("PySide6_Essentials", "PySide6"):  # metadata only: the core never imports Qt
        try:
            report["qt"] = f"PySide6 {version(dist)}"  # PySide6 x.y.z bundles Qt x.y.z
            break
        except PackageNotFoundError:
            continue
    report["qt_platform"] = os.environ.get("QT_QPA_PLATFORM") or (
        "wayland" if os.environ.get("WAYLAND_DISPLAY") else "xcb" if os.environ.get("DISPLAY") else "none (no display found)")
    report["window_libraries_missing"] = missing_libraries(xcb_plugin()) if uses_xcb() else []
    report["runs_folder"] = str(paths.runs_dir())
    report["settings_folder"] = str(paths.user_config_dir())
    report.update(nvidia_smi_info())
    report["frozen"] = bool(getattr(sys, "frozen", False))
    return report


def _bnb_backend() -> str:
    try:
        import bitsandbytes  # noqa: F401
        import torch

        if torch.cuda.is_available():
            return "cuda (4-bit training on the GPU)"
        return "cpu (4-bit works, slowly; no GPU found)"
    except Exception as exc:
        return f"unavailable: {exc}"
