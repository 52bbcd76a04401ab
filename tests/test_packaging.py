"""packaging/: the Linux installer from a new user's home (install, use, upgrade, uninstall that keeps
the runs), its GPU detection, the desktop entry, and the frozen app's entry point.

The PyInstaller build itself is checked by packaging/smoke.sh (minutes and ~1 GB: run by hand, see
packaging/README.md), not here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
INSTALL_SH = PACKAGING / "install.sh"


def clean_env(home: Path, **extra) -> dict:
    """The environment of a new user: their own HOME and nothing of the developer's studio setup.

    The machine's pip configuration (indexes, find-links) stays, as it would for that user; pip's
    download cache is the developer's, so the test does not download the same wheels again.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STUDIO_", "XDG_", "VIRTUAL_ENV", "HF_", "QT_", "PYTHON"))}
    env.update(HOME=str(home), PIP_CACHE_DIR=os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip"))
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env.update(extra)
    return env


def sh(args, env, timeout=120, check=True) -> subprocess.CompletedProcess:
    # from the (new) home folder, as a user would: nothing may come from the checkout by accident
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=env["HOME"])
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def test_the_installer_is_valid_shell_and_says_how_to_use_it(tmp_path):
    sh(["bash", "-n", str(INSTALL_SH)], clean_env(tmp_path))
    usage = sh(["bash", str(INSTALL_SH), "--help"], clean_env(tmp_path)).stdout
    for option in ("--prefix", "--cpu", "--uninstall", "--detect", "--torch-index"):
        assert option in usage
    bad = sh(["bash", str(INSTALL_SH), "--frobnicate"], clean_env(tmp_path), check=False)
    assert bad.returncode == 1 and "unknown option: --frobnicate" in bad.stderr


def fake_nvidia_smi(folder: Path, cuda: str, driver: str, name: str = "NVIDIA GeForce RTX 4090") -> Path:
    """A stand-in for the driver's nvidia-smi that answers the two questions the installer asks."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(f"""#!/bin/sh
case "$1" in
  --query-gpu=*) echo "{name}, 24564 MiB, {driver}" ;;
  *) echo "| NVIDIA-SMI {driver}    Driver Version: {driver}    CUDA Version: {cuda}     |" ;;
