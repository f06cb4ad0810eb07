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
    """The catalogue is data (:data:`pss_bench.methods.REGISTERED`): no torch, no mmseg import."""
    from pss_bench.methods import BACKBONES, METHODS, REGISTERED, configs_dir

    for kind, names in REGISTERED.items():
        print(f"{kind + ':':<17}" + (", ".join(names) or "-"))
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
