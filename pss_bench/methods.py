"""The catalogue of methods and backbones: names used on the command line, their configs, and the
row names of the paper's tables."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BACKBONES: dict[str, str] = {
    "resnet50": "dilated ResNet-50 (deep 3x3 stem, output stride 8) + PSP head (512 ch), aux head on stage 3",
    "vgg16": "VGG-16-BN up to conv4_3 (output stride 8) + PSP head, aux head on the stride-8 conv3 features",
}


@dataclass(frozen=True)
class Method:
    name: str
    paper_name: str  # row label in the paper's tables
    summary: str

    def config(self, backbone: str) -> Path:
        """Path of the method's MMEngine config for ``backbone``."""
        if backbone not in BACKBONES:
            raise KeyError(f"unknown backbone {backbone!r}; choose from {', '.join(BACKBONES)}")
        return configs_dir() / self.name / f"{self.name}_{backbone}.py"


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("source_only", "No-DA", "source cross-entropy only (main + 0.4 aux)"),
    Method("minent", "MinEnt", "+ entropy minimisation on target main/aux outputs"),
    Method("advent", "ADVENT", "+ adversarial alignment of target self-information maps"),
    Method("adaptseg", "AdaptSeg", "+ multi-level output-space adversarial alignment"),
    Method("pss_s1", "OURS-S1", "AdvEnt + group context module (one group per batch), paper's formula"),
    Method("pss_s2", "OURS-S2", "OURS-S1 + low-entropy pseudo-label refinement, paper's formula"),
    Method("pss_none", "None", "ablation: AdvEnt with no context module (Table 3)"),
    Method("pss_global", "Global", "ablation: one global group representation (Table 3)"),
    Method("maxsquare", "MaxSquare", "source_only model + image-wise max-squares and multi-level guidance"),
    Method("fda", "FDA", "source restyled with the target's low-frequency amplitude (beta 0.09) + robust entropy"),
    Method("fda_mbt", "FDA-MBT", "three-beta FDA ensemble -> pseudo labels -> self-supervised round"),
    Method("mrnet_s1", "MRNet-S1", "MRNet heads, multi-scale LS adversarial, memory regularisation"),
    Method("mrnet", "MRNet", "MRNet stage 1 -> TTA pseudo labels -> rectified pseudo-label learning"),
    Method("adaptseg_lsgan", "AdaptSeg-LS", "output-space LS-GAN alignment, main level, 0.05 (IAST's warm-up)"),
    Method("iast", "IAST", "LS-GAN warm-up + 3 target-only rounds on IAS pseudo labels (CE + KLD + entropy)"),
    Method("hiast", "HIAST", "AdaptSeg warm-up + 3 rounds: IAS, hard-class copy-paste, EMA-teacher consistency"),
    # The released code's variants (docs/pss_method.md#released-vs-paper): the paper's OURS rows were
    # produced by this code, so a leaderboard row says which of the two it ran.
    Method("advent_single", "ADVENT (released, single-level)",
           "the released advent_ent.yml: AdvEnt on the main output only, no aux head"),
    Method("pss_s1_released", "OURS-S1 (released)",
           "pss_s1 as the released code computes it: reshaped group bank, 2-replica DataParallel "
           "split, VOC K=500 source groups, released group-inference resizing"),
    Method("pss_s2_released", "OURS-S2 (released)",
           "pss_s1_released + pseudo labels; pseudo stream falls back to source batches, step 2 "
           "from ImageNet weights"),
)}


def configs_dir() -> Path:
    """``$PSS_BENCH_CONFIGS`` or the repository's ``configs/`` folder."""
    env = os.environ.get("PSS_BENCH_CONFIGS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "configs"


def available(method: str, backbone: str) -> bool:
    return method in METHODS and METHODS[method].config(backbone).is_file()


# What the project registers in MMSegmentation's registries, as data, so that ``pss-bench list``
# prints it without importing torch or mmseg. ``tests/test_commands_list.py`` checks it against
# the registries themselves after ``import pss_bench.plugins``.
REGISTERED = {
    "Datasets": ("PSSDataset", "PseudoLabelDataset", "SelfTrainingDataset", "UDAPairDataset", "VOCAugDataset"),
    "Samplers": ("GroupBatchSampler", "PseudoStreamBatchSampler"),
    "Metrics": ("PSSMetric",),
    "Models": ("AdaptSeg", "AdvEnt", "FCDiscriminator", "FDA", "FusedEncoderDecoder", "HIAST", "IAST", "MRNet",
               "MRNetHead", "MRNetRectified", "MaxSquare", "MinEnt", "MultiScaleDiscriminator", "PSPGroupHead",
               "PairedSegDataPreProcessor", "PseudoLabelAdvEnt", "ReleasedPSPHead", "SourceOnly",
               "UDASegmentor", "VGG16BNOS8"),
}

