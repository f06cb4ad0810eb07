"""The units of a sweep, the stages they share, the budget estimate, and the sweep manifest.

Notation: a *unit* is one (method, backbone, user, seed): one ``pss-bench run`` with ``users=[k]``
in its own work dir ``SWEEP/units/<method>_<backbone>_seed<s>_id<k>/``. A *group* is one (method,
backbone, seed): its users' units together make one result record. A *shared stage* is a train
stage of a multi-stage method that is exactly another unit of the sweep (``pss_s2``'s ``s1`` stage
is the ``pss_s1`` method with the same backbone, user, seed and settings): the dependent unit waits
for that unit and reuses its final checkpoint instead of training it again. Units are run in
*waves*: wave 0 has no dependency, wave n depends on units of earlier waves.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pss_bench.io import atomic_write_text

MANIFEST = "sweep.json"
UNITS_DIR = "units"
JOBS_DIR = "jobs"
RESULTS_DIR = "results"

# Training-step cost of each method relative to source_only (one source forward-backward), counted
# from the passes each step makes, NOT measured: + a target forward-backward (entropy: minent), + a
# small discriminator (advent), + two (adaptseg), + the group context module (pss_s1). The same for
# both backbones until ``python benchmarks/bench_train.py --size 320 --batch 8`` is run on a GPU
# (docs/scaling.md); ``--step-seconds`` scales them all.
_PASSES = {"source_only": 1.0, "minent": 2.0, "advent": 2.1, "adaptseg": 2.2, "pss_s1": 2.2}
RELATIVE_STEP_COST: dict[str, dict[str, float]] = {"resnet50": dict(_PASSES), "vgg16": dict(_PASSES)}
_COST_OF = {"pss_none": "advent", "pss_global": "pss_s1"}
PSS_S2_EXTRA = 0.5  # s2 stage: pss_s1 + a pseudo-label CE batch every second iteration
# Seconds per source_only training step at the paper preset (320 px, batch 8 + 8) on one GPU: an
# ASSUMPTION until benchmarks/bench_train.py --size 320 --batch 8 is run on the GPU (docs/scaling.md);
# --step-seconds replaces it.
DEFAULT_STEP_SECONDS = 0.5


class SweepError(ValueError):
    """A sweep that cannot be planned or continued; the message names the option or file."""


@dataclass(frozen=True, order=True)
class Unit:
    """One (method, backbone, user, seed): one ``run`` with ``users=[user]``."""

    method: str
    backbone: str
    seed: int
    user: int

    @property
    def group(self) -> str:
        """The (method, backbone, seed) record this unit belongs to."""
        return f"{self.method}_{self.backbone}_seed{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.group}_id{self.user}"

    def work_dir(self, sweep_dir: str | Path) -> Path:
        return Path(sweep_dir) / UNITS_DIR / self.name


@dataclass(frozen=True)
class SharedStage:
    """Stage ``stage`` of a unit is the whole of unit ``provider`` (its final checkpoint is reused)."""

    stage: str
    provider: Unit


@dataclass(frozen=True)
class PlannedUnit:
    unit: Unit
    train_stages: tuple[str, ...]          # every train stage the unit's method declares
    shared: tuple[SharedStage, ...] = ()   # those taken from another unit

    @property
    def depends_on(self) -> tuple[Unit, ...]:
        return tuple(s.provider for s in self.shared)


@dataclass(frozen=True)
class Settings:
    """What every unit of a sweep shares (stored in the manifest; a rerun must match it)."""

    data_root: str
    preset: str
    iters: int | None = None
    batch_size: int | None = None
    crop: int | None = None
    pretrained: str = "auto"
    protocol: str = "pss2021"
    device: str | None = None
    cfg_options: tuple[str, ...] = ()  # KEY=VALUE strings, as given to ``run --cfg-options``

    def __post_init__(self) -> None:
        object.__setattr__(self, "cfg_options", tuple(self.cfg_options))  # a list read from JSON

    @property
    def schedule(self) -> dict:
        """The preset's settings with the overrides applied (``RunOptions.settings``' rules)."""
        from pss_bench.harness.presets import PRESETS

        p = PRESETS[self.preset]
        iters = self.iters or p.iters
        return dict(iters=iters, batch_size=self.batch_size or p.batch_size, crop=self.crop or p.crop)


@dataclass
class SweepPlan:
    settings: Settings
    units: list[PlannedUnit] = field(default_factory=list)

    def waves(self) -> list[list[PlannedUnit]]:
        """Units in dependency order: wave n holds the units whose providers are in waves < n."""
        depth: dict[Unit, int] = {}
        by_unit = {p.unit: p for p in self.units}

        def level(p: PlannedUnit) -> int:
            if p.unit not in depth:
                depth[p.unit] = 1 + max((level(by_unit[d]) for d in p.depends_on), default=-1)
            return depth[p.unit]

        out: list[list[PlannedUnit]] = []
        for p in self.units:
            n = level(p)
            out.extend([] for _ in range(n + 1 - len(out)))
            out[n].append(p)
        return out

    def groups(self) -> dict[str, list[Unit]]:
        out: dict[str, list[Unit]] = {}
        for p in self.units:
            out.setdefault(p.unit.group, []).append(p.unit)
        return out


def _stage_layout(method: str, backbone: str) -> list:
    """The method's declared stages (``harness/stages.py``; one ``train`` stage when none)."""
    from pss_bench.harness.config import load_method_config
    from pss_bench.harness.stages import declared_stages

    return declared_stages(load_method_config(method, backbone).get("stages"), method)


