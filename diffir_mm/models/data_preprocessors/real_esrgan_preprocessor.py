"""Device-side, batched second-order degradation + training-pair queue (official DiffIR-RealSR).

The official RealSR models (``DiffIR_S{1,2}_model.py``, ``DiffIR_GAN_S2_model.py`` ``feed_data``;
``docs/advanced_guides/method.md`` §4.4) synthesise the LQ images on the GPU from a batch of
400x400 GT crops and the per-sample kernels of the dataset, then crop the GT patch and push the
pair through a 180-sample queue. This data preprocessor does the same inside MMagic's
``data_preprocessor(data, training=True)`` call, so every editor gets it without code of its own;
validation and testing (``training=False``) and batches that already carry an LQ input (the CPU
pipeline ``train_pipeline_cpu``) go through MMagic's ``DataPreprocessor`` unchanged.

What is drawn where (as the official code):

* **per batch** (NumPy generator): resize up/down/keep, its factor and interpolation (both
  orders), Gaussian-vs-Poisson, whether the second blur happens, the order of
  {final resize + sinc, JPEG}, the final interpolation, the patch position and the queue
  shuffle;
* **per sample** (torch generator on the device): noise sigma / Poisson scale, gray noise,
  JPEG quality (float, ``U(30, 95)``); the kernels come per sample from the dataset
  (:class:`~diffir_mm.datasets.transforms.GenerateRealESRGANKernels`).

The queue holds ``queue_size`` (LQ, GT) patch pairs in 8 bit (both are 8-bit exact), is filled
first (the batch passes through unchanged) and then, each step, shuffled; the batch is swapped
with its first ``B`` entries. Its content and both generators are saved in checkpoints (module
extra state), so a resumed run continues the same stream. ``gt_unsharp`` (USM of the GT patch,
0-255) is recomputed after the queue, as the official GAN model; with ``degrade_unsharp_gt``
(the V2 recipes) the LQ is synthesised from the USM-sharpened 400x400 GT.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmagic.models.data_preprocessors import DataPreprocessor
from mmagic.registry import MODELS
from mmagic.structures import DataSample

from diffir_mm.datasets.transforms.real_esrgan_degradations import (RealESRGANRandomNoise,
                                                                     RealESRGANRandomResize,
                                                                     _skip)
from .degradations import (DiffJPEG, add_gaussian_noise, add_poisson_noise, filter2d,
                           quantize8, resize, usm_sharpen)

__all__ = ['RealESRGANDegradationPreprocessor', 'TrainingPairQueue']

KERNEL_KEYS = ('kernel1', 'kernel2', 'sinc_kernel')


class TrainingPairQueue:
    """The official training-pair pool: fill, then shuffle and swap a batch per step.

    Args:
        size: Number of pairs (official 180); the batch size must divide it.
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.lq: Optional[torch.Tensor] = None
        self.gt: Optional[torch.Tensor] = None
        self.ptr = 0

    @staticmethod
    def _to8(x: torch.Tensor) -> torch.Tensor:
        return (x * 255).round().clamp(0, 255).to(torch.uint8)

    def __call__(self, lq: torch.Tensor, gt: torch.Tensor,
                 rng: np.random.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """Enqueue ``(lq, gt)`` (``[0, 1]``, 8-bit levels); return the pairs to train on."""
        b = lq.shape[0]
        if self.lq is None or self.lq.shape[1:] != lq.shape[1:] or \
                self.gt.shape[1:] != gt.shape[1:]:
            if self.size % b:
                raise ValueError(f'queue_size {self.size} must be divisible by the batch '
                                 f'size {b}')
            self.lq = lq.new_zeros((self.size, ) + lq.shape[1:], dtype=torch.uint8)
            self.gt = gt.new_zeros((self.size, ) + gt.shape[1:], dtype=torch.uint8)
            self.ptr = 0
        self.lq, self.gt = self.lq.to(lq.device), self.gt.to(gt.device)
        if self.ptr < self.size:
            self.lq[self.ptr:self.ptr + b] = self._to8(lq)
            self.gt[self.ptr:self.ptr + b] = self._to8(gt)
            self.ptr += b
            return lq, gt
        perm = torch.from_numpy(rng.permutation(self.size)).to(lq.device)
        self.lq, self.gt = self.lq[perm], self.gt[perm]
        out_lq, out_gt = self.lq[:b].to(lq.dtype) / 255, self.gt[:b].to(gt.dtype) / 255
        self.lq[:b], self.gt[:b] = self._to8(lq), self._to8(gt)
        return out_lq, out_gt

    def state(self) -> Dict:
        """Content and fill pointer (CPU tensors)."""
        return dict(lq=None if self.lq is None else self.lq.cpu(),
                    gt=None if self.gt is None else self.gt.cpu(), ptr=self.ptr)

    def load(self, state: Dict) -> None:
        """Restore :meth:`state`."""
        self.lq, self.gt, self.ptr = state['lq'], state['gt'], int(state['ptr'])


@MODELS.register_module()
class RealESRGANDegradationPreprocessor(DataPreprocessor):
    """MMagic ``DataPreprocessor`` that synthesises real-SR training pairs on the device.

    Training batches must come from a GT-only pipeline that ends with
    ``GenerateRealESRGANKernels`` and ``PackInputs(keys=[], data_keys=[kernel keys])`` (see
    ``configs/_base_/datasets/realsr_df2k_ost.py``: ``train_pipeline``). The settings use the
    dicts of the CPU transforms (:class:`RealESRGANRandomResize`,
    :class:`RealESRGANRandomNoise`, ``RandomJPEGCompression``), so both pipelines read the same
    values.

    Args:
        scale: SR scale (LQ = GT / scale).
        gt_size: GT patch cropped after the degradation (official 256).
        first_resize, second_resize: ``RealESRGANRandomResize`` params (``resize_mode_prob``,
            ``resize_scale``, ``resize_opt``, ``resize_prob``); the second scales the target LR
            size ``gt / scale``, as the official code.
        first_noise, second_noise: ``RealESRGANRandomNoise`` params.
        first_jpeg, second_jpeg: ``dict(quality=[lo, hi])``, float quality ``U(lo, hi)``.
        second_blur_prob: Probability (per batch) of the second blur.
        final_resize: Params of the final resize to ``gt / scale`` (only ``resize_opt`` /
            ``resize_prob`` are used).
        final_sinc_first_prob: Probability of {resize + sinc, then JPEG} (else JPEG first).
        queue_size: Training-pair queue length (official 180); 0 disables the queue.
        unsharp: ``usm_sharpen`` settings for ``gt_unsharp`` (None: no ``gt_unsharp``).
        degrade_unsharp_gt: Synthesise the LQ from the USM-sharpened GT (V2 recipes).
        share_gray_noise_map: One gray Gaussian noise map per batch, as the official code.
        seed: Base seed of both generators (``+ rank``); None: ``torch.initial_seed()`` at the
            first training batch (set by mmengine's ``randomness``).
        save_state: Save queue and generators in checkpoints.
        **kwargs: ``DataPreprocessor`` arguments (``mean``, ``std``, ``output_channel_order``).
    """

    def __init__(self, scale: int, gt_size: int, first_resize: dict, first_noise: dict,
                 first_jpeg: dict, second_resize: dict, second_noise: dict, second_jpeg: dict,
                 final_resize: dict, second_blur_prob: float = 0.8,
                 final_sinc_first_prob: float = 0.5, queue_size: int = 180,
                 unsharp: Optional[dict] = None, degrade_unsharp_gt: bool = False,
                 share_gray_noise_map: bool = True, seed: Optional[int] = None,
                 save_state: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = int(scale)
        self.gt_size = int(gt_size)
        self.first_resize = RealESRGANRandomResize(dict(first_resize, reference='input'))
        self.second_resize = RealESRGANRandomResize(dict(second_resize, reference='target'))
        final = {k: v for k, v in final_resize.items() if k in ('resize_opt', 'resize_prob')}
        self.final_resize = RealESRGANRandomResize(dict(final, reference='target'))
        self.first_noise = RealESRGANRandomNoise(first_noise)
        self.second_noise = RealESRGANRandomNoise(second_noise)
        self.jpeg_ranges = (self._quality_range(first_jpeg), self._quality_range(second_jpeg))
        self.second_blur_prob = float(second_blur_prob)
        self.final_sinc_first_prob = float(final_sinc_first_prob)
        self.queue = TrainingPairQueue(queue_size) if queue_size else None
        self.unsharp = dict(unsharp) if unsharp is not None else None
        if degrade_unsharp_gt and self.unsharp is None:
            raise ValueError('degrade_unsharp_gt needs the unsharp settings')
        self.degrade_unsharp_gt = degrade_unsharp_gt
        self.share_gray_noise_map = share_gray_noise_map
        self.seed = seed
        self.save_state = save_state
        self.jpeg = DiffJPEG()
        self.last_draws: Dict = {}
        self._batch_rng: Optional[np.random.Generator] = None
        self._sample_rng: Optional[torch.Generator] = None
        self._pending_rng_state: Optional[Dict] = None
        self._announced = False

    @staticmethod
    def _quality_range(params: dict) -> Tuple[float, float]:
        lo, hi = params['quality']
        if not 0 < lo <= hi <= 100:
            raise ValueError(f'JPEG quality range must lie in (0, 100], got {[lo, hi]}')
        return float(lo), float(hi)

    # ------------------------------------------------------------------ random generators
    def _generators(self, device: torch.device) -> Tuple[np.random.Generator, torch.Generator]:
        if self._batch_rng is None:
            base = int(self.seed if self.seed is not None else torch.initial_seed() % 2**62)
            rank, _ = get_dist_info()
            self._batch_rng = np.random.default_rng([base, rank])
            self._sample_rng = torch.Generator(device=device)
            self._sample_rng.manual_seed(int(np.random.default_rng([base, rank, 1]).integers(
                2**62)))
            if self._pending_rng_state is not None:
                self._batch_rng.bit_generator.state = self._pending_rng_state['batch']
                self._sample_rng.set_state(self._pending_rng_state['sample'])
                self._pending_rng_state = None
        elif self._sample_rng.device != device:
            state = self._sample_rng.get_state()
            self._sample_rng = torch.Generator(device=device)
            self._sample_rng.set_state(state)
        return self._batch_rng, self._sample_rng

    def _uniform(self, b: int, lo: float, hi: float, gen: torch.Generator,
                 device: torch.device) -> torch.Tensor:
        return torch.rand(b, generator=gen, device=device) * (hi - lo) + lo

    def _noise_draws(self, noise: RealESRGANRandomNoise, b: int, rng: np.random.Generator,
                     gen: torch.Generator, device: torch.device) -> Dict:
        kind = noise.draw_kind(rng)
        level = self._uniform(b, *noise.level_range(kind), gen, device)
        gray = torch.rand(b, generator=gen, device=device) < noise.gray_prob(kind)
        return dict(kind=kind, level=level, gray=gray)

    def draw(self, b: int, device: torch.device) -> Dict:
        """Draw every random parameter of one batch of ``b`` samples (see module docstring).

        Returns:
            dict: Batch-level values as Python scalars, per-sample values as ``(b,)`` tensors.
        """
        rng, gen = self._generators(device)
        first_factor, first_mode = self.first_resize.draw(rng)
        first_noise = self._noise_draws(self.first_noise, b, rng, gen, device)
        jpeg1 = self._uniform(b, *self.jpeg_ranges[0], gen, device)
        second_blur = not _skip(dict(prob=self.second_blur_prob), rng)
        second_factor, second_mode = self.second_resize.draw(rng)
        second_noise = self._noise_draws(self.second_noise, b, rng, gen, device)
        sinc_first = bool(rng.uniform() < self.final_sinc_first_prob)
        _, final_mode = self.final_resize.draw(rng)
        jpeg2 = self._uniform(b, *self.jpeg_ranges[1], gen, device)
        return dict(first_factor=first_factor, first_mode=first_mode, first_noise=first_noise,
                    jpeg1=jpeg1, second_blur=second_blur, second_factor=second_factor,
                    second_mode=second_mode, second_noise=second_noise, sinc_first=sinc_first,
                    final_mode=final_mode, jpeg2=jpeg2)

    # ------------------------------------------------------------------ degradation
    def _add_noise(self, img: torch.Tensor, draws: Dict, gen: torch.Generator) -> torch.Tensor:
        if draws['kind'] == 'gaussian':
            return add_gaussian_noise(img, draws['level'], draws['gray'], gen,
                                      share_gray_map=self.share_gray_noise_map)
        return add_poisson_noise(img, draws['level'], draws['gray'], gen)

    def degrade(self, gt: torch.Tensor, kernels: Dict[str, torch.Tensor],
                draws: Dict) -> torch.Tensor:
        """Second-order degradation of ``(B, 3, H, W)`` RGB ``[0, 1]`` images.

        Args:
            gt: Source images (400x400 GT crops, or their USM version for V2).
            kernels: ``kernel1``, ``kernel2``, ``sinc_kernel``, each ``(B, k, k)``.
            draws: Output of :meth:`draw`.

        Returns:
            LQ images of size ``(H // scale, W // scale)``, rounded to 8-bit levels.
        """
        _, gen = self._generators(gt.device)
        h, w = gt.shape[-2:]
        target = (h // self.scale, w // self.scale)
        out = filter2d(gt, kernels['kernel1'])
        out = resize(out, None, draws['first_mode'], scale_factor=draws['first_factor'])
        out = self._add_noise(out, draws['first_noise'], gen)
        out = self.jpeg(out.clamp(0, 1), draws['jpeg1'])
        if draws['second_blur']:
            out = filter2d(out, kernels['kernel2'])
        f = draws['second_factor']
        out = resize(out, (int(h / self.scale * f), int(w / self.scale * f)),
                     draws['second_mode'])
        out = self._add_noise(out, draws['second_noise'], gen)
        if draws['sinc_first']:
            out = filter2d(resize(out, target, draws['final_mode']), kernels['sinc_kernel'])
            out = self.jpeg(out.clamp(0, 1), draws['jpeg2'])
        else:
            out = self.jpeg(out.clamp(0, 1), draws['jpeg2'])
            out = filter2d(resize(out, target, draws['final_mode']), kernels['sinc_kernel'])
        return quantize8(out)

    def paired_crop(self, lq: torch.Tensor, gt: torch.Tensor,
                    rng: np.random.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
        """One random ``gt_size`` patch position for the whole batch (as BasicSR)."""
        patch = self.gt_size // self.scale
        h, w = lq.shape[-2:]
        if h < patch or w < patch:
            raise ValueError(f'LQ {h}x{w} is smaller than the patch {patch}x{patch}; use GT '
                             f'crops of at least {self.gt_size}')
        top, left = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        s = self.scale
        lq = lq[..., top:top + patch, left:left + patch]
        gt = gt[..., top * s:top * s + self.gt_size, left * s:left * s + self.gt_size]
        return lq, gt

    # ------------------------------------------------------------------ MMagic interface
    def _normalize(self, img01: torch.Tensor) -> torch.Tensor:
        x = img01 * 255
        if self.output_channel_order == 'BGR':
            x = x.flip(1)
        if self._enable_normalize:
            x = (x - self.mean) / self.std
        return x

    @staticmethod
    def _stack(samples: Sequence[DataSample], key: str, device: torch.device) -> torch.Tensor:
        return torch.stack([s.get(key) for s in samples]).to(device)

    def synthesize(self, samples: List[DataSample]) -> Tuple[torch.Tensor, DataSample]:
        """Degrade, crop and queue one batch; return normalised inputs and data samples."""
        device = self._device
        raw = self._stack(samples, 'gt_img', device)
        gt = raw.float() / 255 if raw.dtype == torch.uint8 else raw.float()
        if samples[0].metainfo.get('gt_channel_order', 'rgb').lower() == 'bgr':
            gt = gt.flip(1)
        k = samples[0].get(KERNEL_KEYS[0]).shape[-1]
        kernels = {key: self._stack(samples, key, device).reshape(-1, k, k).float()
                   for key in KERNEL_KEYS}
        rng, _ = self._generators(device)
        draws = self.draw(gt.shape[0], device)
        source = usm_sharpen(gt, **self.unsharp) if self.degrade_unsharp_gt else gt
        lq = self.degrade(source, kernels, draws)
        lq, gt = self.paired_crop(lq, gt, rng)
        if self.queue is not None:
            lq, gt = self.queue(lq, gt, rng)
        self.last_draws = draws
        out = DataSample(gt_img=self._normalize(gt))
        if self.unsharp is not None:
            usm = usm_sharpen(gt, **self.unsharp) * 255
            out.gt_unsharp = usm.flip(1) if self.output_channel_order == 'BGR' else usm
        out.set_metainfo({'gt_img_enable_norm': self._enable_normalize,
                          'gt_img_output_channel_order': self.output_channel_order,
                          'gt_img_mean': self.mean, 'gt_img_std': self.std})
        return self._normalize(lq).contiguous(), out

    def forward(self, data: dict, training: bool = False) -> dict:
        """Synthesise training pairs (GT + kernels); anything else as ``DataPreprocessor``."""
        samples = data.get('data_samples')
        batched = training and samples is not None and len(samples) > 0 and all(
            key in samples[0] for key in KERNEL_KEYS)
        if not self._announced and training:
            how = 'on the device (batched)' if batched else 'by the data pipeline (CPU)'
            print_log(f'Real-ESRGAN degradation: training pairs are synthesised {how}',
                      'current')
            self._announced = True
        if not batched:
            return super().forward(data, training)
        with torch.no_grad():
            inputs, stacked = self.synthesize(list(samples))
        return dict(inputs=inputs, data_samples=stacked)

    # ------------------------------------------------------------------ checkpoint state
    def get_extra_state(self) -> Dict:
        """Queue and generator states (saved with the model when ``save_state``)."""
        if not self.save_state:
            return {}
        state: Dict = dict(queue=self.queue.state() if self.queue is not None else None)
        if self._batch_rng is not None:
            state['rng'] = dict(batch=self._batch_rng.bit_generator.state,
                                sample=self._sample_rng.get_state())
        return state

    def set_extra_state(self, state: Dict) -> None:
        """Restore :meth:`get_extra_state`."""
        if not state:
            return
        if state.get('queue') is not None and self.queue is not None:
            self.queue.load(state['queue'])
        if state.get('rng') is not None:
            self._batch_rng = self._sample_rng = None
            self._pending_rng_state = state['rng']
