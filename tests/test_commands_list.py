"""``pss-bench list``: the catalogue is data, true to the registries, printed without torch or mmseg."""
from __future__ import annotations

import json
import subprocess
import sys

from mmseg.registry import DATA_SAMPLERS, DATASETS, METRICS, MODELS

import pss_bench.plugins  # noqa: F401  (registers the project's components)
from pss_bench.methods import REGISTERED


def test_the_catalogue_is_what_the_registries_hold():
    def ours(registry) -> tuple[str, ...]:
        return tuple(sorted(n for n, cls in registry.module_dict.items() if cls.__module__.startswith("pss_bench.")))

    assert REGISTERED == {"Datasets": ours(DATASETS), "Samplers": ours(DATA_SAMPLERS),
                          "Metrics": ours(METRICS), "Models": ours(MODELS)}


def test_list_imports_neither_torch_nor_mmseg():
    code = ("import io, json, sys, contextlib\nfrom pss_bench.cli import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n    rc = main(['list'])\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mmseg', 'mmengine', 'mmcv'))\n"
            "print(json.dumps([rc, heavy, buf.getvalue()]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    rc, heavy, text = json.loads(out.stdout.strip().splitlines()[-1])
    assert rc == 0 and heavy == []
    assert "Models:          AdaptSeg, AdvEnt" in text and "advent       ADVENT" in text
