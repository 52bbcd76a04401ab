"""`studio data inspect FILE --json` on data as other tools export it (issue #18), timed as a user runs it.

Writes two files of --rows rows each into a temporary folder:

- tool calling, OpenAI's fine-tuning format: `messages` with assistant `tool_calls` (arguments as JSON
  strings, content null), `tool` results and a top-level `tools` list of 3 schemas; one call, parallel calls
  (2–3 in one turn) or a second user turn with its own call (1–3 calls a row); German, French, Spanish,
  Russian and Japanese text; about 2% exact duplicates and a few broken rows (arguments that are not JSON,
  a call on a user turn, an empty final answer);
- preference pairs, TRL's conversational layout: `prompt` / `chosen` / `rejected` as message lists, a third
  of the prompts multi-turn (system, user, assistant, user).

Each file is inspected by the `studio` command in a fresh process — first with an empty cache (STUDIO_HOME
pointed at a new folder, so the loader's Arrow cache is cold), then again (cached) — and the wall time and
peak resident memory (os.wait4's ru_maxrss of that process) are measured. A 3-row file gives the start-up
cost (Python, torch and the tokenizer) that every run pays.

    python benchmarks/data_layouts.py [--rows 50000] [--model demo] [--results benchmarks/RESULTS.md]

With --results, the table goes between `<!-- data-layouts:start -->` and `<!-- data-layouts:end -->` in that
file (a new section at its end when the markers are absent).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- data-layouts:start -->", "<!-- data-layouts:end -->"
HEADING = "## Data as other tools export it: `studio data inspect --json` on tool calls and preference pairs"

CITIES = ["Berlin", "München", "Zürich", "Paris", "Lyon", "Madrid", "Sevilla", "Москва", "Казань", "東京", "大阪", "Wien"]
CURRENCIES = ["EUR", "USD", "JPY", "CHF", "RUB", "GBP"]
CUISINES = ["italienisch", "japonaise", "española", "грузинская", "和食", "vegetarisch"]
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Das aktuelle Wetter einer Stadt",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                       "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "convert_currency", "description": "Convertit un montant d'une devise à une autre",
        "parameters": {"type": "object", "properties": {"amount": {"type": "number"}, "from": {"type": "string"},
                                                        "to": {"type": "string"}},
                       "required": ["amount", "from", "to"]}}},
    {"type": "function", "function": {
        "name": "find_restaurant", "description": "Busca restaurantes en una ciudad",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "cuisine": {"type": "string"},
                                                        "max_price": {"type": "integer"}},
                       "required": ["city"]}}},
]
SYSTEMS = ["Du bist ein hilfreicher Reiseassistent.", "Tu es un assistant de voyage concis.",
           "Eres un asistente que usa herramientas cuando hace falta.", "Ты — вежливый помощник в путешествиях.",
           "あなたは旅行アシスタントです。"]


def _call(rng: random.Random, n: int) -> tuple[dict, str, str]:
    """One function call in OpenAI's layout, its tool result and a sentence about the result."""
    kind = rng.randrange(3)
    city = rng.choice(CITIES)
    if kind == 0:
        args, temp = {"city": city, "unit": "celsius"}, rng.randint(-15, 35)
        result = {"city": city, "temperature": temp, "sky": rng.choice(["bewölkt", "ensoleillé", "lluvioso", "ясно", "晴れ"])}
        said = f"In {city} sind es {temp} °C."
    elif kind == 1:
        amount, src, dst = rng.randint(5, 5000), rng.choice(CURRENCIES), rng.choice(CURRENCIES)
        args = {"amount": amount, "from": src, "to": dst}
        result = {"amount": round(amount * rng.uniform(0.005, 160), 2), "currency": dst}
        said = f"{amount} {src} font {result['amount']} {dst}."
    else:
        args = {"city": city, "cuisine": rng.choice(CUISINES), "max_price": rng.randint(10, 90)}
        names = [f"Casa {rng.choice(['Lola', 'Pepe', 'Sol'])}", f"Chez {rng.choice(['Marie', 'Paul'])}", "鮨 さいとう"]
        result = {"results": rng.sample(names, 2)}
        said = f"En {city} recomiendo {result['results'][0]} y {result['results'][1]}."
    call = {"id": f"call_{n}", "type": "function",
            "function": {"name": TOOLS[kind]["function"]["name"], "arguments": json.dumps(args, ensure_ascii=False)}}
    return call, json.dumps(result, ensure_ascii=False), said


