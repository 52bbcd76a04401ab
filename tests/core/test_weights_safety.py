"""Pickled or damaged weights are never loaded behind the user's back: training, merging and trying
decide from the files transformers and PEFT will really read (studio/core/weights.py).

The pickle below writes a marker file when it is unpickled; no path may create it.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from studio.core import export, paths, runs, weights
from studio.core.errors import StudioError
from studio.core.recipe import DataSection
from studio.core.training.events import read_events
from tests.demo_runs import demo_recipe, train_in_process

pytestmark = pytest.mark.slow


class _Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pickle code ran')",))


def payload(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def test_the_payload_is_live(tmp_path):
    """The test's pickle really runs code when a loader unpickles it."""
    pickle.loads(payload(tmp_path / "proof"))
    assert (tmp_path / "proof").read_text() == "pickle code ran"


def recipe(model: Path, name: str, runs_dir: Path):
    return demo_recipe(name, model=str(model), data=DataSection(source="demo", eval_fraction=0.0), runs_dir=runs_dir,
                       steps=2, batch_size=2, seq_len=128, save_every=2)


def train(config, home: Path) -> tuple[int, dict]:
    run_dir, code = train_in_process(config, home)
    finished = [e for e in read_events(run_dir / runs.EVENTS) if e["type"] == "finished"][-1]
    return code, finished


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-step run on a private copy of the demo model, which the tests then tamper with."""
    root = tmp_path_factory.mktemp("weights-safety")
    base = root / "base"
    shutil.copytree(paths.demo_model_dir(), base)
    code, finished = train(recipe(base, "clean", root / "runs"), root)
    assert code == 0 and finished["status"] == "completed", finished
    run_dir = next((root / "runs").iterdir())
    return root, base, run_dir


@pytest.fixture()
def pickled_beside_safetensors(trained):
    """The base folder as a hostile download leaves it: a safetensors file under a name transformers
    does not look for, and the pickle it falls back to."""
    root, base, run_dir = trained
    marker = root / "MARKER"
    (base / "model.safetensors").rename(base / "consolidated.safetensors")
    (base / "pytorch_model.bin").write_bytes(payload(marker))
    yield root, base, run_dir, marker
    (base / "pytorch_model.bin").unlink()
    (base / "consolidated.safetensors").rename(base / "model.safetensors")
    assert not marker.exists()


def test_the_decision_follows_transformers_file_names(tmp_path):
    (tmp_path / "consolidated.safetensors").write_bytes(b"")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    assert weights.base_weights(tmp_path).kind == "pickle"
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": {"a": "model-00001-of-00002.safetensors"}}')
    found = weights.base_weights(tmp_path)
    assert found.kind == "safetensors" and [p.name for p in found.files] == ["model-00001-of-00002.safetensors"]
    (tmp_path / "adapter_model.bin").write_bytes(b"")
    assert weights.adapter_weights(tmp_path).kind == "pickle"


def test_training_refuses_a_pickle_hidden_behind_other_safetensors(pickled_beside_safetensors):
    root, base, _run, marker = pickled_beside_safetensors
    code, finished = train(recipe(base, "hostile", root / "runs"), root)
    assert code == 2 and finished["error"]["kind"] == "bad_input", finished
    assert "pytorch_model.bin" in finished["error"]["message"] and "--allow-pickle" in finished["error"]["advice"]
    assert not marker.exists()


def test_merging_refuses_a_pickle_hidden_behind_other_safetensors(pickled_beside_safetensors, tmp_path):
    _root, _base, run_dir, marker = pickled_beside_safetensors
    with pytest.raises(StudioError, match="pickled"):
        export.export_run(run_dir, tmp_path / "merged", merged=True)
    assert not marker.exists() and not (tmp_path / "merged").exists()


def test_trying_refuses_a_pickle_hidden_behind_other_safetensors(pickled_beside_safetensors):
    from studio.core.generate import TryModel

    _root, _base, run_dir, marker = pickled_beside_safetensors
    with pytest.raises(StudioError, match="pickled"):
        TryModel.load(run_dir / runs.ADAPTER)
    assert not marker.exists()


def test_trying_refuses_a_pickled_adapter(trained, tmp_path):
    from studio.core.generate import TryModel

    _root, _base, run_dir = trained
    adapter = tmp_path / "adapter"
    shutil.copytree(run_dir / runs.ADAPTER, adapter)
    (adapter / "adapter_model.safetensors").unlink()
    (adapter / "adapter_model.bin").write_bytes(payload(tmp_path / "MARKER"))
    with pytest.raises(StudioError, match="pickled"):
        TryModel.load(adapter)
    assert not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize("cut", [0, 100, -1000])
def test_a_damaged_weight_file_is_bad_input_naming_it(trained, tmp_path, cut):
    """Zero bytes, a header cut short, data cut short: a plain message naming the file, never a crash."""
    _root, base, run_dir = trained
    damaged = tmp_path / "damaged"
    shutil.copytree(base, damaged)
    data = (base / "model.safetensors").read_bytes()
    (damaged / "model.safetensors").write_bytes(data[:cut] if cut >= 0 else data[:len(data) + cut])
    assert weights.safetensors_problem(damaged / "model.safetensors")
    code, finished = train(recipe(damaged, "damaged", tmp_path / "runs"), tmp_path)
    assert code == 2 and finished["error"]["kind"] == "bad_input", finished
    assert "model.safetensors" in finished["error"]["message"] and "resume" not in finished["error"]["advice"].lower()
    from studio.core.generate import TryModel

    with pytest.raises(StudioError, match="damaged"):
        TryModel.load(run_dir / runs.ADAPTER, base=str(damaged))
