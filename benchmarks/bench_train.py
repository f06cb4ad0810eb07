"""Training-step cost of each UDA method relative to source-only, per backbone.

For every (backbone, method) the model is built from ``configs/<method>/<method>_<backbone>.py``
(random backbone init), fed the same raw paired batch, and timed over ``--iters`` full training
steps (preprocessing, forwards, backwards, every optimiser step) after ``--warmup`` steps. Printed as a
markdown table: median step time, its ratio to source-only, and peak memory of the timed steps
(``torch.cuda.max_memory_allocated`` on GPU; on CPU each model is measured in a fresh forked process
and the figure is the rise of its peak RSS above its RSS before the model was built: weights,
gradients, optimiser state and activations).

    python benchmarks/bench_train.py                          # CPU-sized default: 2 x 64 x 64
    python benchmarks/bench_train.py --size 320 --batch 8     # the released PSS batch (GPU)

``pss_s1`` (AdvEnt + the group context module, one group per batch) is also compared with ``advent``
on the same backbone, and the group module's own forward time (source + target forwards, timed
with hooks around ``group_context``) is reported as a share of the whole step. Target: the group
module adds at most 15 % to an AdvEnt step at 320 x 320, batch 8.

``passes`` is each method's count of segmentor forward/backward passes in the released
implementation's cost model (``PASSES``); ``x cost model`` = measured ratio / passes, target <= 1.2.
Multi-stage methods are timed on the step of their config's model (``maxsquare``: the adaptation,
``fda_mbt``: the three-member SSL round, ``mrnet``: stage 2); ``fda`` and ``mrnet_s1`` with their
entropy / memory terms switched on.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("source_only", "minent", "advent", "adaptseg", "pss_s1", "maxsquare", "fda", "fda_mbt", "mrnet_s1",
           "mrnet")
# Forward+backward passes of a segmentor per step in the released implementations' cost model, in units
# of source_only's one source pass: MaxSquare source + target; FDA source + target (+ one FFT pair,
# not counted); FDA-MBT's SSL round three members x (source + pseudo-labelled target); MRNet stage 1
# source + target (+ two discriminator levels x 3 scales, with R1's double backward; not counted),
# stage 2 source + pseudo-labelled target. MRNet's heads are its own (5 dilated branches on 3072 ch),
# so its ratio to the PSP source_only also carries the heavier head.
PASSES = {"source_only": 1, "minent": 2, "advent": 2, "adaptseg": 2, "pss_s1": 2, "maxsquare": 2, "fda": 2,
          "fda_mbt": 6, "mrnet_s1": 2, "mrnet": 2}
PSEUDO = ("fda_mbt", "mrnet")  # steps that read a pseudo-labelled branch
# switched-on terms, so that the full step is timed (the configs switch them on later in a run)
SWITCH_ON = {"fda": "ent_start_iter", "mrnet_s1": "kl_start_iter"}
BACKBONES = ("resnet50", "vgg16")


def _rss_kib(field: str) -> int | None:
    """``VmRSS`` / ``VmHWM`` of this process in KiB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def make_batch(batch: int, size: int, seed: int = 0, pseudo: bool = False) -> dict:
    """A raw paired batch as ``UDAPairDataset`` + ``pseudo_collate`` produce it (uint8 images), with a
    pseudo-labelled branch if ``pseudo``."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    g = torch.Generator().manual_seed(seed)

    def images():
        return [torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g) for _ in range(batch)]

    def samples(labelled: bool):
        out = []
        for _ in range(batch):
            s = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
            if labelled:
                s.gt_sem_seg = PixelData(data=torch.randint(0, 21, (1, size, size), generator=g))
            out.append(s)
        return out

    out = dict(inputs=images(), data_samples=samples(True), target_inputs=images(),
               target_data_samples=samples(False))
    if pseudo:
        out.update(pseudo_inputs=images(), pseudo_data_samples=samples(True))
    return out


def measure(method: str, backbone: str, args: argparse.Namespace, device: str) -> dict:
    import copy

    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmseg.registry import MODELS

    base_rss = _rss_kib("VmRSS")
    path = ROOT / "configs" / method / f"{method}_{backbone}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no config for {method} / {backbone}: {path}")
    cfg = Config.fromfile(str(path))
    cfg.model.data_preprocessor.size = (args.size, args.size)
    if method in SWITCH_ON:
        cfg.model[SWITCH_ON[method]] = 0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device)
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = make_batch(args.batch, args.size, pseudo=method in PSEUDO)
    group_time = [0.0]
    modules = [m for name, m in model.named_modules() if name.endswith("group_context")]

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def pre_hook(module, inputs):
        sync()
        module._bench_start = time.perf_counter()

    def post_hook(module, inputs, output):
        sync()
        group_time[0] += time.perf_counter() - module._bench_start

    for module in modules:
        module.register_forward_pre_hook(pre_hook)
        module.register_forward_hook(post_hook)

    def step():
        model.train_step(copy.deepcopy(batch), optim)
        sync()

    for _ in range(args.warmup):
        step()
    gc.collect()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = base_rss
    times, group_times = [], []
    for _ in range(args.iters):
        group_time[0] = 0.0
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        group_times.append(group_time[0])
    if device == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
        note = "max_memory_allocated"
    else:
        hwm = _rss_kib("VmHWM")
        peak_mib = (hwm - base) / 1024 if (hwm is not None and base is not None) else float("nan")
        note = "CPU: peak RSS rise of a fresh process over its RSS before building the model"
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
    return dict(median=statistics.median(times), peak_mib=peak_mib, note=note,
                group_share=statistics.median(g / t for g, t in zip(group_times, times)) if modules else None)


def measure_isolated(method: str, backbone: str, args: argparse.Namespace, device: str) -> dict:
    """:func:`measure` in a forked child on CPU, so that no model's memory is left to the next."""
    if device == "cuda":
        return measure(method, backbone, args, device)
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(measure, (method, backbone, args, device))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES, default=list(BACKBONES))
    parser.add_argument("--size", type=int, default=64, help="square crop size (default 64; paper 320)")
    parser.add_argument("--batch", type=int, default=2, help="images per domain (default 2; paper 8)")
    parser.add_argument("--iters", type=int, default=5, help="timed steps per model (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, help="torch intra-op threads on CPU (default: torch's)")
    args = parser.parse_args(argv)
    for name in ("size", "batch", "iters"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.size < 32:
        parser.error("--size must be >= 32 (the discriminators need 32 x 32 maps)")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")

    import torch
    from mmengine.registry import init_default_scope

    sys.path.insert(0, str(ROOT))
    import pss_bench.plugins  # noqa: F401  (registers datasets, preprocessor, methods)

    init_default_scope("mmseg")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = ["source_only"] + [m for m in args.methods if m != "source_only"]  # the reference first
    if "pss_s1" in methods and "advent" not in methods:  # pss_s1 is compared with advent
        methods.insert(methods.index("pss_s1"), "advent")

    where = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"Training step, batch {args.batch}+{args.batch} at {args.size}x{args.size}, {where}, "
          f"median of {args.iters} after {args.warmup} warm-up, torch {torch.__version__}\n")
    print("| backbone | method | median step (s) | x source_only | passes | x cost model | x advent "
          "| peak memory (MiB) | x source_only | group module fwd (% of step) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = set()
    for backbone in args.backbones:
        ref = advent = None
        for method in methods:
            r = measure_isolated(method, backbone, args, device)
            notes.add(r["note"])
            ref = ref or r
            advent = r if method == "advent" else advent
            mem_ratio = r["peak_mib"] / ref["peak_mib"] if ref["peak_mib"] > 0 else float("nan")
            vs_advent = f"{r['median'] / advent['median']:.2f}" if advent else "-"
            share = f"{100 * r['group_share']:.1f}" if r["group_share"] is not None else "-"
            ratio = r["median"] / ref["median"]
            print(f"| {backbone} | {method} | {r['median']:.3f} | {ratio:.2f} | {PASSES[method]} | "
                  f"{ratio / PASSES[method]:.2f} | {vs_advent} | {r['peak_mib']:.0f} | {mem_ratio:.2f} | {share} |",
                  flush=True)
    print(f"\nmemory: {'; '.join(sorted(notes))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
