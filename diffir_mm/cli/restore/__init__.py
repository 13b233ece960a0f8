"""``diffir-restore``: restore image files with a DiffIR stage-2 model.

Examples::

    # released deblurring model, a folder of photos, 512-px tiles sharing one global prior
    diffir-restore photos/ -o restored/ --task deblur --checkpoint DiffIRS2-GoPro.pth --tile 512

    # real-world SR x4 of two globs in bf16, side-by-side comparisons next to the results
    diffir-restore 'lr/*.png' 'more/*.jpg' -o sr/ --task sr --scale 4 \
        --checkpoint RealworldSR-DiffIRS2-GANx4.pth --precision bf16 --compare

    # architecture and task read from an mmengine config (data-preprocessor mean/std honoured)
    diffir-restore img.png -o out/ --config configs/diffir_sr_x2_s2.py --checkpoint iter_1000000.pth

    # inpainting: masks (non-zero = hole) with the same file stem in a folder
    diffir-restore imgs/ -o out/ --task inpaint --checkpoint DiffIRS2-celeba.ckpt --mask-dir masks/

Inputs may be files, folders (their image files, not recursive) or glob patterns, several of
each. Models are named as everywhere in diffir_mm: ``--task {deblur,sr,inpaint}``, ``--scale``
(SR, default 4), ``--big`` (inpainting). ``--task`` may be omitted when ``--checkpoint`` is given:
the task and scale are then read from the checkpoint; when given, the checkpoint must hold it.
Without ``--tile`` the output is the official inference's (the prior sees the whole image);
``--prior-max-side`` downscales what the prior sees, by default only in runs cut into tiles.
Results are ``OUT_DIR/<stem><suffix><ext>`` (``--ext`` defaults to the input's
extension); the bit depth, grayscale layout and alpha channel of each input are kept where the
output format allows (see :mod:`diffir_mm.inference.io`). Images of the same size are batched
(``--batch-size``). Seeds: every image uses a generator seeded with ``--seed``, so re-runs are
identical.

Robustness: a problem with one input (missing path, empty folder, unreadable or corrupt file,
unsupported layout, a failure while restoring or writing) is reported as one ``error:`` line on
stderr and the other inputs are still processed; conversions (grayscale, RGBA, 16-bit, padding of
small or odd-sized images) are reported as ``note:`` lines (``-q`` hides them). Outputs are written
atomically and never onto an input file. Exit status: 0 = all restored, 1 = some inputs failed,
2 = nothing could start (bad arguments, config or checkpoint -- e.g. a checkpoint of another task
or scale).

``--backend onnxruntime --onnx X.onnx`` runs an export of ``tools/export_onnx.py`` in ONNX Runtime
(the prior and DIRformer graphs; tiling and the shared prior as with PyTorch; ``--threads`` sets
its intra-op threads).

Inpainting (``--mask`` / ``--mask-dir``) follows the official ``bin/predict.py``: every non-zero
mask value is a hole (colour masks by their luma, as PIL's ``convert('L')``; a ``note:`` says when
a mask is not binary), image and mask are padded symmetrically to a multiple of 8, the output is
``mask * prediction + (1 - mask) * image``; a mask of another size than its image is an
``error:`` line. Unlike the official script, outputs are rounded rather than truncated to 8 bits
(see :mod:`diffir_mm.inference.inpainting`).

``--random-init`` (hidden) runs the released architecture (``--task``) or the config's network
with random weights, without a checkpoint: for tests and benchmarks only.

The package, one step of the command per module: :mod:`.arguments` (options and their checks),
:mod:`.model` (the Restorer they name, built by
:func:`diffir_mm.inference.loading.build_restorer` as ``diffir-app`` builds it),
:mod:`.discovery` (inputs and masks), :mod:`.run` (reading, batching, restoring, progress),
:mod:`.writing` (output names, never onto an input, atomic writes;
:func:`.writing.write_restored` writes a result as this command does, for other front ends),
:mod:`.errors` (exit statuses, ``error:`` / ``note:`` lines) and :mod:`.command` (:func:`main`).
``python -m diffir_mm.cli.restore`` runs it too.
"""
from .arguments import build_parser
from .command import main
from .discovery import collect_inputs

__all__ = ['main', 'build_parser', 'collect_inputs']
