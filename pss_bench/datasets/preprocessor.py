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
    exactly :class:`SegDataPreProcessor`.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        if "target_inputs" not in data:
            return super().forward(data, training)
        source = super().forward(dict(inputs=data["inputs"], data_samples=data["data_samples"]), training)
        target = super().forward(
            dict(inputs=data["target_inputs"], data_samples=data["target_data_samples"]), training)
        for sample in target["data_samples"]:
            if "gt_sem_seg" in sample:
                del sample.gt_sem_seg
            # stack_batch records pad_shape from the label; unlabelled samples get the image's.
            sample.set_metainfo(dict(pad_shape=tuple(target["inputs"].shape[-2:])))
        return dict(inputs=source["inputs"], data_samples=source["data_samples"],
                    target_inputs=target["inputs"], target_data_samples=target["data_samples"])
