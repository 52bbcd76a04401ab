"""Generation for the "Try" page and the samples during training: the base model and the base +
adapter answer the same prompt with the same settings, rendered with the chat template training used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.core.data.tokens import Renderer
from studio.core.errors import StudioError
from studio.core.weights import check_adapter, check_base


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0: greedy, the same answer every time
    top_p: float = 1.0
    seed: int = 0

    def kwargs(self, tokenizer) -> dict:
        kw = {"max_new_tokens": self.max_new_tokens, "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
              "use_cache": True}  # training turns the model's cache off; generation needs it to be fast
        if self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
        else:
            kw.update(do_sample=False)
        return kw


def prompt_ids(tokenizer, prompt: str | list[dict], renderer: Renderer | None = None):
    """Token ids of a user prompt (or a whole conversation) ready for the assistant to answer."""
    renderer = renderer or Renderer(tokenizer)
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    text = renderer.render(turns, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]


def _device_of(model):
    import torch

    try:
        return next(p.device for p in model.parameters() if p.device.type != "meta")
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def _stopping(flag: threading.Event, should_stop: Callable[[], bool] | None):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs) -> bool:
            return flag.is_set() or bool(should_stop and should_stop())

    return StoppingCriteriaList([Stop()])


CUT_NOTE = " … (cut at {} tokens)"


def cut_note(model, tokenizer, out, ids, settings: GenerationSettings) -> str:
    """" … (cut at N tokens)" when the answer reached the length limit before it ended by itself, so a
    sentence cut in the middle is never taken for the model's whole answer; else ""."""
    new = out[0, ids.shape[1]:]
    if len(new) < settings.max_new_tokens:
        return ""
    ends = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ends = set(ends if isinstance(ends, (list, tuple)) else [ends]) | {tokenizer.eos_token_id}
    return "" if int(new[-1]) in ends else CUT_NOTE.format(settings.max_new_tokens)


def without_cut_note(text: str, settings: GenerationSettings) -> str:
    """The model's own words: an answer without the note `cut_note` added (what scoring compares)."""
    return text.removesuffix(CUT_NOTE.format(settings.max_new_tokens))


def generate(model, tokenizer, prompt: str | list[dict], settings: GenerationSettings = GenerationSettings(),
             renderer: Renderer | None = None, on_text: Callable[[str], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> str:
    """The model's answer to `prompt`. With `on_text`, pieces of text arrive as they are generated.
    Generation ends early, at the next token, when `should_stop()` turns true or `on_text` raises."""
    import torch
    from transformers import TextIteratorStreamer

    ids = prompt_ids(tokenizer, prompt, renderer).to(_device_of(model))
    stop_flag = threading.Event()
    kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), stopping_criteria=_stopping(stop_flag, should_stop),
                  **settings.kwargs(tokenizer))
    was_training = getattr(model, "training", False)
    model.eval()
    torch.manual_seed(settings.seed)
    try:
        if on_text is None:
            with torch.no_grad():
                out = model.generate(**kwargs)
            return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True) + cut_note(model, tokenizer, out, ids, settings)
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        errors: list[BaseException] = []
        outputs: list = []

        def run():
            try:
                with torch.no_grad():
                    outputs.append(model.generate(**kwargs, streamer=streamer))
            except BaseException as exc:  # surfaced below, in the caller's thread
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        pieces = []
        try:
            for piece in streamer:
                pieces.append(piece)
                on_text(piece)
        except BaseException:
            stop_flag.set()  # the generating thread ends at its next token instead of running on
            thread.join()
            raise
        thread.join()
        if errors:
            raise errors[0]
        note = cut_note(model, tokenizer, outputs[0], ids, settings) if outputs else ""
        if note:
            on_text(note)
        return "".join(pieces) + note
    finally:
        if was_training:
            model.train()


