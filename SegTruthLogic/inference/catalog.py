"""The model catalog: named models with a card and a source for their weights, and the user's own models.

``Resources/Models/catalog.json`` lists the bundled entries; ``register_model`` adds a user's folder or file to
``$SEGTRUTH_HOME/models.json`` (default ``~/.config/segtruth/models.json``), which is read after the bundled
catalog so a user's entry of the same name wins. Any path works without registering: an nnU-Net results folder,
a MONAI bundle, a ``*.card.json``, or a TorchScript/state-dict file with ``<stem>.card.json`` beside it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.atomic import atomic_write_text
from ..core.errors import SegTruthError
from ..core.labels import LabelTable
from ..core.progress import CancelToken, ProgressCallback
from ..core.textfile import parse_json, read_text
from ..scene.session import RESOURCES
from .card import ModelCard, read_card
from .weights import resolve

if TYPE_CHECKING:  # the model module imports torch; listing the catalog does not need it
    from .model import LoadedModel

CATALOG = RESOURCES / "Models" / "catalog.json"


def user_catalog_path() -> Path:
    return Path(os.environ.get("SEGTRUTH_HOME") or Path.home() / ".config" / "segtruth") / "models.json"


@dataclass(frozen=True)
class Entry:
    """A catalog entry: where its card and weights are, and what it is for."""

    name: str
    description: str
    source: dict[str, Any]
    card: Path | None
    base: Path
    license: str = ""
    user: bool = False


def _read_entries(path: Path, user: bool) -> list[Entry]:
    if not path.is_file():
        return []
    data = parse_json(read_text(path, "model catalog"), str(path))
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SegTruthError(f'{path}: expected {{"models": [...]}}.')
    out = []
    for item in entries:
        if not isinstance(item, dict) or not item.get("name") or not isinstance(item.get("weights"), dict):
            raise SegTruthError(f"{path}: each model needs a name and a weights source.")
        card = item.get("card")
        out.append(
            Entry(
                name=str(item["name"]),
                description=str(item.get("description", "")),
                source=dict(item["weights"]),
                card=(path.parent / card) if card else None,
                base=path.parent,
                license=str(item.get("license", "")),
                user=user,
            )
        )
    return out


def entries() -> dict[str, Entry]:
    """Bundled entries, then the user's (a user's entry replaces a bundled one of the same name)."""
    found = {e.name: e for e in _read_entries(CATALOG, False)}
    found.update({e.name: e for e in _read_entries(user_catalog_path(), True)})
    return found


def register_model(name: str, path: str | Path, card: str | Path | None = None, description: str = "") -> Entry:
    """Add (or replace) a user's model by name: a folder or file, with an optional card; checked by loading it."""
    path = Path(path).expanduser().resolve()
    if not name or any(c in name for c in "/\\") or name != name.strip():
        raise SegTruthError(f"Model name {name!r} must be non-empty, without slashes or surrounding spaces.")
    if not path.exists():
        raise SegTruthError(f"{path}: not found; register an existing model folder or file.")
    card_path = Path(card).expanduser().resolve() if card else None
    if card_path is None:
        load_model(path)  # refuse what would not load later
    else:
        _load_entry(Entry(name, description, {"folder": str(path)}, card_path, path.parent))
    target = user_catalog_path()
    data = parse_json(read_text(target, "model catalog"), str(target)) if target.is_file() else {"models": []}
    models = [m for m in data.get("models", []) if m.get("name") != name]
    item: dict[str, Any] = {"name": name, "description": description, "weights": {"folder": str(path)}}
    if card_path:
        item["card"] = str(card_path)
    models.append(item)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps({"models": models}, indent=2) + "\n")
    return entries()[name]


def unregister_model(name: str) -> None:
    target = user_catalog_path()
    if not target.is_file():
        raise SegTruthError(f"No user model named {name!r}.")
    data = parse_json(read_text(target, "model catalog"), str(target))
    models = [m for m in data.get("models", []) if m.get("name") != name]
    if len(models) == len(data.get("models", [])):
        raise SegTruthError(f"No user model named {name!r}.")
    atomic_write_text(target, json.dumps({"models": models}, indent=2) + "\n")


