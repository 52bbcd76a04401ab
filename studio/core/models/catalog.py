"""The built-in catalog: models whose real config.json ships with the studio, so planning works offline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from studio.core import paths
from studio.core.models.info import ModelInfo


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    display_name: str
    hub_id: str
    family: str
    config_path: Path
    license: str
    gated: bool
    chat_template: bool
    instruct_hub_id: str | None
    expected_total_params: int


@lru_cache(maxsize=4)
def _catalog_at(folder: Path) -> tuple[CatalogEntry, ...]:
    index = folder / "index.json"
    if not index.is_file():
        return ()
    entries = []
    for row in json.loads(index.read_text(encoding="utf-8")):
        entries.append(
            CatalogEntry(
                name=row["name"],
                display_name=row.get("display_name", row["name"]),
                hub_id=row["hub_id"],
                family=row.get("family", ""),
                config_path=folder / row["config"],
                license=row.get("license", ""),
                gated=bool(row.get("gated", False)),
                chat_template=bool(row.get("chat_template", False)),
                instruct_hub_id=row.get("instruct_hub_id"),
                expected_total_params=int(row.get("expected_total_params") or 0),
            )
        )
    return tuple(entries)


def catalog() -> tuple[CatalogEntry, ...]:
    """The models whose real config.json ships with the studio, so planning works offline."""
    return _catalog_at(paths.catalog_dir())


def catalog_entry(name_or_hub_id: str) -> CatalogEntry | None:
    key = name_or_hub_id.strip().lower()
    for entry in catalog():
        if key in (entry.name.lower(), entry.hub_id.lower()):
            return entry
    return None


def family_members(info: ModelInfo) -> list[CatalogEntry]:
    """Catalog models of the same family as `info`, smallest first (for "a smaller model" advice)."""
    if not info.family:
        return []
    members = [e for e in catalog() if e.family == info.family]
    return sorted(members, key=lambda e: e.expected_total_params)