QUESTIONS = ["Kannst du mir helfen? Ich plane eine Reise und brauche ein paar Auskünfte.",
             "J'organise un voyage la semaine prochaine, peux-tu vérifier quelques choses pour moi ?",
             "¿Me ayudas a preparar mi viaje? Necesito varios datos antes de salir.",
             "Помоги мне спланировать поездку, пожалуйста.",
             "来週旅行に行きます。いくつか調べてもらえますか？"]


def _tool_turns(rng: random.Random, calls: int, first_id: int) -> list[dict]:
    """A user question, the assistant's call(s) in one turn (parallel when more than one), the results, the answer."""
    made = [_call(rng, first_id + i) for i in range(calls)]
    assistant = {"role": "assistant", "content": None, "tool_calls": [c for c, _, _ in made]}
    if rng.random() < 0.2:
        assistant["content"] = rng.choice(["Ich sehe nach.", "Je vérifie.", "Un momento.", "Сейчас проверю.", "確認します。"])
    turns = [{"role": "user", "content": rng.choice(QUESTIONS) + f" ({rng.randint(1, 10**6)})"}, assistant]
    turns += [{"role": "tool", "tool_call_id": c["id"], "content": result} for c, result, _ in made]
    turns.append({"role": "assistant", "content": " ".join(said for _, _, said in made)})
    return turns


def tool_row(rng: random.Random) -> dict:
    shape = rng.random()
    if shape < 0.45:  # one call
        turns = _tool_turns(rng, 1, 1)
    elif shape < 0.75:  # parallel calls in one turn
        turns = _tool_turns(rng, rng.choice([2, 3]), 1)
    else:  # two user turns, each with its call(s): 2–3 calls in all
        turns = _tool_turns(rng, 1, 1) + _tool_turns(rng, rng.choice([1, 2]), 2)
    if rng.random() < 0.6:
        turns = [{"role": "system", "content": rng.choice(SYSTEMS)}] + turns
    return {"messages": turns, "tools": TOOLS}


def broken_tool_row(rng: random.Random, kind: int) -> dict:
    row = tool_row(rng)
    turns = row["messages"]
    calling = next(t for t in turns if t.get("tool_calls"))
    if kind == 0:  # arguments cut off: not JSON
        calling["tool_calls"][0]["function"]["arguments"] = calling["tool_calls"][0]["function"]["arguments"][:-3]
    elif kind == 1:  # a call on the user's turn
        user = next(t for t in turns if t["role"] == "user")
        user["tool_calls"] = calling["tool_calls"]
    else:  # an empty final answer
        turns[-1]["content"] = ""
    return row


PREF_Q = ["Wie oft sollte ich einen Farn gießen?", "Comment rempoter une orchidée ?", "¿Cuánta luz necesita un cactus?",
          "Почему желтеют листья у фикуса?", "モンステラの植え替えはいつがいいですか？"]
PREF_GOOD = ["Halte die Erde gleichmäßig feucht, aber nie nass; im Winter etwas weniger.",
             "Au printemps, dans un pot à peine plus grand, avec un substrat pour orchidées bien drainé.",
             "Mucha: al menos cuatro horas de sol directo al día, junto a una ventana luminosa.",
             "Чаще всего из-за перелива: дайте верхнему слою почвы подсохнуть между поливами.",
             "春から初夏が最適です。一回り大きい鉢に、水はけのよい土で植え替えてください。"]
PREF_BAD = ["Einmal im Monat reicht.", "N'importe quand, ce n'est pas important.", "Ninguna, vive en la oscuridad.",
            "Это нормально, ничего не делайте.", "いつでも大丈夫です。"]


def preference_row(rng: random.Random, i: int) -> dict:
    k = rng.randrange(len(PREF_Q))
    prompt = [{"role": "user", "content": f"{PREF_Q[k]} ({i})"}]
    if rng.random() < 0.33:  # multi-turn prompt
        j = rng.randrange(len(PREF_Q))
        prompt = [{"role": "system", "content": rng.choice(SYSTEMS)}, {"role": "user", "content": PREF_Q[j]},
                  {"role": "assistant", "content": PREF_GOOD[j]}] + prompt
    good = PREF_GOOD[k] + " " + " ".join(rng.sample(PREF_GOOD, 2))
    return {"prompt": prompt, "chosen": [{"role": "assistant", "content": good}],
            "rejected": [{"role": "assistant", "content": PREF_BAD[k]}]}