def load_model(
    model: str | Path | ModelCard | LoadedModel,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **options: Any,
) -> LoadedModel:
    """A runnable model from a catalog name, a path, or a card; ``options`` go to the format (e.g. nnU-Net folds)."""
    from .model import LoadedModel

    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, ModelCard):
        base = model.path.parent if model.path else Path(".")
        return load_with_card(model, base, **options)
    text = str(model)
    path = Path(text).expanduser()
    if path.exists():
        return load_path(path, **options)
    found = entries()
    if text in found:
        return _load_entry(found[text], progress, cancel, **options)
    names = ", ".join(sorted(found)) or "none"
    raise SegTruthError(f"{text}: no such model file or folder, and no catalog model of that name (catalog: {names}).")


def _load_entry(entry: Entry, progress=None, cancel=None, **options: Any) -> LoadedModel:
    location = resolve(entry.source, entry.name, entry.base, progress, cancel)
    if entry.card is None:
        return load_path(location, **options)
    card = read_card(entry.card)
    card = replace(card, name=entry.name) if entry.user else card
    return load_with_card(card, location, **options)


def load_path(path: Path, **options: Any) -> LoadedModel:
    """Recognise a model by what the path holds."""
    from .formats.monai_bundle import is_bundle, load_bundle
    from .formats.nnunet import is_nnunet_folder, load_nnunet

    if path.is_dir():
        if is_nnunet_folder(path):
            return load_nnunet(path, **options)
        if is_bundle(path):
            return load_bundle(path, **options)
        cards = sorted(path.glob("*.card.json"))
        if len(cards) == 1:
            return load_with_card(read_card(cards[0]), path, **options)
        raise SegTruthError(
            f"{path}: not a model folder (no nnU-Net plans.json, no MONAI configs/, and not exactly one *.card.json)."
        )
    if path.name.endswith(".card.json"):
        return load_with_card(read_card(path), path.parent, **options)
    beside = path.with_name(path.name.split(".")[0] + ".card.json")
    if not beside.is_file():
        raise SegTruthError(f"{path}: has no model card beside it; write {beside.name} (see Resources/Models).")
    card = read_card(beside)
    return load_with_card(replace(card, weights={**card.weights, "file": path.name}), path.parent, **options)


def load_with_card(card: ModelCard, location: Path, **options: Any) -> LoadedModel:
    """Load the weights the card describes from ``location`` (a folder, or the weights file itself)."""
    if card.format == "torchscript":
        from .formats.torchscript import load_torchscript

        return load_torchscript(card, location)
    if card.format == "monai_network":
        from .formats.monai_network import load_monai_network

        return load_monai_network(card, location)
    if card.format == "monai_bundle":
        from .formats.monai_bundle import load_bundle

        model = load_bundle(location / str(card.weights.get("folder", ".")), **options)
    else:
        from .formats.nnunet import load_nnunet

        model = load_nnunet(location / str(card.weights.get("folder", ".")), **options)
    model.card = _relabel(model.card, card)
    return model


def _relabel(loaded: ModelCard, card: ModelCard) -> ModelCard:
    """A folder model's card with the catalog card's name, labels (matched by value) and provenance."""
    values = {label.value for label in loaded.labels}
    if {label.value for label in card.labels} != values:
        raise SegTruthError(
            f"Model {card.name!r}: the card's label values {sorted(label.value for label in card.labels)} differ from "
            f"the model's {sorted(values)}."
        )
    table = LabelTable(list(card.labels), f"labels of model {card.name!r}")
    return replace(
        loaded, name=card.name, labels=table, description=card.description or loaded.description,
        source=card.source or loaded.source, license=card.license, postprocessing=card.postprocessing,
    )  # fmt: skip


def describe_models() -> list[dict[str, str]]:
    """Name, description, where the weights come from and whether they are here now (no download)."""
    rows = []
    for entry in entries().values():
        source = entry.source
        if "pip" in source:
            where = f"pip package {source['pip']}"
        elif "url" in source:
            where = f"download {source['url']}"
        else:
            where = f"folder {source.get('folder') or source.get('file')}"
        try:
            available = "yes" if "url" not in source else "cached" if _cached(source) else "downloads on first use"
            if "url" not in source:
                resolve(source, entry.name, entry.base)
        except SegTruthError as error:
            available = f"no: {error}"
        rows.append(
            {
                "name": entry.name,
                "description": entry.description,
                "weights": where,
                "available": available,
                "license": entry.license,
                "registered_by": "user" if entry.user else "SegTruth",
            }
        )
    return rows


def _cached(source: dict[str, Any]) -> bool:
    from .weights import cache_dir

    sha = str(source.get("sha256", "")).lower()
    return len(sha) == 64 and (cache_dir() / sha[:16]).is_dir() and any((cache_dir() / sha[:16]).iterdir())
