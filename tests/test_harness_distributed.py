"""Multi-process training on CPU (gloo): gradient averaging, parameter broadcast, torchrun end to end."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pss_bench.harness.distributed import UDADistributedWrapper, average_gradients

pytestmark = pytest.mark.slow  # end-to-end: Runner training, subprocesses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(rank)  # different init on each rank: the wrapper must broadcast rank 0's
    model = torch.nn.Linear(3, 2)
    UDADistributedWrapper(model)
    for p in model.parameters():
        p.grad = torch.full_like(p, float(rank + 1))
    average_gradients(list(model.parameters()))
    torch.save({"weight": model.weight.detach(), "grad": model.weight.grad}, os.path.join(out, f"{rank}.pt"))
    dist.destroy_process_group()


def test_broadcast_and_gradient_average(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"{r}.pt") for r in (0, 1))
    assert torch.equal(r0["weight"], r1["weight"])
    assert torch.equal(r0["grad"], torch.full_like(r0["grad"], 1.5))  # mean of 1 and 2
    assert torch.equal(r1["grad"], r0["grad"])


def test_torchrun_two_processes_end_to_end(tmp_path, make_pss):
    root = make_pss(tmp_path / "pss", users=(1,), photos=6, annotated=2)
    work = tmp_path / "work"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(_free_port()), "-m", "pss_bench.cli", "run", "--launcher", "pytorch",
           "--method", "advent", "--backbone", "vgg16", "--data-root", str(root), "--work-dir", str(work),
           "--users", "1", "--iters", "2", "--crop", "32", "--batch-size", "2", "--pretrained", "none",
           "--preset", "demo"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PSS_BENCH_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((work / "result.json").read_text())
    assert set(record["users"]) == {"1"}
