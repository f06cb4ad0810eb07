"""Data preprocessor that normalises, pads and stacks both branches of a paired UDA batch."""
from __future__ import annotations

from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS


@MODELS.register_module()
class PairedSegDataPreProcessor(SegDataPreProcessor):
    """:class:`SegDataPreProcessor` for ``UDAPairDataset`` batches.

    In training, ``data`` holds ``inputs``/``data_samples`` (source) and ``target_inputs``/
    ``target_data_samples`` (target); each branch is normalised and padded exactly like a plain
    batch, and the result is ``dict(inputs=Tensor[N,3,H,W], data_samples=[...],
    target_inputs=Tensor[N,3,H,W], target_data_samples=[...])``. Any ground truth that reached the
    target samples is dropped again. Without target keys (validation, testing, inference) it is
    exactly :class:`SegDataPreProcessor`. A pseudo-labelled branch (``pseudo_inputs``/
    ``pseudo_data_samples``, labels from the model's own predictions) is handled like the source.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        if "target_inputs" not in data:
            return super().forward(data, training)
        out = {}
        for prefix in ("", "target_", "pseudo_"):
            if f"{prefix}inputs" not in data:
                continue
            branch = super().forward(dict(inputs=data[f"{prefix}inputs"],
                                          data_samples=data[f"{prefix}data_samples"]), training)
            out[f"{prefix}inputs"], out[f"{prefix}data_samples"] = branch["inputs"], branch["data_samples"]
        for sample in out["target_data_samples"]:
            if "gt_sem_seg" in sample:
                del sample.gt_sem_seg
            # stack_batch records pad_shape from the label; unlabelled samples get the image's.
            sample.set_metainfo(dict(pad_shape=tuple(out["target_inputs"].shape[-2:])))
        return out
