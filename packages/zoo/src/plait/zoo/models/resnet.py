"""``resnet``: a small ResNet of basic blocks (two 3x3 convs with BatchNorm) for 28x28 / 32x32 images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plait.core import ConfigError, Module, ModuleList, check_array

from ..builders import LayerSpec, build_layer, run_backward, run_forward
from ..catalog import register_model
from . import _sizes

__all__ = ["BasicBlock", "ResNet"]


class BasicBlock(Module):
    """y = act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x)); shortcut = 1x1 conv + BN when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: LayerSpec = "relu") -> None:
        super().__init__()
        self.conv1 = build_layer("conv2d", in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = build_layer("batch_norm2d", out_channels)
        self.act1 = build_layer(activation, where="resnet activation")
        self.conv2 = build_layer("conv2d", out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = build_layer("batch_norm2d", out_channels)
        self.act2 = build_layer(activation, where="resnet activation")
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ModuleList([
                build_layer("conv2d", in_channels, out_channels, 1, stride=stride, bias=False),
                build_layer("batch_norm2d", out_channels),
            ])
        else:
            self.shortcut = None

    def _main(self) -> list[Module]:
        return [self.conv1, self.bn1, self.act1, self.conv2, self.bn2]

    def forward(self, x: Any) -> Any:
        skip = x if self.shortcut is None else run_forward(self.shortcut, x)
        return self.act2(run_forward(self._main(), x) + skip)

    def backward(self, dy: Any) -> Any:
        dz = self.act2.backward(dy)
        dx = run_backward(self._main(), dz)
        return dx + (dz if self.shortcut is None else run_backward(self.shortcut, dz))


@register_model("resnet")
class ResNet(Module):
    """x: (B, in_channels, H, W) -> logits (B, num_classes).

    Stem: 3x3 conv + BN + activation; then one stage per entry of ``widths`` with
    ``blocks[i]`` basic blocks (stride 2 at the start of every stage but the first);
    global average pooling; a linear classifier. ``widths=(16, 32, 64), blocks=(1, 1, 1)``
    is ResNet-8 (CIFAR-style); it takes 28x28 and 32x32 inputs alike.

    Args:
        in_channels: default 3 (RGB; the ``resnet8-mnist`` preset uses 1).
        num_classes: default 10; the logits' width.
        widths: default ``(16, 32, 64)``; the channels of each stage.
        blocks: default ``(1, 1, 1)``; the basic blocks of each stage (0 allowed), one per width.
        activation: default ``"relu"``; the layer spec after the stem and inside every block.

    Raises:
        ConfigError: ``widths`` and ``blocks`` of different or zero length, a size that is
            not a positive integer, an unknown layer spec, or too many parameters.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        widths: Sequence[int] = (16, 32, 64),
        blocks: Sequence[int] = (1, 1, 1),
        activation: LayerSpec = "relu",
    ) -> None:
        super().__init__()
        widths, blocks = _sizes.sizes(widths, "resnet", "widths"), _sizes.sizes(blocks, "resnet", "blocks", minimum=0)
        if len(widths) != len(blocks) or not widths:
            raise ConfigError(f"resnet: widths {widths} and blocks {blocks} need the same, non-zero length")
        self.in_channels = _sizes.size(in_channels, "resnet", "in_channels")
        num_classes = _sizes.size(num_classes, "resnet", "num_classes")
        # two 3x3 convs and two BatchNorms per block (+ a 1x1 shortcut when the width changes), stem and head
        per_stage = [n * (18 * w * w + 4 * w) + w * (w + 4) for w, n in zip(widths, blocks)]
        _sizes.check_parameter_count(9 * self.in_channels * widths[0] + sum(per_stage) + widths[-1] * (num_classes + 1),
                                     "resnet")
        self.stem = ModuleList([
            build_layer("conv2d", self.in_channels, int(widths[0]), 3, padding=1, bias=False, where="resnet"),
            build_layer("batch_norm2d", int(widths[0]), where="resnet"),
            build_layer(activation, where="resnet activation"),
        ])
        stages: list[Module] = []
        c_in = int(widths[0])
        for i, (width, count) in enumerate(zip(widths, blocks)):
            for j in range(int(count)):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(BasicBlock(c_in, int(width), stride, activation))
                c_in = int(width)
        self.blocks = ModuleList(stages)
        self.pool = ModuleList([
            build_layer("adaptive_avg_pool2d", 1, where="resnet"),
            build_layer("flatten", where="resnet"),
        ])
        self.fc = build_layer("linear", c_in, int(num_classes), where="resnet")

    def _layers(self) -> list[Module]:
        return [*self.stem, *self.blocks, *self.pool, self.fc]

    def forward(self, x: Any) -> Any:
        x = check_array(x, "resnet", ndim=4, dims={1: self.in_channels})
        return run_forward(self._layers(), x)

    def backward(self, dlogits: Any) -> Any:
        """Gradient w.r.t. the input images.

        Args:
            dlogits: the gradient w.r.t. the logits, ``(B, num_classes)``.

        Returns:
            ``dx`` of shape ``(B, in_channels, H, W)``.
        """
        return run_backward(self._layers(), dlogits)