def plan_sweep(methods: list[str], backbones: list[str], users: list[int], seeds: list[int],
               settings: Settings) -> SweepPlan:
    """Every (method, backbone, user, seed) unit, with the stages it takes from other units.

    Raises:
        SweepError: an unknown method or backbone, a method without a config for a backbone, an
            empty list, a negative seed, or a user without a folder under the data root.
    """
    from pss_bench.data.users import resolve_users
    from pss_bench.harness.presets import PRESETS
    from pss_bench.methods import BACKBONES, METHODS

    for option, values in (("--methods", methods), ("--backbones", backbones), ("--users", users),
                           ("--seeds", seeds)):
        if not values:
            raise SweepError(f"{option}: the list is empty")
        if len(set(values)) != len(values):
            raise SweepError(f"{option}: {values} names an entry twice")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SweepError(f"--methods: unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    unknown = [b for b in backbones if b not in BACKBONES]
    if unknown:
        raise SweepError(f"--backbones: unknown backbone(s) {', '.join(unknown)}; choose from {', '.join(BACKBONES)}")
    missing = [str(METHODS[m].config(b)) for m in methods for b in backbones if not METHODS[m].config(b).is_file()]
    if missing:
        raise SweepError(f"no config {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if min(seeds) < 0:
        raise SweepError(f"--seeds: seeds must be >= 0, got {seeds}")
    if settings.preset not in PRESETS:
        raise SweepError(f"--preset: unknown preset {settings.preset!r}; choose from {', '.join(PRESETS)}")
    if not (Path(settings.data_root) / "personal").is_dir():
        raise SweepError(f"--data-root {settings.data_root}: not a PSS data root (no personal/ folder)")
    chosen = resolve_users(settings.data_root, users)
    present, absent = chosen.present, chosen.absent
    if absent:
        raise SweepError(f"--users: no folder for user(s) {absent} under {settings.data_root}/personal "
                         f"(present: {present})")
    wanted = {Unit(m, b, s, u) for m in methods for b in backbones for s in seeds for u in users}
    layouts = {(m, b): _stage_layout(m, b) for m in methods for b in backbones}
    plan = SweepPlan(settings)
    for unit in sorted(wanted, key=lambda u: (methods.index(u.method), backbones.index(u.backbone),
                                              u.seed, u.user)):
        stages = layouts[unit.method, unit.backbone]
        train = tuple(s.name for s in stages if s.type == "train")
        shared = []
        # A stage-prefixed or stages.* option changes one stage only: that stage is no longer the
        # other method's unit. Unprefixed options reach both alike (harness/stages.py).
        prefixed = {o.split("=", 1)[0].split(".", 1)[0] for o in settings.cfg_options}
        if len(stages) > 1 and not prefixed & ({s.name for s in stages} | {"stages"}):
            for stage in stages:
                other = stage.get("method")
                # A stage that is another method trained from the ImageNet weights on the same user
                # with the same settings is that method's unit: the same config, seed and data.
                if (stage.type != "train" or not other or other == unit.method or stage.get("init_from")
                        or stage.get("pseudo_labels")):
                    continue
                provider = Unit(other, unit.backbone, unit.seed, unit.user)
                if provider in wanted and len(layouts.get((other, unit.backbone), ())) == 1:
                    shared.append(SharedStage(stage.name, provider))
        plan.units.append(PlannedUnit(unit, train, tuple(shared)))
    return plan


def step_cost(method: str, backbone: str, stage_method: str | None = None) -> float:
    """Relative cost of one training step of ``stage_method`` (default ``method``)."""
    name = _COST_OF.get(stage_method or method, stage_method or method)
    table = RELATIVE_STEP_COST[backbone]
    if name == "pss_s2":  # its own (s2) stage
        return table["pss_s1"] + PSS_S2_EXTRA
    return table.get(name, table["advent"])


def unit_cost(p: PlannedUnit) -> float:
    """Relative cost of one iteration of every train stage of a unit that is not shared."""
    shared = {s.stage for s in p.shared}
    return sum(step_cost(p.unit.method, p.unit.backbone, stage.get("method") or p.unit.method)
               for stage in _stage_layout(p.unit.method, p.unit.backbone)
               if stage.type == "train" and stage.name not in shared)


def estimate(plan: SweepPlan, step_seconds: float = DEFAULT_STEP_SECONDS) -> dict:
    """``{units, steps, gpu_hours, per_group: {group: hours per unit}}`` of the plan's schedule."""
    iters = plan.settings.schedule["iters"]
    per_group: dict[str, float] = {}
    steps = 0
    hours = 0.0
    for p in plan.units:
        h = unit_cost(p) * iters * step_seconds / 3600  # one GPU per unit
        per_group[p.unit.group] = h
        hours += h
        steps += iters * (len(p.train_stages) - len(p.shared))
    return dict(units=len(plan.units), steps=steps, gpu_hours=hours, per_group=per_group,
                step_seconds=step_seconds)


# ------------------------------------------------------------------------------------ manifest

def write_manifest(sweep_dir: Path, plan: SweepPlan) -> dict:
    """Create or extend ``SWEEP/sweep.json``: the settings (a rerun must match them) and every unit
    ever planned in this folder (a rerun may add users, seeds, methods or backbones).

    Raises:
        SweepError: the folder was started with other settings (each difference listed).
    """
    path = sweep_dir / MANIFEST
    settings = json.loads(json.dumps(asdict(plan.settings)))  # tuples as the lists JSON reads back
    if path.is_file():
        try:
            manifest = json.loads(path.read_text())
            old = manifest["settings"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SweepError(f"{path}: not a sweep manifest ({exc}); choose another --out") from None
        diff = [f"{k}: {old.get(k)!r} in {path}, {v!r} now" for k, v in settings.items() if old.get(k) != v]
        if diff:
            raise SweepError(f"{sweep_dir} was started with other settings; a rerun must match them "
                             "(or choose another --out):\n  " + "\n  ".join(diff))
    else:
        if sweep_dir.exists() and any(sweep_dir.iterdir()):
            raise SweepError(f"--out {sweep_dir}: the folder exists, is not empty and holds no {MANIFEST}; "
                             "choose another --out")
        manifest = dict(settings=settings, units=[], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    known = {tuple(u) for u in manifest["units"]}
    for p in plan.units:
        u = p.unit
        known.add((u.method, u.backbone, u.seed, u.user))
    manifest["units"] = sorted(known)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(manifest, indent=1))
    return manifest


def read_manifest(sweep_dir: Path) -> tuple[Settings, list[Unit]]:
    """The settings and units of a sweep folder.

    Raises:
        SweepError: no such folder or no readable manifest in it.
    """
    path = Path(sweep_dir) / MANIFEST
    if not Path(sweep_dir).is_dir():
        raise SweepError(f"{sweep_dir}: no such folder")
    try:
        manifest = json.loads(path.read_text())
        settings = Settings(**manifest["settings"])
        units = [Unit(str(m), str(b), int(s), int(u)) for m, b, s, u in manifest["units"]]
    except FileNotFoundError:
        raise SweepError(f"{sweep_dir}: not a sweep folder ({MANIFEST} is missing)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SweepError(f"{path}: not a sweep manifest ({exc})") from None
    return settings, units
