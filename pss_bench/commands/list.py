"""``pss-bench list``: what this installation provides."""
from __future__ import annotations

import argparse

from pss_bench.commands.common import add_parser


def register(subparsers) -> None:
    p = add_parser(subparsers, "list", help="list registered datasets, methods, backbones and configs",
                   description="List what this installation provides: the datasets, samplers, metrics and "
                               "models registered in MMSegmentation, the backbones, the methods (with "
                               "their paper rows) and the configs.",
                   examples=["pss-bench list"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mmseg.registry import DATA_SAMPLERS, DATASETS, METRICS, MODELS

    from pss_bench.methods import BACKBONES, METHODS, configs_dir

    try:
        import pss_bench.plugins  # noqa: F401  (registers the project's components)
    except ImportError as err:  # a broken plug-in must not hide the rest of the listing
        print(f"warning: pss_bench.plugins failed to import: {err}")
    ours = ("pss_bench.",)

    def registered(registry) -> list[str]:
        return sorted(name for name, cls in registry.module_dict.items()
                      if cls.__module__.startswith(ours))

    print("Datasets:        " + ", ".join(registered(DATASETS)))
    print("Samplers:        " + ", ".join(registered(DATA_SAMPLERS)))
    print("Metrics:         " + (", ".join(registered(METRICS)) or "-"))
    print("Models:          " + ", ".join(registered(MODELS)))
    print("\nBackbones:")
    for name, text in BACKBONES.items():
        print(f"  {name:<12} {text}")
    print("\nMethods (paper row):")
    for m in METHODS.values():
        ready = [b for b in BACKBONES if m.config(b).is_file()]
        print(f"  {m.name:<12} {m.paper_name:<9} {m.summary}"
              + ("" if ready else "  [no config yet]"))
    print(f"\nConfigs ({configs_dir()}):")
    for path in sorted(configs_dir().rglob("*.py")):
        print(f"  {path.relative_to(configs_dir())}")
    return 0
