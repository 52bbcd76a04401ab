"""Memory fixes belong to the model they were made for: undone when another model is chosen, made
again when it comes back, and said in the user's words (`note`) each time."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from studio.core.recipe import RunConfig


@dataclass
class AppliedFixes:
    """Memory fixes applied so that one model fits. `fields`: (section, name) → (before, after) in the recipe."""

    model_name: str
    words: list[str] = field(default_factory=list)
    fields: dict = field(default_factory=dict)


class FixesByModel:
    """The fixes made for each model source, and which model's fixes are in the recipe now."""

    def __init__(self) -> None:
        self._fixes: dict[str, AppliedFixes] = {}  # by model source
        self._source: str | None = None  # the model whose fixes are in the recipe now
        self.note = ""  # what happened to them at the last change of model, in the user's words

    def clear(self) -> None:
        """The recipe says what it wants (a past run's): no fix is undone or made again on it."""
        self._fixes.clear()

    def remember(self, before: RunConfig, after: RunConfig, model_name: str, words: tuple[str, ...]) -> None:
        """A fix was applied (`before` → `after`) for the model named `model_name`."""
        changed = _changed_fields(before, after)
        if not changed:
            return
        self.note = ""
        record = self._fixes.setdefault(self._source or after.model.source, AppliedFixes(model_name))
        record.words.extend(words)
        for key, (old, new) in changed.items():
            record.fields[key] = (record.fields.get(key, (old, new))[0], new)

    def undo(self, config: RunConfig, source: str) -> AppliedFixes | None:
        """Another model (`source`) is in the recipe: put back what the fixes for the previous model
        changed (what the user changed since stays)."""
        record = self._fixes.get(self._source) if self._source != source else None
        self._source = source
        self.note = ""
        if record is None:
            return None
        for (section, name), (old, new) in list(record.fields.items()):
            if getattr(getattr(config, section), name) == new:
                setattr(getattr(config, section), name, old)
            else:
                del record.fields[(section, name)]  # changed by hand since: the user's now
        return record if record.fields else None

    def redo(self, config: RunConfig, source: str, undone: AppliedFixes | None) -> None:
        """Make the fixes remembered for `source` again, and say what happened in `note`."""
        record = self._fixes.get(source)
        redone = 0
        for (section, name), (old, new) in (record.fields.items() if record else ()):
            if getattr(getattr(config, section), name) == old:
                setattr(getattr(config, section), name, new)
                redone += 1
        notes = []
        if undone is not None:
            notes.append(_fixes_words(undone, f"made so {undone.model_name} would fit", "undone for this model") +
                         f" They come back if you choose {undone.model_name} again.")
        if redone:
            notes.append(_fixes_words(record, f"made earlier so {record.model_name} fits", "back"))
        self.note = " ".join(notes)


def _changed_fields(before: RunConfig, after: RunConfig) -> dict:
    """(section, name) → (before, after) for each adapter and training setting that differs."""
    changed = {}
    for section in ("adapter", "training"):
        old, new = getattr(before, section), getattr(after, section)
        for f in fields(old):
            if getattr(old, f.name) != getattr(new, f.name):
                changed[(section, f.name)] = (getattr(old, f.name), getattr(new, f.name))
    return changed


def _fixes_words(record: AppliedFixes, made: str, now: str) -> str:
    """"The 2 changes made so Llama 3.1 8B would fit are undone for this model: ...; ...."""
    from studio.core.wording import count

    n = len(record.words) or len(record.fields)
    what = "; ".join(w[:1].lower() + w[1:] for w in record.words) if record.words else "its memory settings"
    return f"The {count(n, 'change')} {made} {'is' if n == 1 else 'are'} {now}: {what}."
