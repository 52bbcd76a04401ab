"""A new user's path with their own CSV, on a real X display: run by hand, not in CI.

    python benchmarks/walkthrough.py [--size 1280x800] [--shots docs/screenshots] [--keep]
    python benchmarks/walkthrough.py --gguf [--size 1024x700] [--shots docs/screenshots]
    python benchmarks/walkthrough.py --data tool-calls.jsonl [--seq-len 1024] [--size 1024x700] [--shots docs/screenshots]

Starts Xvfb and the openbox window manager, opens the studio (the demo model) on that display, and
drives it with real mouse clicks and keystrokes (xdotool, through the X server and the window
manager): a CSV whose columns the studio does not recognise (`frage`, `antwort`) is typed into the
Data page, its columns are mapped with the pickers, the run trains, and the adapter is exported.
Screenshots of the real screen (ImageMagick's `import`) go to --shots; the export is then loaded
with PEFT to prove it is a working adapter. Needs: xvfb openbox xdotool imagemagick
(`apt-get install -y xvfb openbox xdotool imagemagick libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1`).

--gguf takes a finished run of the demo model (trained first, in this process) to Try & export: ticks
q8_0 beside the default q4_k_m and the Ollama Modelfile, exports GGUF through the panel (a shot while it
runs, one with each file's check in llama.cpp: export-gguf-WxH), then asks a question and reads the
three columns — base, fine-tuned and the exported GGUF file in llama.cpp (try-three-columns-WxH).
Needs the GGUF extra (pip install 'lora-studio[gguf]').

--data FILE types FILE into the Data page (demo model) and shoots the page with its report, the
Examples tab (data-<file name>-WxH) and the Problems tab (data-<file name>-problems-WxH); --seq-len
types a sequence length first (the demo's 256 tokens cut rows with a tool schema).

The studio runs in this process so that the script can find where each control is on the screen
(Qt's own geometry) and wait for what the window shows; every input still arrives as X events.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def start_display(size: str) -> tuple[str, list[subprocess.Popen]]:
    for tool in ("Xvfb", "openbox", "xdotool", "import"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install -y xvfb openbox xdotool imagemagick")
    display = f":{90 + os.getpid() % 7}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    env = dict(os.environ, DISPLAY=display)
    wm = subprocess.Popen(["openbox"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return display, [wm, xvfb]


def write_csv(path: Path) -> int:
    """The demo's plant questions and answers under column names no format knows."""
    from studio.core.data import load_data

    rows = [(r["messages"][-2]["content"], r["messages"][-1]["content"]) for r in load_data("demo").dataset]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frage", "antwort"])
        writer.writerows(rows)
    return len(rows)