def write_tool_file(path: Path, rows: int, seed: int = 0) -> dict:
    """`rows` lines: about 2% copies of an earlier row, one broken row in 5,000 (at least 3)."""
    rng = random.Random(seed)
    broken_every = max(2, min(5000, rows // 3))
    written, copies, broken = [], 0, 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            if i % broken_every == broken_every - 1:
                line = json.dumps(broken_tool_row(rng, broken % 3), ensure_ascii=False)
                broken += 1
            elif written and rng.random() < 0.02:
                line = rng.choice(written)
                copies += 1
            else:
                line = json.dumps(tool_row(rng), ensure_ascii=False)
                if len(written) < 2000:
                    written.append(line)
            fh.write(line + "\n")
    return {"rows": rows, "copies": copies, "broken": broken, "bytes": path.stat().st_size}


def write_preference_file(path: Path, rows: int, seed: int = 1) -> dict:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            fh.write(json.dumps(preference_row(rng, i), ensure_ascii=False) + "\n")
    return {"rows": rows, "copies": 0, "broken": 0, "bytes": path.stat().st_size}


def studio_command() -> list[str]:
    """The command a user runs: the virtual environment's `studio`, else `python -m studio`."""
    script = Path(sys.executable).parent / "studio"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    venv = ROOT / ".venv" / "bin" / "studio"
    if venv.is_file():
        return [str(venv)]
    return [sys.executable, "-m", "studio"]


def inspect(path: Path, home: Path, model: str, log: Path) -> dict:
    """`studio data inspect PATH --json` in a fresh process: its JSON, exit code, wall seconds and peak RSS."""
    env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    cmd = studio_command() + ["data", "inspect", str(path), "--json"] + (["--model", model] if model != "demo" else [])
    with log.open("wb") as out, (log.with_suffix(".err")).open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = log.read_text(encoding="utf-8")
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        tail = log.with_suffix(".err").read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"`{' '.join(cmd)}` printed no JSON (exit {proc.returncode}):\n{stdout[-1000:]}\n{tail}") from None
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return {"report": report, "rc": proc.returncode, "seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "peak": peak}


def said(run: dict) -> str:
    return f"{run['seconds']:.1f} s ({run['cpu']:.1f} s CPU), peak RSS {run['peak'] / 2**20:.0f} MiB, exit {run['rc']}"


def model_flag(model: str) -> str:
    return "" if model == "demo" else f" --model {model}"


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpu, ram = platform.processor() or platform.machine(), ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        ram = f", {kib / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{cores} CPU cores ({cpu}){ram}, no GPU; Python {platform.python_version()}, {platform.system()}"


def table(results: list[dict]) -> str:
    lines = ["| file | rows written | size | kept | dropped (duplicates) | layout | cold | cached | CPU cold / cached | "
             "peak RSS cold | peak RSS cached |", "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        rep = r["cold"]["report"]
        layout = rep.get("layout", {}).get("name", "refused")
        lines.append(f"| {r['name']} | {r['written']['rows']:,} | {r['written']['bytes'] / 1e6:.1f} MB | "
                     f"{rep.get('rows', 0):,} | {rep.get('rows_dropped', 0):,} ({rep.get('duplicates', 0):,}) | {layout} | "
                     f"{r['cold']['seconds']:.1f} s | {r['cached']['seconds']:.1f} s | "
                     f"{r['cold']['cpu']:.0f} / {r['cached']['cpu']:.0f} s | {r['cold']['peak'] / 2**20:.0f} MiB | "
                     f"{r['cached']['peak'] / 2**20:.0f} MiB |")
    return "\n".join(lines)


def notes(results: list[dict], startup: dict | None) -> list[str]:
    out = []
    for r in results:
        rep = r["cold"]["report"]
        if not rep.get("usable", False) and "layout" not in rep:
            out.append(f"{r['name']}: refused (exit {r['cold']['rc']}): {rep.get('error')}")
            continue
        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(rep.get("problem_counts", {}).items())) or "none"
        st = rep["stats"]
        out.append(f"{r['name']}: \"{rep['layout']['words']}\" — problems by kind: {kinds}; tokens {st['total_tokens']:,} "
                   f"(median {st['median']:.0f}, max {st['max']}); exit {r['cold']['rc']}, cached run the same report: "
                   f"{_same(r)}.")
        if r["written"]["copies"] or r["written"]["broken"]:
            out.append(f"{r['name']}: written with {r['written']['copies']:,} copies of earlier rows and "
                       f"{r['written']['broken']} broken rows.")
    if hasattr(os, "getloadavg"):
        out.append(f"load average when the runs ended: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other processes "
                   "running beside it stretch the wall times; the CPU times much less).")
    if startup:
        out.append(f"start-up: a 3-row file takes {startup['seconds']:.1f} s and {startup['peak'] / 2**20:.0f} MiB "
                   f"(Python, torch, the tokenizer); every run above includes it.")
    return out


def _same(r: dict) -> str:
    a, b = r["cold"]["report"], r["cached"]["report"]
    keys = ("rows", "rows_dropped", "duplicates", "layout", "problem_counts")
    return "yes" if all(a.get(k) == b.get(k) for k in keys) else "NO"


def write_results(path: Path, body: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    block = f"{START}\n{body}\n{END}"
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{block}\n"
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000, help="rows in each file (default 50,000)")
    parser.add_argument("--model", default="demo", help="whose tokenizer and chat template (default: the demo model)")
    parser.add_argument("--no-startup", action="store_true", help="skip timing the 3-row file")
    parser.add_argument("--keep", type=Path, help="write the files into this folder and keep them")
    parser.add_argument("--results", type=Path, help="write the table into this markdown file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="data-layouts-"))
    folder = args.keep or work
    folder.mkdir(parents=True, exist_ok=True)
    print(f"command: {' '.join(studio_command())} data inspect FILE --json{model_flag(args.model)}", flush=True)
    results, startup = [], None
    try:
        if not args.no_startup:
            tiny = folder / "three.jsonl"
            tiny.write_text("".join(json.dumps(preference_row(random.Random(i), i), ensure_ascii=False) + "\n"
                                    for i in range(3)), encoding="utf-8")
            startup = inspect(tiny, work / "home-startup", args.model, work / "startup.out")
            print(f"start-up (3 rows): {startup['seconds']:.1f} s, {startup['peak'] / 2**20:.0f} MiB", flush=True)
        for name, writer in (("tool calls (OpenAI)", write_tool_file), ("preference (TRL)", write_preference_file)):
            path = folder / ("tool_calls.jsonl" if writer is write_tool_file else "preference.jsonl")
            t0 = time.perf_counter()
            written = writer(path, args.rows)
            print(f"{name}: wrote {written['rows']:,} rows, {written['bytes'] / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            home = work / f"home-{path.stem}"  # a cache of its own: the first run is cold
            cold = inspect(path, home, args.model, work / f"{path.stem}.cold.out")
            print(f"  cold:   {said(cold)}", flush=True)
            cached = inspect(path, home, args.model, work / f"{path.stem}.cached.out")
            print(f"  cached: {said(cached)}", flush=True)
            results.append({"name": name, "written": written, "cold": cold, "cached": cached})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    body = table(results)
    lines = notes(results, startup)
    print()
    print(body)
    print()
    print("\n".join(f"- {n}" for n in lines))
    if args.results:
        command = "python benchmarks/data_layouts.py " + " ".join(sys.argv[1:])
        text = (f"{datetime.date.today().isoformat()}; {machine()}.\n\n```\n{command}\n"
                f"# each file, in a fresh process, twice (empty cache, then cached):\n"
                f"studio data inspect FILE --json{model_flag(args.model)}\n```\n\n{body}\n\n"
                + "\n".join(f"- {n}" for n in lines) + "\n\n"
                "Cold: STUDIO_HOME pointed at an empty folder, so the file is read, checked and written to the loader's "
                "Arrow cache; cached: the same command again (the rows come from the cache, the token statistics and the "
                "example are computed again). Wall time of the whole command as a user runs it, start-up included; peak "
                "RSS is that process's ru_maxrss (os.wait4).")
        write_results(args.results, text)
        print(f"\nwritten into {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