esac
""")
    script.chmod(0o755)
    return folder


@pytest.mark.parametrize(("cuda", "driver", "build"), [("13.0", "580.65", "cu130"), ("12.8", "570.86", "cu128"),
                                                       ("12.4", "550.54", "cu126"), ("11.8", "520.61", "cpu")])
def test_the_pytorch_build_follows_the_driver(tmp_path, cuda, driver, build):
    bin_dir = fake_nvidia_smi(tmp_path / "bin", cuda, driver)
    env = clean_env(tmp_path, PATH=f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    out = sh(["bash", str(INSTALL_SH), "--detect"], env).stdout
    assert "GPU: NVIDIA GeForce RTX 4090, 24564 MiB" in out and f"CUDA (driver): {cuda}" in out
    assert f"PyTorch build: {build} (torch==2.13.0 from https://download.pytorch.org/whl/{build})" in out
    if build == "cpu":
        assert "Update the NVIDIA driver" in out
    # --cpu wins over any GPU
    assert "PyTorch build: cpu" in sh(["bash", str(INSTALL_SH), "--detect", "--cpu"], env).stdout


def test_no_gpu_means_the_cpu_build_and_says_so(tmp_path):
    env = clean_env(tmp_path, PATH=f"/usr/bin{os.pathsep}/bin")  # no nvidia-smi on this PATH
    if shutil.which("nvidia-smi", path=env["PATH"]):
        pytest.skip("this machine has a real nvidia-smi in /usr/bin")
    out = sh(["bash", str(INSTALL_SH), "--detect"], env).stdout
    assert "GPU: none found" in out and "PyTorch build: cpu" in out
    assert "No NVIDIA GPU found" in out or "driver is not installed" in out


def test_a_prefix_that_would_hold_the_runs_is_refused_and_nothing_is_deleted(tmp_path):
    home = tmp_path / "home"
    runs = home / ".local" / "share" / "lora-studio" / "runs" / "my-run"
    runs.mkdir(parents=True)
    (runs / "events.jsonl").write_text("{}\n")
    for prefix in (home / ".local" / "share" / "lora-studio", home):
        for action in ([], ["--uninstall"]):
            result = sh(["bash", str(INSTALL_SH), "--prefix", str(prefix), *action], clean_env(home), check=False)
            assert result.returncode == 1 and "would hold your own files" in result.stderr
            assert "what to do:" in result.stderr
    # a folder the installer did not make is neither filled nor removed
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.txt").write_text("mine")
    result = sh(["bash", str(INSTALL_SH), "--prefix", str(other), "--uninstall"], clean_env(home), check=False)
    assert result.returncode == 1 and "did not put there" in result.stderr
    assert (other / "thesis.txt").read_text() == "mine" and (runs / "events.jsonl").exists()


def test_the_desktop_entry_is_well_formed():
    text = (PACKAGING / "lora-studio.desktop").read_text()
    lines = text.splitlines()
    assert lines[0] == "[Desktop Entry]"
    keys = dict(line.split("=", 1) for line in lines[1:] if line and not line.startswith("#"))
    assert keys["Type"] == "Application" and keys["Name"] == "LoRA Studio" and keys["Terminal"] == "false"
    assert keys["Exec"] == "lora-studio" and keys["Icon"] == "lora-studio"
    assert keys["Categories"].endswith(";") and "Science" in keys["Categories"].split(";")
    for name in ("lora-studio.svg", "lora-studio.png", "lora-studio-48.png", "lora-studio.ico", "lora-studio.icns"):
        assert (ROOT / "resources" / "icons" / name).stat().st_size > 500


def test_the_installers_and_the_doctor_agree_on_the_pytorch_version():
    from studio.core import doctor

    sh_version = re.search(r'^TORCH_VERSION="([^"]+)"', INSTALL_SH.read_text(), re.M).group(1)
    ps_version = re.search(r'^\$TorchVersion = "([^"]+)"', (PACKAGING / "install.ps1").read_text(), re.M).group(1)
    readme = (ROOT / "README.md").read_text()
    assert sh_version == ps_version == "2.13.0" and f"torch=={sh_version}" in readme
    bnb_sh = re.search(r'^BNB_REQUIREMENT="([^"]+)"', INSTALL_SH.read_text(), re.M).group(1)
    assert bnb_sh == doctor.BNB_REQUIREMENT


def test_the_frozen_entry_point_runs_modules_like_python_dash_m(tmp_path):
    """Inside the frozen app the launcher starts `lora-studio -m studio.core.training.worker RUN_DIR`
    (and torchrun adds -u): frozen_main answers those the way `python -m` does."""
    main = str(PACKAGING / "frozen_main.py")
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(tmp_path))
    probe = tmp_path / "probe.py"
    probe.write_text("import sys, json; print(json.dumps({'argv': sys.argv, 'name': __name__}))\n")
    env["PYTHONPATH"] += os.pathsep + str(tmp_path)
    for prefix in ([], ["-u"]):
        out = sh([sys.executable, main, *prefix, "-m", "probe", "RUN_DIR", "--resume"], env).stdout
        seen = json.loads(out)  # as with python -m: argv[0] is the module's file
        assert seen["name"] == "__main__" and seen["argv"][1:] == ["RUN_DIR", "--resume"]
        assert seen["argv"][0] == str(probe)
    assert "LoRA Studio" in sh([sys.executable, main, "--version"], env).stdout
    plan = sh([sys.executable, main, "plan", "demo", "--gpu", "8GB", "--json"], env).stdout
    assert json.loads(plan)["memory"]["total_bytes"] > 0


@pytest.mark.skipif(sys.platform != "linux", reason="install.sh is the Linux installer")
def test_install_use_upgrade_and_uninstall_from_a_new_users_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env(home)
    prefix = home / ".local" / "share" / "lora-studio" / "app"
    launcher = prefix / "bin" / "lora-studio"

    first = sh(["bash", str(INSTALL_SH)], env, timeout=900)
    assert f"installing into {prefix}" in first.stdout and "is installed" in first.stdout
    if not shutil.which("nvidia-smi"):
        assert "PyTorch build: cpu" in first.stdout and "GPU: none found" in first.stdout
    # what it added: the environment, the command, the menu entry and its icons
    assert (home / ".local" / "bin" / "lora-studio").resolve() == launcher.resolve()
    entry = (home / ".local" / "share" / "applications" / "lora-studio.desktop").read_text()
    assert f"Exec={launcher}" in entry and f"TryExec={launcher}" in entry
    for icon in ("256x256/apps/lora-studio.png", "48x48/apps/lora-studio.png", "scalable/apps/lora-studio.svg"):
        assert (home / ".local" / "share" / "icons" / "hicolor" / icon).is_file()
    # the installed studio is not the checkout: it runs from its own environment and resources
    version = sh([str(launcher), "--version"], env).stdout
    assert version.startswith("LoRA Studio ")
    doctor = json.loads(sh([str(launcher), "doctor", "--json"], env).stdout)
    assert doctor["bitsandbytes"][0].isdigit() and doctor["runs_folder"] == str(home / ".local/share/lora-studio/runs")
    where = sh([str(prefix / "venv" / "bin" / "python"), "-c", "import studio; print(studio.__file__)"], env).stdout
    assert str(prefix) in where and str(ROOT) not in where
    plan = json.loads(sh([str(launcher), "plan", "demo", "--gpu", "8GB", "--json"], env).stdout)
    assert plan["memory"]["total_bytes"] > 0
    # the window starts from the installed command and paints its first page
    probe = tmp_path / "probe.json"
    sh([str(launcher)], dict(env, QT_QPA_PLATFORM="offscreen", STUDIO_STARTUP_PROBE=str(probe), STUDIO_STARTUP_EXIT="1"))
    assert json.loads(probe.read_text())["page"] == "model"
    # a real (tiny) run, so the user has something the uninstall must keep
    sh([str(launcher), "train", "--model", "demo", "--data", "demo", "--steps", "2", "--seq-len", "128",
        "--sample-every", "0", "--eval-every", "0", "--quiet", "--name", "keep-me"], env, timeout=300)
    runs = list((home / ".local" / "share" / "lora-studio" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "adapter" / "adapter_model.safetensors").is_file()

    again = sh(["bash", str(INSTALL_SH)], env, timeout=900)
    assert f"upgrading {prefix}" in again.stdout and "is installed" in again.stdout
    assert "switching PyTorch" not in again.stdout  # same build: nothing reinstalled

    gone = sh(["bash", str(INSTALL_SH), "--uninstall"], env)
    assert "Your runs are still in" in gone.stdout
    assert not prefix.exists() and not (home / ".local" / "bin" / "lora-studio").exists()
    assert not (home / ".local" / "share" / "applications" / "lora-studio.desktop").exists()
    assert not list((home / ".local" / "share" / "icons").rglob("lora-studio.*"))
    assert (runs[0] / "adapter" / "adapter_model.safetensors").is_file() and (runs[0] / "run.toml").is_file()
    # and uninstalling twice is harmless
    assert "Nothing to remove" in sh(["bash", str(INSTALL_SH), "--uninstall"], env).stdout
