"""Multi-stage methods: declared in the method's config, run generically per user.

A config may declare ``stages``, a list run in order for each user (absent = one ``train`` stage)::

    stages = [
        dict(name='s1', type='train', method='pss_s1'),              # another method's config
        dict(name='pseudo', type='pseudo_labels', model='s1', ratio=0.6),
        dict(name='s2', type='train', init_from='s1', pseudo_labels='pseudo'),  # this config
    ]

Stage types (:data:`STAGE_TYPES`):

``train``
    Train a config: ``method`` (default: the run's method, i.e. this config) with the run's backbone,
    with ``cfg_options`` (``{dotted key: value}``, e.g. one FDA band's ``model.betas``, one round's
    learning rate) merged in before the user's ``--cfg-options``.
    ``init_from``: an earlier ``train`` stage whose final weights initialise the model (None: the
    run's pretrained weights). ``pseudo_labels``: an earlier ``pseudo_labels`` stage whose folder
    feeds the config's ``train_dataloader.dataset.pseudo`` branch. The last stage must be ``train``:
    its model is the one predicted and scored.
``pseudo_labels``
    Label the user's photos with the final model(s) of earlier ``train`` stages (``model='s1'`` or
    ``models=['a', 'b']``) through a labeller of :data:`pss_bench.inference.pseudo_labels.LABELLERS`
    (``labeller=``, default ``entropy_ranking``: PSS step 2); every other option goes to the
    labeller (``ratio=0.6``).

Each stage works in ``WORK/id<k>/<name>/`` (a single-stage method in ``WORK/id<k>/`` itself) and
marks its end with ``done.json``; a finished stage is reused, an interrupted one resumes with
``--resume``. A new stage type is a :data:`STAGE_TYPES` entry plus a runner registered with
``pss_bench.harness.run.stage_runner``.

``--cfg-options`` (:func:`route_cfg_options`): ``NAME.key=value`` reaches only stage ``NAME``. An
unprefixed ``key=value`` reaches every ``train`` stage whose config has ``key``; a key that no stage
has yet (a new entry) reaches every stage whose config has its parent; a key whose parent no stage
has is an error. ``stages.<i>.<option>=value`` edits the declaration itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGE_TYPES: dict[str, tuple[str, ...] | None] = {
    # type -> options it accepts besides name and type (None: any, checked by what runs it)
    "train": ("method", "init_from", "pseudo_labels", "cfg_options"),
    "pseudo_labels": None,  # model / models, labeller, and the labeller's own options
}
# options that name earlier stages, and the type those stages must have
_REFERENCES = {"init_from": "train", "pseudo_labels": "pseudo_labels", "model": "train", "models": "train"}


class StageError(ValueError):
    """A stage declaration or a ``--cfg-options`` key that cannot be used; the message says which."""


@dataclass(frozen=True)
class Stage:
    """One declared stage: ``name`` (its folder), ``type`` (a key of :data:`STAGE_TYPES`), options."""

    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)


def declared_stages(raw: list | tuple | None, method: str) -> list[Stage]:
    """Validate ``cfg.stages`` of ``method``'s config; None means one ``train`` stage."""
    if raw is None:
        return [Stage("train", "train")]
    if not isinstance(raw, (list, tuple)) or not raw:
        raise StageError(f"{method}: stages must be a non-empty list of dicts, got {raw!r}")
    stages: list[Stage] = []
    for i, item in enumerate(raw):
        where = f"{method}: stages[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise StageError(f"{where} must be a dict with a non-empty 'name'")
        item = dict(item)
        name, kind = item.pop("name"), item.pop("type", None)
        if kind not in STAGE_TYPES:
            raise StageError(f"{where} ({name}): type must be one of {', '.join(STAGE_TYPES)}, got {kind!r}")
        if not name.isidentifier():
            raise StageError(f"{where}: name {name!r} must be an identifier (it is a folder and a "
                             "--cfg-options prefix)")
        if any(s.name == name for s in stages):
            raise StageError(f"{where}: stage name {name!r} is used twice")
        accepted = STAGE_TYPES[kind]
        unknown = sorted(set(item) - set(accepted)) if accepted is not None else []
        if unknown:
            raise StageError(f"{where} ({name}): unknown option(s) {', '.join(unknown)} for a {kind} stage "
                             f"(accepted: {', '.join(accepted)})")
        earlier = {s.name: s.type for s in stages}
        for option, wanted in _REFERENCES.items():
            refs = item.get(option)
            if refs is None or (accepted is not None and option not in accepted):
                continue
            for ref in refs if isinstance(refs, (list, tuple)) else [refs]:
                if earlier.get(ref) != wanted:
                    raise StageError(f"{where} ({name}): {option}={ref!r} must name an earlier {wanted} "
                                     f"stage (earlier stages: {', '.join(earlier) or 'none'})")
        if not isinstance(item.get("cfg_options", {}), dict):
            raise StageError(f"{where} ({name}): cfg_options must be a dict of dotted keys to values")
        if kind == "pseudo_labels" and (item.get("model") is None) == (item.get("models") is None):
            raise StageError(f"{where} ({name}): a pseudo_labels stage needs model=<an earlier train "
                             "stage> or models=[...]")
        stages.append(Stage(name, kind, item))
    if stages[-1].type != "train":
        raise StageError(f"{method}: the last stage must be a train stage (its model is scored), "
                         f"got {stages[-1].type!r}")
    return stages


def _lookup(tree: Any, dotted: str) -> tuple[bool, bool]:
    """``(key exists, parent exists)`` for a dotted path through dicts and list indices."""
    node = tree
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, depth == len(parts) - 1
    return True, True


def route_cfg_options(options: dict[str, Any], stages: list[Stage],
                      configs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split ``--cfg-options`` over the train stages (rules in the module docstring).

    Args:
        options: ``{dotted key: value}`` as parsed by MMEngine's ``DictAction``; ``stages.*`` keys
            must already have been applied to the declaration and left out.
        stages: the declared stages.
        configs: ``{train stage name: its config (a dict tree)}``.

    Returns:
        ``{train stage name: {key: value}}`` for every train stage (possibly empty).
    """
    train = [s.name for s in stages if s.type == "train"]
    routed: dict[str, dict[str, Any]] = {name: {} for name in train}
    names = {s.name: s.type for s in stages}
    for key, value in options.items():
        head, _, rest = key.partition(".")
        if head in names and rest and len(stages) > 1:
            if names[head] != "train":
                raise StageError(f"--cfg-options {key}: stage {head!r} is a {names[head]} stage; only "
                                 "train stages have a config (change its options with stages.<i>.<option>)")
            routed[head][rest] = value
            continue
        found = {name: _lookup(configs[name], key) for name in train}
        targets = [n for n, (exists, _) in found.items() if exists] or \
                  [n for n, (_, parent) in found.items() if parent]
        if not targets:
            parent = key.rpartition(".")[0]
            raise StageError(f"--cfg-options {key}: no config of this method has {parent!r}"
                             + (f" (stages: {', '.join(train)})" if len(train) > 1 else ""))
        for name in targets:
            routed[name][key] = value
    return routed
