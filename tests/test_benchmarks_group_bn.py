"""benchmarks/bench_group_bn.py: only the BN running statistics under the prefix go back to the stand-in's."""
from __future__ import annotations

import pytest
import torch
from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_group_bn")


def test_reset_touches_running_statistics_under_the_prefix_only(bench):
    keys = ["decode_head.1.group_context.query.bn.running_mean", "decode_head.1.group_context.query.bn.running_var",
            "decode_head.1.group_context.query.bn.weight", "decode_head.1.group_context.query.bn.num_batches_tracked",
            "decode_head.1.group_contextual.bn.running_mean",  # shares the text, not the module
            "decode_head.0.bn.running_var", "backbone.bn.running_mean"]
    state = {k: torch.full((3,), 1.0) for k in keys}
    reference = {k: torch.full((3,), 2.0) for k in keys}
    replaced = bench.reset_running_stats(state, reference, "decode_head.1.group_context")
    assert replaced == keys[:2]
    assert [float(state[k][0]) for k in keys] == [2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    reference["decode_head.1.group_context.query.bn.running_mean"] += 1  # a copy, not the reference's tensor
    assert float(state["decode_head.1.group_context.query.bn.running_mean"][0]) == 2.0
    assert bench.reset_running_stats(state, reference, "decode_head") == keys[:2] + keys[4:6]


def test_a_reference_without_the_key_is_refused(bench):
    state = {"decode_head.bn.running_mean": torch.zeros(2)}
    with pytest.raises(KeyError, match="decode_head.bn.running_mean"):
        bench.reset_running_stats(state, {}, "decode_head")
    assert float(state["decode_head.bn.running_mean"][0]) == 0.0
