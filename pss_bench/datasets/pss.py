"""The PSS personal albums and the VOC-aug source domain as MMSegmentation datasets."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from pss_bench.classes import CLASSES, IGNORE_INDEX, PALETTE
from pss_bench.data.layout import (
    VAL_LIST, VOC_TRAIN_LIST, ListEntry, cluster_list_name, parse_list, user_dir, voc_dir,
)

_METAINFO = dict(classes=CLASSES, palette=PALETTE)


class _ListDataset(BaseSegDataset):
    """Shared part: one data info per official list line, with ``group`` and ``user`` keys."""

    METAINFO = _METAINFO

    def __init__(self, data_root: str, **kwargs) -> None:
        kwargs.setdefault("img_suffix", ".jpg")
        kwargs.setdefault("seg_map_suffix", ".png")
        kwargs.setdefault("ignore_index", IGNORE_INDEX)
        super().__init__(data_root=data_root, reduce_zero_label=False, **kwargs)

    def _info(self, folder: str, entry: ListEntry, *, labelled: bool, user: int) -> dict:
        if labelled and entry.label is None:
            raise ValueError(f"list entry {entry.image!r} in {folder} has no label path")
        return dict(
            img_path=os.path.join(folder, entry.image),
            seg_map_path=os.path.join(folder, entry.label) if labelled else None,
            label_map=self.label_map,
            reduce_zero_label=False,
            seg_fields=[],
            group=entry.group,
            user=user,
            stem=entry.stem,
        )

    def get_groups(self) -> list[tuple[int, int]]:
        """Group key ``(user, group)`` of every sample, in dataset order (for group batching)."""
        return [(info["user"], info["group"]) for info in (self.get_data_info(i) for i in range(len(self)))]


@DATASETS.register_module()
class PSSDataset(_ListDataset):
    """Personal albums of one or more PSS users (official layout, see docs/data.md).

    Args:
        data_root: the folder holding ``personal/id<k>/``.
        users: user ids (1-15).
        split: ``'train'`` = every photo of the user(s), unlabelled, from ``train_cluster{K}.txt``,
            with its group id; ``'val'`` = the annotated photos of ``val_all.txt`` with their labels.
        cluster_k: K of the grouping list used by ``'train'``.
        list_file: an explicit list file name inside each user folder, overriding the two above
            (e.g. a pseudo-label list); its label paths are then loaded as labels when ``labelled``.
        labelled: whether ``list_file`` entries carry usable labels.
        sample_fraction: keep this fraction of each user's photos (seeded by ``sample_seed``, sorted
            by stem first so the subset does not depend on list order); the mixed-user "sample"
            setting of the paper's Table 5 trains on 1/15 of the pooled photos.
    Each data info carries ``user`` (int), ``group`` (int, -1 if unknown) and ``stem``.
    """

    def __init__(self, data_root: str, users: Sequence[int] = (1,), split: str = "train",
                 cluster_k: int = 80, list_file: str | None = None, labelled: bool = False,
                 sample_fraction: float = 1.0, sample_seed: int = 0, **kwargs) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"PSSDataset split must be 'train' or 'val', got {split!r}")
        if not 0 < sample_fraction <= 1:
            raise ValueError(f"sample_fraction must be in (0, 1], got {sample_fraction}")
        self.sample_fraction = sample_fraction
        self.sample_seed = sample_seed
        self.users = [int(u) for u in users]
        self.split = split
        self.cluster_k = cluster_k
        self.list_file = list_file
        self.labelled = labelled
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        data_list = []
        for user in self.users:
            folder = str(user_dir(self.data_root, user))
            if self.list_file is not None:
                name, labelled = self.list_file, self.labelled
            elif self.split == "train":
                name, labelled = cluster_list_name(self.cluster_k), False
            else:
                name, labelled = VAL_LIST, True
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"PSS list file not found: {path}")
            entries = parse_list(path)
            if self.sample_fraction < 1:
                entries = sorted(entries, key=lambda e: e.stem)
                keep = max(1, round(len(entries) * self.sample_fraction))
                rng = np.random.default_rng([self.sample_seed, user])
                entries = [entries[i] for i in sorted(rng.choice(len(entries), keep, replace=False))]
            data_list += [self._info(folder, e, labelled=labelled, user=user) for e in entries]
        return data_list


@DATASETS.register_module()
class VOCAugDataset(_ListDataset):
    """The labelled source domain: PASCAL VOC 2012 + SBD ``train_aug`` (10582 images in the real set).

    Reads ``ROOT/VOC2012/train_aug.txt`` (``/JPEGImages/x.jpg /SegmentationClassAug/x.png``) or, with
    ``cluster_k``, a grouped list ``train_cluster{K}.txt`` of the same folder (the released PSS code
    groups VOC with K = 500 so that the group module also sees one group per source batch; make it
    with ``pss-bench data cluster ROOT --k 500 --source``). A missing grouped list is an error, except
    on the embedded PSS-Synth data (its 300 source images cannot hold K = 500 groups), where
    ``train_aug.txt`` is read ungrouped with a warning that names the missing file.
    """

    def __init__(self, data_root: str, cluster_k: int | None = None, list_file: str | None = None,
                 **kwargs) -> None:
        self.cluster_k = cluster_k
        self.list_file = list_file or (cluster_list_name(cluster_k) if cluster_k else VOC_TRAIN_LIST)
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> list[dict]:
        folder = str(voc_dir(self.data_root))
        path = os.path.join(folder, self.list_file)
        if not os.path.isfile(path) and self.cluster_k and self.list_file == cluster_list_name(self.cluster_k) \
                and _is_synth(self.data_root):
            from mmengine.logging import print_log

            print_log(f"VOCAugDataset: {path} not found on PSS-Synth data; source batches are not grouped "
                      f"(cluster_k={self.cluster_k} needs `pss-bench data cluster ROOT --k {self.cluster_k} "
                      f"--source` on a real VOC install)", logger="current", level=30)
            path = os.path.join(folder, VOC_TRAIN_LIST)
        if not os.path.isfile(path):
            hint = (f" (make it with `pss-bench data cluster {self.data_root} --k {self.cluster_k} --source`)"
                    if self.cluster_k and self.list_file == cluster_list_name(self.cluster_k) else "")
            raise FileNotFoundError(f"VOC source list file not found: {path}{hint}")
        return [self._info(folder, e, labelled=True, user=0) for e in parse_list(path)]


def _is_synth(data_root: str) -> bool:
    """Whether ``data_root`` holds a complete PSS-Synth dataset (its generator's marker file)."""
    from pss_bench.data.synth.generate import COMPLETE_MARKER

    return os.path.isfile(os.path.join(data_root, COMPLETE_MARKER))


@DATASETS.register_module()
class PseudoLabelDataset(PSSDataset):
    """A user's photos that received pseudo labels (PSS step 2), labels read from a work directory.

    The photos and their group ids come from the user's ``train_cluster{K}.txt``; the labels are
    ``pseudo_dir/id<k>/<stem>.png`` for the stems listed in ``pseudo_dir/id<k>/selected.txt``
    (written by ``pss_bench.inference.pseudo_labels``). Pseudo labels never live next to the dataset.
    """

    SELECTED = "selected.txt"

    def __init__(self, data_root: str, pseudo_dir: str, users: Sequence[int] = (1,), cluster_k: int = 80,
                 **kwargs) -> None:
        self.pseudo_dir = pseudo_dir
        super().__init__(data_root=data_root, users=users, split="train", cluster_k=cluster_k, **kwargs)

    def load_data_list(self) -> list[dict]:
        data_list = []
        for info in super().load_data_list():
            folder = os.path.join(self.pseudo_dir, f"id{info['user']}")
            selected = self._selected(folder)
            if info["stem"] in selected:
                info["seg_map_path"] = os.path.join(folder, info["stem"] + self.seg_map_suffix)
                data_list.append(info)
        return data_list

    def _selected(self, folder: str) -> set[str]:
        cache = self.__dict__.setdefault("_selected_cache", {})
        if folder not in cache:
            path = os.path.join(folder, self.SELECTED)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"pseudo-label selection not found: {path}")
            with open(path, encoding="utf-8") as f:
                cache[folder] = {line.strip() for line in f if line.strip()}
        return cache[folder]