class TryModel:
    """A base model with a trained adapter on top: answers with the adapter on or off."""

    def __init__(self, model, tokenizer, renderer: Renderer, held_as: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.renderer = renderer
        self.held_as = held_as  # how the base is held: "4bit", or its dtype ("float32", "bfloat16")

    @classmethod
    def load(cls, adapter_dir: Path, *, base: str | None = None, precision: str = "auto",
             allow_pickle: bool | None = None) -> TryModel:
        """Load the base (as the run trained it, or 16-bit on CPU) and the adapter saved in `adapter_dir`.
        `allow_pickle`: load pickled weights; by default, as the run's recipe allowed."""
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        adapter_dir = Path(adapter_dir)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise StudioError(f"{adapter_dir} holds no adapter.", "Pick a finished run, or the adapter folder of an export.")
        meta = _adapter_meta(adapter_dir)
        base_path = base or _base_of(adapter_dir, meta)
        if allow_pickle is None:
            allow_pickle = bool(((meta.get("recipe") or {}).get("model") or {}).get("allow_pickle"))
        check_adapter(adapter_dir, allow_pickle=allow_pickle)
        local = Path(str(base_path)).expanduser()
        safe = check_base(local if local.is_dir() else None, str(base_path), allow_pickle=allow_pickle)
        tokenizer = _tokenizer(adapter_dir)
        kwargs = _load_kwargs(precision, meta)
        try:
            model = AutoModelForCausalLM.from_pretrained(base_path, **{**kwargs, **safe})
        except OSError as exc:
            raise StudioError(f"The base model {base_path} could not be loaded: {exc}",
                              "The adapter needs the model it was trained on: make sure it is on this computer.") from exc
        model = PeftModel.from_pretrained(model, adapter_dir)
        held = "4bit" if "quantization_config" in kwargs else str(kwargs["dtype"]).removeprefix("torch.")
        return cls(model, tokenizer, Renderer(tokenizer, template=tokenizer.chat_template), held)

    def answer(self, prompt: str | list[dict], settings: GenerationSettings = GenerationSettings(), *,
               adapter: bool = True, on_text: Callable[[str], None] | None = None,
               should_stop: Callable[[], bool] | None = None) -> str:
        if adapter:
            return generate(self.model, self.tokenizer, prompt, settings, self.renderer, on_text, should_stop)
        with self.model.disable_adapter():
            return generate(self.model, self.tokenizer, prompt, settings, self.renderer, on_text, should_stop)

    def compare(self, prompt: str | list[dict], settings: GenerationSettings = GenerationSettings()) -> dict:
        """The same prompt, the same settings: base first, then with the adapter."""
        return {"base": self.answer(prompt, settings, adapter=False), "adapter": self.answer(prompt, settings, adapter=True)}


def held_as(adapter_dir: Path, precision: str = "auto") -> str:
    """How TryModel.load would hold the base under this adapter: "4bit", or the dtype's name."""
    kwargs = _load_kwargs(precision, _adapter_meta(Path(adapter_dir)))
    return "4bit" if "quantization_config" in kwargs else str(kwargs["dtype"]).removeprefix("torch.")


def _adapter_meta(adapter_dir: Path) -> dict:
    """What the studio recorded beside the adapter (studio.json); {} for an adapter from elsewhere."""
    import json

    path = adapter_dir / "studio.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _base_of(adapter_dir: Path, meta: dict) -> str:
    """The base model the adapter was trained on: the folder (or hub id) it recorded, found again when it moved."""
    import json

    recorded = meta.get("base_model_path") or json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    if (Path(str(recorded)).expanduser() / "config.json").is_file() or not meta.get("recipe"):
        return recorded
    # the recorded folder moved (the studio was reinstalled elsewhere): find the base again
    from studio.core.recipe import RunConfig
    from studio.core.runs import locate_base

    found, hub_id = locate_base(meta, RunConfig.from_dict(meta["recipe"]), adapter_dir)
    return str(found) if found else (hub_id or recorded)


def _tokenizer(adapter_dir: Path):
    """The tokenizer saved with the adapter (with the chat template training used)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_kwargs(precision: str, meta: dict) -> dict:
    """from_pretrained's dtype and placement: on a GPU in bf16 (4-bit when asked, or when the run trained
    in 4-bit and `precision` is auto); on the CPU in fp32."""
    import torch

    if not torch.cuda.is_available():
        return {"dtype": torch.float32}
    kwargs: dict = {"dtype": torch.bfloat16, "device_map": {"": 0}}
    if precision == "4bit" or (precision == "auto" and meta.get("precision") == "4bit"):
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                           bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=torch.bfloat16)
    return kwargs
