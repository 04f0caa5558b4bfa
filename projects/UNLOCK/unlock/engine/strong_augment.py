"""Strong photometric augmentation of the ClassMix images: colour jitter and Gaussian blur.

The authors' ClassMix branch augments the mixed images as DACS does, before the student sees
them; the teacher's input stays clean, so the student learns to agree with the teacher under
photometric change. One random decision per batch switches each augmentation on:

* colour jitter with probability ``jitter_prob`` (authors: 0.8): per image, brightness, contrast
  and saturation factors drawn from U(1 - s, 1 + s) and a hue shift from U(-s, s) with strength
  s = ``jitter_strength`` (authors: 0.2), applied in a random order per image (as torchvision's
  ``ColorJitter``; the authors use kornia's);
* Gaussian blur with probability ``blur_prob`` (authors: 0.5): one sigma ~ U(``blur_sigma``) for
  the batch, an odd kernel of about ``kernel_fraction`` (10 %) of each side, reflect padding.

Images are detectron2 model inputs: (3, H, W) tensors in ``image_format`` ("BGR" or "RGB"),
0..255, any dtype; the outputs keep shape, channel order and dtype (integers are rounded).
"""

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torchvision.transforms.functional as TF

__all__ = ["StrongAugment", "blur_kernel_size"]


def blur_kernel_size(side: int, fraction: float = 0.1) -> int:
    """The authors' kernel size: ceil(fraction * side), minus one when even (400 px -> 39)."""
    k = math.ceil(fraction * side)
    return max(k - 1 if k % 2 == 0 else k, 1)


@dataclass(frozen=True)
class StrongAugment:
    jitter_prob: float = 0.8
    jitter_strength: float = 0.2
    blur_prob: float = 0.5
    blur_sigma: Tuple[float, float] = (0.15, 1.15)
    kernel_fraction: float = 0.1
    image_format: str = "BGR"

    def __post_init__(self):
        for name in ("jitter_prob", "blur_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} not in [0, 1]")
        if not 0.0 <= self.jitter_strength <= 0.5:
            raise ValueError(f"jitter_strength={self.jitter_strength} not in [0, 0.5]")
        low, high = self.blur_sigma
        if not 0.0 < low <= high:
            raise ValueError(f"blur_sigma={self.blur_sigma}: need 0 < low <= high")
        if self.image_format not in ("BGR", "RGB"):
            raise ValueError(f"image_format={self.image_format!r}: only BGR or RGB inputs")

    @property
    def enabled(self) -> bool:
        return self.jitter_prob > 0 or self.blur_prob > 0

    def __call__(
        self, images: Sequence[torch.Tensor], generator: Optional[torch.Generator] = None
    ) -> List[torch.Tensor]:
        """The augmented batch; ``generator`` defaults to torch's global one (seeded by SEED)."""

        def uniform(low: float, high: float) -> float:
            return low + (high - low) * torch.rand((), generator=generator).item()

        jitter = uniform(0, 1) < self.jitter_prob
        blur = uniform(0, 1) < self.blur_prob
        if not (jitter or blur):
            return list(images)
        sigma = uniform(*self.blur_sigma)
        out = []
        for image in images:
            x = self._to_unit_rgb(image)
            if jitter:
                x = self._jitter(x, uniform, generator)
            if blur:
                h, w = x.shape[-2:]
                kernel = [blur_kernel_size(w, self.kernel_fraction),
                          blur_kernel_size(h, self.kernel_fraction)]  # fmt: skip
                if max(kernel) > 1:
                    x = TF.gaussian_blur(x, kernel, [sigma, sigma])
            out.append(self._from_unit_rgb(x, image))
        return out

    def _jitter(self, x: torch.Tensor, uniform, generator) -> torch.Tensor:
        s = self.jitter_strength
        ops = [
            lambda t, f=uniform(1 - s, 1 + s): TF.adjust_brightness(t, f),
            lambda t, f=uniform(1 - s, 1 + s): TF.adjust_contrast(t, f),
            lambda t, f=uniform(1 - s, 1 + s): TF.adjust_saturation(t, f),
            lambda t, f=uniform(-s, s): TF.adjust_hue(t, f),
        ]
        for i in torch.randperm(len(ops), generator=generator).tolist():
            x = ops[i](x)
        return x

    def _to_unit_rgb(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) image, got {tuple(image.shape)}")
        x = image.float() / 255.0
        return x.flip(0) if self.image_format == "BGR" else x

    def _from_unit_rgb(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        x = (x.flip(0) if self.image_format == "BGR" else x).clamp(0, 1) * 255.0
        if like.dtype.is_floating_point:
            return x.to(like.dtype)
        return x.round().to(like.dtype)