class Driver:
    """Real X input at the place Qt says a widget is; waits pump Qt's event loop."""

    def __init__(self, app, display: str, shots: Path, size: str):
        self.app, self.env, self.shots, self.size = app, dict(os.environ, DISPLAY=display), shots, size
        self.log: list[str] = []

    def xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, check=True)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def wait(self, condition, timeout: float, what: str):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = condition()
            if value:
                return value
            self.pump(0.05)
        self.shot("timed-out")
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what} (the screen: {self.shots / 'timed-out.png'})")

    def reveal(self, widget) -> None:
        """Scroll the page with the mouse wheel (real X events) until `widget` is in view, as a user would."""
        from PySide6.QtCore import QRect
        from PySide6.QtWidgets import QScrollArea

        area = widget.parentWidget()
        while area is not None and not isinstance(area, QScrollArea):
            area = area.parentWidget()
        if area is None:
            return
        port = area.viewport()
        for _ in range(40):
            top_left = widget.mapTo(port, widget.rect().topLeft())
            place = QRect(top_left, widget.size())
            if port.rect().contains(place) or (place.height() > port.height() and place.top() <= 0 <= place.bottom()):
                return
            centre = port.mapToGlobal(port.rect().center())
            self.xdotool("mousemove", str(centre.x()), str(centre.y()), "click", "5" if place.bottom() > port.height() else "4")
            self.pump(0.1)
        self.log.append(f"scrolled {type(widget).__name__} into view")

    def click(self, widget, what: str) -> None:
        self.reveal(widget)
        point = widget.mapToGlobal(widget.rect().center())
        self.xdotool("mousemove", str(point.x()), str(point.y()), "click", "1")
        self.log.append(f"click {what} at {point.x()},{point.y()}")
        self.pump(0.4)

    def click_at(self, widget, point, what: str) -> None:
        """A click at `point` in `widget`'s coordinates (a tab, a cell)."""
        at = widget.mapToGlobal(point)
        self.xdotool("mousemove", str(at.x()), str(at.y()), "click", "1")
        self.log.append(f"click {what} at {at.x()},{at.y()}")
        self.pump(0.4)

    def type(self, text: str, then: str | None = None) -> None:
        self.xdotool("type", "--delay", "15", text)
        if then:
            self.xdotool("key", then)
        self.log.append(f"type {text!r}" + (f" + {then}" if then else ""))
        self.pump(0.4)

    def key(self, keys: str) -> None:
        self.xdotool("key", keys)
        self.log.append(f"key {keys}")
        self.pump(0.5)

    def shot(self, name: str) -> Path:
        self.pump(0.5)
        path = self.shots / f"{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], env=self.env, check=True)
        self.log.append(f"screenshot {path}")
        return path


def _open_window(size: str, shots: Path):
    """(app, window, driver): the studio's window on the display, with the demo model and data loaded."""
    from studio.ui.app import create_app
    from studio.ui.main_window import MainWindow

    app = create_app()
    window = MainWindow(model="demo", data="demo")
    window.close_policy = "stop"
    window.show()
    d = Driver(app, os.environ["DISPLAY"], shots, size)
    state = window.state
    d.wait(lambda: state.data is not None and state.model is not None, 180, "the demo model and data")
    return app, window, d


def walk(size: str, shots: Path, home: Path, suffix: str) -> dict:
    data = home / "my-plants.csv"
    rows = write_csv(data)
    app, window, d = _open_window(size, shots)
    state = window.state
    d.pump(1.0)
    facts: dict = {"size": size, "rows": rows, "window": f"{window.width()}x{window.height()}", "log": d.log}

    # ---- 2. Data: the user's CSV, columns mapped with the pickers ----
    d.key("ctrl+2")
    page = window.page("data")
    d.click(page.source, "the data field")
    d.key("ctrl+a")
    d.type(str(data), then="Return")
    d.wait(lambda: page.pickers.isVisible() and "frage" in [page.pickers.combos["prompt"].itemText(i)
                                                           for i in range(page.pickers.combos["prompt"].count())],
           120, "the column pickers")
    d.shot(f"data-unmapped{suffix}")
    for role, column in (("prompt", "frage"), ("response", "antwort")):
        d.click(page.pickers.combos[role], f"the {role} picker")
        d.type(column, then="Return")
    d.wait(lambda: state.data is not None and state.data.report.get("usable") and state.config.data.mapping, 180,
           "the mapped data")
    facts["mapping"] = dict(state.config.data.mapping)
    facts["rows_kept"] = state.data.report.get("rows")
    d.shot(f"data{suffix}")

    # ---- 4. Memory ----
    d.key("ctrl+4")
    d.shot(f"memory{suffix}")
    if suffix:  # the smaller screen: the pages the issue names, no training
        too_large(d, window, f"memory_suggestions{suffix}")
        return facts

    # ---- 5. Train ----
    d.key("ctrl+5")
    train = window.page("train")
    d.click(train.start_button, "Start")
    d.wait(lambda: train.running, 60, "the run to start")
    d.wait(lambda: not train.running, 900, "the run to finish")
    d.pump(1.5)
    run_dir = train.run_dir
    if run_dir is None or not (run_dir / "adapter" / "adapter_model.safetensors").is_file():
        raise SystemExit(f"the run did not save an adapter: {run_dir}")
    facts["run"] = str(run_dir)
    facts["train"] = train.summary()
    d.shot("train")

    # ---- 6. Try & export ----
    d.key("ctrl+6")
    try_page = window.page("try")
    target = home / "export" / "plant-doctor"
    d.click(try_page.destination, "the export folder")
    d.type(str(target))
    d.click(try_page.export_buttons["adapter"], "Export adapter")
    d.wait(lambda: (target / "studio-export.json").is_file(), 120, "the export")
    d.pump(1.0)
    d.shot("try_export")
    facts["export"] = sorted(p.name for p in target.iterdir())
    for key, name in (("adapter", "adapter"), ("runs", "runs")):
        window.show_page(key)
        d.pump(0.8)
        d.shot(name)
    too_large(d, window, "memory_suggestions")
    window.close()
    d.pump(0.5)
    return facts


