"""The PSS group context module (OURS-S1) and the PSP decode head that carries it.

Personalized Image Semantic Segmentation (Zhang et al., ICCV 2021), sections 4.1-4.2, as the released
code builds it (``advent/model/group_modules.py`` and ``advent/model/psp.py`` of zhangyuygss/PSS, read
at commit 430d214; re-implemented here, nothing copied). ``docs/pss_method.md`` maps every layer onto
the released code and lists where this implementation chooses.

Notation used in the shapes below:
    B  images in the batch (one group of a user's photos)
    D  channels of the PSP feature X (512)
    E  key/query/value channels (256)
    K  soft object regions = number of classes (21)
    H, W  feature size (stride 8: 40 x 40 for a 320 x 320 crop), N = H * W

The forward pass of :class:`GroupContextModule`:
    1. soft regions   f[b, k] = sum_i softmax_i(P[b, k, i]) * X[b, :, i]          (B, K, D)
    2. projections    q = phi(X) (B, N, E); k = psi(f) (B, K, E); v = rho(f) (B, K, E)
    3. intra-image    softmax over the K regions of the pixel's own image of q.k / sqrt(E), sum of v
    4. group          softmax over all B*K values of T * q.v / sqrt(E) (values act as keys,
                      T = 8, the pixel's own image included), weighted sum of the values
    5. fusion         [intra (E), group (E), X (D)] -> 1x1 conv -> BN -> ReLU -> Dropout2d(0.05)

Two released-code behaviours are selectable (``docs/pss_method.md#released-vs-paper``):
    bank_layout='released'  the bank of step 4 as the release builds it: the (B, K, E) values are
                            permuted to (K, B, E), made contiguous and *viewed* as (E, B*K), so each
                            bank column mixes channels of different regions and images
                            (:func:`group_bank`); 'paper' (default) is the bank the paper describes.
    train_replicas=R        the released ``nn.DataParallel`` training: in training mode the batch is
                            cut into R chunks (``torch.chunk``, as DataParallel's scatter) and the
                            module (its BN included) runs on each chunk alone; eval sees the batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.cascade_decode_head import BaseCascadeDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor, nn

from .psp_head import PSPBody

CONTEXT_MODES = ("group", "global", "image", "none")
"""``group``: intra-image + group context (OURS-S1). ``global``: intra-image + context from one global
bank of class representations shared by every image (ablation "Global"). ``image``: intra-image
context only (plain OCR, the released ``gpocr=False`` path). ``none``: no context module at all, the
classifier sees the PSP feature (ablation "None", the released ``group=False`` path)."""


def soft_region_features(feats: Tensor, region_logits: Tensor) -> Tensor:
    """Soft object-region features (OCR's "spatial gather", scale 1).

    Args:
        feats: pixel features X, (B, D, H, W).
        region_logits: region (class) logits P at the same size, (B, K, H, W).

    Returns:
        f with ``f[b, k] = sum_i softmax_i(P[b, k, i]) * X[b, :, i]`` (softmax over the H*W
        positions of each image and region), shape (B, K, D).
    """
    if feats.dim() != 4 or region_logits.dim() != 4:
        raise ValueError(f"expected 4-D tensors, got feats {tuple(feats.shape)} and "
                         f"region_logits {tuple(region_logits.shape)}")
    if feats.shape[0] != region_logits.shape[0] or feats.shape[2:] != region_logits.shape[2:]:
        raise ValueError(f"feats {tuple(feats.shape)} and region_logits {tuple(region_logits.shape)} "
                         "must share batch size and spatial size")
    weights = F.softmax(region_logits.flatten(2), dim=2)  # (B, K, N)
    return torch.bmm(weights, feats.flatten(2).transpose(1, 2))  # (B, K, D)


def intra_image_context(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """Attention of every pixel over the K regions of its own image.

    Args:
        query: (B, N, E). key: (B, K, E). value: (B, K, E).

    Returns:
        ``softmax_k(q . key_k / sqrt(E)) @ value`` per image, shape (B, N, E).
    """
    scale = query.shape[-1] ** -0.5
    attn = F.softmax(torch.bmm(query, key.transpose(1, 2)) * scale, dim=-1)  # (B, N, K)
    return torch.bmm(attn, value)


BANK_LAYOUTS = ("paper", "released")
"""``paper``: bank entry m = value of region m % K of image m // K. ``released``: the reshape of the
released ``group_modules.py`` (see :func:`group_bank`)."""


def group_bank(value: Tensor, layout: str = "paper") -> Tensor:
    """The group bank of region values, (M, E) with M = B*K.

    Args:
        value: region values v, (B, K, E).
        layout: ``'paper'``: the B*K value vectors themselves (``value.reshape(B*K, E)``).
            ``'released'``: the released code permutes v to (K, B, E), makes it contiguous and views
            the memory as (E, K*B) -- a reshape, not a transpose -- and uses that matrix as keys and,
            transposed, as values. Row m of the returned (M, E) bank is then
            ``flat[e * K*B + m]`` for e = 0..E-1, with ``flat`` the (K, B, E)-ordered values: each
            entry mixes channels of several regions and images, and depends on the batch order.
    """
    if value.dim() != 3:
        raise ValueError(f"value must be (B, K, E), got {tuple(value.shape)}")
    b, k, e = value.shape
    if layout == "paper":
        return value.reshape(b * k, e)
    if layout == "released":
        return value.transpose(0, 1).contiguous().view(e, k * b).t()
    raise ValueError(f"bank layout must be one of {BANK_LAYOUTS}, got {layout!r}")


def bank_context(query: Tensor, bank: Tensor, temperature: float = 8.0) -> Tensor:
    """Attention of every pixel over a shared bank of region values (the values act as keys).

    Args:
        query: (B, N, E).
        bank: (M, E); for group context M = B*K, the values of every image of the batch.
        temperature: multiplies the scaled dot product (the released code's factor 8).

    Returns:
        ``softmax_m(temperature * q . bank_m / sqrt(E)) @ bank``, shape (B, N, E).
    """
    scale = temperature * query.shape[-1] ** -0.5
    attn = F.softmax(torch.matmul(query, bank.t()) * scale, dim=-1)  # (B, N, M)
    return torch.matmul(attn, bank)


class GroupContextModule(nn.Module):
    """Group context module of PSS: pixel features attend to the soft object regions of their own
    image and of every image of the batch (one group of a user's photos).

    Args:
        in_channels: D, channels of the PSP feature (512 in the released models).
        key_channels: E, channels of queries, keys and values (256).
        num_regions: K, number of soft regions = classes of the region logits (21).
        context: one of :data:`CONTEXT_MODES`.
        temperature: factor on the group (and global) attention logits (8, released "gpscale8").
        dropout: Dropout2d probability after the fusion conv (0.05 as released).
        global_momentum: ``context='global'`` only: EMA momentum of the global bank of class
            region features (``bank = m * bank + (1 - m) * batch mean``), updated in training mode.
        bank_layout: ``context='group'`` only: one of :data:`BANK_LAYOUTS` (``'released'``: the
            released code's reshaped bank, :func:`group_bank`).
        train_replicas: in training mode, run the module separately on this many chunks of the
            batch (``torch.chunk``), as the released 2-GPU ``nn.DataParallel`` did (each replica's
            group and BN saw 4 of the 8 images); 1 = the whole batch. Eval mode never splits.
        norm_cfg, act_cfg: mmcv configs of the norm and activation layers.

    Shapes (see the module docstring for the notation):
        forward(x: (B, D, H, W), region_logits: (B, K, H, W)) -> (B, D, H, W)
    Works for any B >= 1. With ``bank_layout='paper'``, in eval mode the output of image b depends
    on the batch only through the set of images in it (``context='group'``), never on their order;
    with ``'released'`` it depends on the order and on the batch size too.
    """

    def __init__(self, in_channels: int = 512, key_channels: int = 256, num_regions: int = 21,
                 context: str = "group", temperature: float = 8.0, dropout: float = 0.05,
                 global_momentum: float = 0.99, bank_layout: str = "paper", train_replicas: int = 1,
                 norm_cfg: dict | None = None, act_cfg: dict | None = None) -> None:
        super().__init__()
        if context not in CONTEXT_MODES:
            raise ValueError(f"context must be one of {CONTEXT_MODES}, got {context!r}")
        if bank_layout not in BANK_LAYOUTS:
            raise ValueError(f"bank_layout must be one of {BANK_LAYOUTS}, got {bank_layout!r}")
        if isinstance(train_replicas, bool) or not isinstance(train_replicas, int) or train_replicas < 1:
            raise ValueError(f"train_replicas must be a positive integer, got {train_replicas!r}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive number, got {temperature}")
        if not 0.0 <= global_momentum < 1.0:
            raise ValueError(f"global_momentum must be in [0, 1), got {global_momentum}")
        norm_cfg = norm_cfg or dict(type="BN")
        act_cfg = act_cfg or dict(type="ReLU")
        self.in_channels = in_channels
        self.key_channels = key_channels
        self.num_regions = num_regions
        self.context = context
        self.temperature = float(temperature)
        self.global_momentum = float(global_momentum)
        self.bank_layout = bank_layout
        self.train_replicas = train_replicas
        if context == "none":
            return  # identity: no parameters, the classifier sees X

        def proj(cin: int, cout: int) -> ConvModule:
            # 1x1 conv (no bias) -> BN -> ReLU, as every projection of the released block
            return ConvModule(cin, cout, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)

        self.query_proj = nn.Sequential(proj(in_channels, key_channels), proj(key_channels, key_channels))
        self.key_proj = nn.Sequential(proj(in_channels, key_channels), proj(key_channels, key_channels))
        self.value_proj = proj(in_channels, key_channels)
        if context == "image":
            # released gpocr=False path: the intra-image context is lifted back to D channels
            self.up_proj = proj(key_channels, in_channels)
            fuse_in = 2 * in_channels
        else:
            fuse_in = 2 * key_channels + in_channels
        self.fuse = ConvModule(fuse_in, in_channels, 1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.dropout = nn.Dropout2d(dropout)
        if context == "global":
            self.register_buffer("global_bank", torch.zeros(num_regions, in_channels))
            self.register_buffer("global_bank_ready", torch.zeros((), dtype=torch.bool))

    def extra_repr(self) -> str:
        return (f"context={self.context!r}, temperature={self.temperature}, "
                f"bank_layout={self.bank_layout!r}, train_replicas={self.train_replicas}")

    def forward(self, x: Tensor, region_logits: Tensor) -> Tensor:
        """Args: x (B, D, H, W) pixel features; region_logits (B, K, H, W) aux logits at the same size.
        Returns the context-augmented features, (B, D, H, W)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must be (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if region_logits.dim() != 4 or region_logits.shape[1] != self.num_regions:
            raise ValueError(f"region_logits must be (B, {self.num_regions}, H, W), "
                             f"got {tuple(region_logits.shape)}")
        if self.context == "none":
            return x
        if self.training and self.train_replicas > 1 and x.shape[0] > 1:
            # DataParallel's scatter: torch.chunk along the batch, one forward per replica
            return torch.cat([self._forward(xc, pc) for xc, pc in
                              zip(x.chunk(self.train_replicas), region_logits.chunk(self.train_replicas))])
        return self._forward(x, region_logits)

    def _forward(self, x: Tensor, region_logits: Tensor) -> Tensor:
        b, _, h, w = x.shape
        e = self.key_channels
        regions = soft_region_features(x, region_logits)  # (B, K, D)
        region_maps = regions.transpose(1, 2).unsqueeze(3)  # (B, D, K, 1) for the 1x1 convs
        if self.context == "global":
            bank = self._global_bank(regions)  # (K, D)
            # one value pass over the images' regions and the bank: BN sees both once
            values_all = self.value_proj(torch.cat([region_maps, bank.t()[None, :, :, None]], 0))
            values_all = values_all.squeeze(3).transpose(1, 2)  # (B + 1, K, E)
            value, bank_value = values_all[:b], values_all[b]
        else:
            value = self.value_proj(region_maps).squeeze(3).transpose(1, 2)  # (B, K, E)
        key = self.key_proj(region_maps).squeeze(3).transpose(1, 2)  # (B, K, E)
        query = self.query_proj(x).flatten(2).transpose(1, 2)  # (B, N, E)

        intra = intra_image_context(query, key, value)  # (B, N, E)
        if self.context == "image":
            context = self.up_proj(intra.transpose(1, 2).reshape(b, e, h, w))  # (B, D, H, W)
        else:
            if self.context == "group":
                shared = bank_context(query, group_bank(value, self.bank_layout), self.temperature)
            else:
                shared = bank_context(query, bank_value, self.temperature)
            context = torch.cat([intra, shared], dim=2).transpose(1, 2).reshape(b, 2 * e, h, w)
        return self.dropout(self.fuse(torch.cat([context, x], dim=1)))

    def _global_bank(self, regions: Tensor) -> Tensor:
        """The global class representations, (K, D); EMA-updated from ``regions`` (B, K, D) in
        training mode. Before any training step the batch's own mean stands in for the bank."""
        batch_mean = regions.detach().mean(0)
        if self.training:
            with torch.no_grad():
                if bool(self.global_bank_ready):
                    self.global_bank.mul_(self.global_momentum).add_(batch_mean, alpha=1 - self.global_momentum)
                else:
                    self.global_bank.copy_(batch_mean)
                    self.global_bank_ready.fill_(True)
            return self.global_bank.clone()
        return self.global_bank if bool(self.global_bank_ready) else batch_mean


@MODELS.register_module()
class PSPGroupHead(PSPBody, BaseCascadeDecodeHead):
    """PSP module + group context module + classifier: stage 1 of a 2-stage ``CascadeEncoderDecoder``.

    Stage 0 is the auxiliary FCN head on the stride-8 layer-3 features; its logits are the soft
    object regions here (and the aux prediction). Released structure: pyramid pooling with bins
    (1, 2, 3, 6), each branch ``in_channels // 4`` channels, a 3x3 bottleneck to ``channels`` (512),
    no dropout, then :class:`GroupContextModule`, then a 1x1 classifier without bias. The PSP part
    and the classifier are :class:`pss_bench.baselines.psp_head.PSPBody`, the baselines' head.

    Args:
        pool_scales: pyramid pooling bins.
        ppm_channels: channels of each pooling branch; None = ``in_channels // len(pool_scales)``
            as released (512 for ResNet-50, 128 for VGG-16; mmseg's PSPHead would use ``channels``).
        ppm_align_corners: align_corners of the pooling-branch up-sampling (False as released);
            ``align_corners`` (True as released) applies to the logits' up-sampling.
        context, key_channels, temperature, context_dropout, global_momentum, bank_layout,
            train_replicas: see :class:`GroupContextModule`.
        **kwargs: :class:`mmseg.models.decode_heads.BaseDecodeHead` arguments
            (in_channels, channels, num_classes, in_index, norm_cfg, loss_decode, ...).

    Shapes: ``forward(inputs, prev_output)`` takes the backbone outputs (``inputs[in_index]`` is
    (B, in_channels, h, w)) and the stage-0 logits (B, num_classes, h', w'; resized to h x w if
    they differ) and returns logits (B, num_classes, h, w) at the feature stride.
    """

    def __init__(self, pool_scales: tuple[int, ...] = (1, 2, 3, 6), ppm_channels: int | None = None,
                 ppm_align_corners: bool = False, context: str = "group", key_channels: int = 256,
                 temperature: float = 8.0, context_dropout: float = 0.05,
                 global_momentum: float = 0.99, bank_layout: str = "paper", train_replicas: int = 1,
                 **kwargs) -> None:
        kwargs.setdefault("dropout_ratio", 0.0)  # released: no dropout before the classifier
        # released MainDecoder.conv1x1 keeps PyTorch's default init (mmseg: Normal std 0.01)
        kwargs.setdefault("init_cfg", None)
        super().__init__(**kwargs)
        self._init_psp(pool_scales, ppm_channels, ppm_align_corners)
        self.group_context = GroupContextModule(
            self.channels, key_channels, self.num_classes, context=context, temperature=temperature,
            dropout=context_dropout, global_momentum=global_momentum, bank_layout=bank_layout,
            train_replicas=train_replicas, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def forward(self, inputs: list[Tensor], prev_output: Tensor) -> Tensor:
        feats = self.psp_forward(inputs)
        if prev_output.dim() != 4 or prev_output.shape[1] != self.num_classes:
            raise ValueError(f"prev_output must be stage-0 logits (B, {self.num_classes}, h, w), "
                             f"got {tuple(prev_output.shape)}")
        if prev_output.shape[2:] != feats.shape[2:]:
            prev_output = resize(prev_output, size=feats.shape[2:], mode="bilinear",
                                 align_corners=self.align_corners)
        return self.cls_seg(self.group_context(feats, prev_output))