def walk_gguf(size: str, shots: Path, home: Path) -> dict:
    """A finished demo run → GGUF export through the panel → the three-column Try (see the module's docstring)."""
    from tests.demo_runs import finished_demo_run

    studio_home = Path(os.environ["STUDIO_HOME"])
    run_dir = finished_demo_run(studio_home, "plant-doctor", steps=30)
    app, window, d = _open_window(size, shots)
    state = window.state
    facts: dict = {"size": size, "run": str(run_dir), "window": f"{window.width()}x{window.height()}", "log": d.log}
    d.key("ctrl+6")
    page = window.page("try")
    panel = page.exports
    d.wait(lambda: state.current_run == run_dir and page.ask_button.isEnabled(), 60, "the run on the Try page")
    d.wait(lambda: "·" in panel.gguf_boxes["q8_0"].text(), 60, "the GGUF sizes")
    if panel.gguf_missing_error is not None:
        raise SystemExit(f"{panel.gguf_missing_error.message} {panel.gguf_missing_error.advice}")
    d.click(panel.gguf_boxes["q8_0"], "q8_0")
    d.click(panel.ollama_box, "Ollama Modelfile")
    target = home / "export" / "plant-doctor-gguf"
    d.click(page.destination, "the export folder")
    d.type(str(target))
    d.click(panel.export_buttons["gguf"], "Export GGUF")
    d.wait(lambda: panel.export_progress.value() >= 45, 120, "the GGUF file being written")
    suffix = f"-{size}"
    d.shot(f"export-gguf-running{suffix}")
    d.wait(lambda: not panel.exporting, 600, "the GGUF export")
    d.pump(1.0)
    d.reveal(panel.gguf_checks)
    facts["export"] = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    facts["checks"] = panel.gguf_checks.text()
    d.shot(f"export-gguf{suffix}")
    d.click(page.prompt, "the question")
    d.key("ctrl+a")
    d.type("My prayer plant has brown leaf tips. What should I do?")
    d.click(page.ask_button, "Ask all three")
    d.wait(lambda: not page._asking(), 300, "the three answers")
    d.pump(1.0)
    d.reveal(page.run_combo)  # the page from its top: the question and the three answers
    facts["answers"] = {"base": page.answers["base"], "fine-tuned": page.answers["adapter"], "gguf": page.gguf_answer,
                        "gguf_status": page.gguf_status.text()}
    d.shot(f"try-three-columns{suffix}")
    window.close()
    d.pump(0.5)
    return facts


def walk_data(size: str, shots: Path, data: Path, seq_len: int | None) -> dict:
    """The Data page with the user's FILE (see the module's docstring)."""
    app, window, d = _open_window(size, shots)
    state = window.state
    facts: dict = {"size": size, "data": str(data), "window": f"{window.width()}x{window.height()}", "log": d.log}
    d.key("ctrl+2")
    page = window.page("data")
    if seq_len:
        d.click(page.seq_len, "the sequence length")
        d.key("ctrl+a")
        d.type(str(seq_len), then="Return")
        d.wait(lambda: state.config.training.seq_len == seq_len, 10, "the sequence length")
    d.click(page.source, "the data field")
    d.key("ctrl+a")
    d.type(str(data), then="Return")
    d.wait(lambda: state.config.data.source == str(data) and not page.busy.isVisible()
           and (state.data is not None or state.data_failure is not None), 180, "the data report")
    d.pump(1.0)
    report = state.data.report if state.data is not None else {}
    facts["layout"] = report.get("layout", {}).get("words")
    facts["problems"] = [p.get("kind") for p in report.get("problems", [])]
    name = f"data-{data.stem}-{size}"
    d.shot(name)
    d.reveal(page.tabs.tabBar())
    d.click_at(page.tabs.tabBar(), page.tabs.tabBar().tabRect(1).center(), "the Problems tab")
    d.shot(f"{name.replace(size, '')}problems-{size}")
    window.close()
    d.pump(0.5)
    return facts


def too_large(d: Driver, window, shot: str) -> None:
    """Llama 3.1 8B from the catalog on an 8 GB card: the Model page's card and the Memory page's fixes."""
    d.key("ctrl+1")
    model = window.page("model")
    d.click(model.search, "the model search")
    d.type("Llama 3.1 8B")
    d.click(model.tree, "the model list")
    d.key("Home")
    d.key("Return")
    d.wait(lambda: window.state.model is not None and "8B" in window.state.model.name, 60, "Llama 3.1 8B")
    d.key("ctrl+4")
    d.click(window.page("memory").gpu, "the card size")
    d.type("An 8 GB", then="Return")
    d.wait(lambda: window.state.gpu.bytes == 8 * 1024**3, 20, "the 8 GB card")
    d.shot(shot)
    d.key("ctrl+1")
    d.shot(shot.replace("memory_suggestions", "model"))


def prove_export(folder: Path) -> str:
    """The exported adapter loads onto the demo base with PEFT and changes its logits."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.core.paths import demo_model_dir

    base = AutoModelForCausalLM.from_pretrained(str(demo_model_dir()), dtype=torch.float32)
    ids = torch.tensor([[5, 17, 99, 250, 31]])
    with torch.no_grad():
        before = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, str(folder))
        after = tuned(input_ids=ids).logits
    return f"max logit change {float((after - before).abs().max()):.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x800", help="the screen: 1280x800 (the whole path) or 1024x700 (Data, Memory)")
    parser.add_argument("--shots", type=Path, default=Path(tempfile.gettempdir()) / "studio-walkthrough")
    parser.add_argument("--keep", action="store_true", help="keep the temporary studio home (runs, export)")
    parser.add_argument("--gguf", action="store_true", help="a finished demo run: GGUF export and the three-column Try")
    parser.add_argument("--data", type=Path, metavar="FILE", help="only the Data page, with this data file (its report, "
                        "examples and problems)")
    parser.add_argument("--seq-len", type=int, help="with --data: the sequence length typed first")
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="studio-walk-"))
    display, processes = start_display(args.size)
    os.environ.update(DISPLAY=display, QT_QPA_PLATFORM="xcb", STUDIO_HOME=str(home / "studio"), HF_HUB_OFFLINE="1")
    os.environ.pop("WAYLAND_DISPLAY", None)
    started = time.monotonic()
    try:
        suffix = "" if args.size == "1280x800" else f"-{args.size.split('x')[0]}"
        if args.data:
            facts = walk_data(args.size, args.shots, args.data.resolve(), args.seq_len)
        elif args.gguf:
            facts = walk_gguf(args.size, args.shots, home)
        else:
            facts = walk(args.size, args.shots, home, suffix)
        if "export" in facts and not args.gguf:
            facts["peft"] = prove_export(home / "export" / "plant-doctor")
    finally:
        for p in processes:
            p.terminate()
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    facts["seconds"] = round(time.monotonic() - started, 1)
    print(f"$ python benchmarks/walkthrough.py --size {args.size} --shots {args.shots}")
    print(json.dumps({k: v for k, v in facts.items() if k != "log"}, indent=2))
    print("\n".join(facts.get("log", [])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
