"""diffir_mm.cli.restore.model: the options become the Restorer that build_restorer builds."""
import pytest
import torch
from helpers import official_checkpoint, tiny_net

from diffir_mm.checkpoint import CheckpointMismatchError
from diffir_mm.cli.restore.arguments import build_parser
from diffir_mm.cli.restore.model import mask_problem, restorer_from_args


@pytest.fixture(scope='module')
def sr_x2(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'sr_x2.pth'
    torch.save(official_checkpoint(tiny_net('sr_x2')), path)
    return str(path)


def _args(*argv):
    return build_parser().parse_args(['x.png', '-o', 'out', *argv])


def test_every_run_option_reaches_the_restorer(sr_x2):
    restorer = restorer_from_args(_args(
        '--checkpoint', sr_x2, '--device', 'cpu', '--precision', 'bf16', '--tile', '64',
        '--tile-overlap', '8', '--tile-batch', '2', '--seed', '7', '--prior-max-side', '0',
        '--compile', 'off'))
    assert (restorer.task, restorer.scale) == ('sr', 2)  # read from the checkpoint
    assert (restorer.tile, restorer.tile_overlap, restorer.tile_batch) == (64, 8, 2)
    assert (restorer.precision, restorer.seed, restorer.prior_max_side) == ('bf16', 7, 0)
    assert restorer.device == torch.device('cpu') and not restorer.compiled
    untiled = restorer_from_args(_args('--checkpoint', sr_x2, '--device', 'cpu'))
    assert untiled.tile is None and untiled.prior_max_side is None


def test_compile_option(sr_x2):
    compiled = restorer_from_args(_args('--checkpoint', sr_x2, '--device', 'cpu', '--compile',
                                        'on'))
    assert compiled.compiled


def test_the_requested_task_is_checked(sr_x2):
    with pytest.raises(CheckpointMismatchError, match='sr x2 model.*but a stage-2 sr x4 model'):
        restorer_from_args(_args('--checkpoint', sr_x2, '--task', 'sr'))
    with pytest.raises(ValueError, match='^--checkpoint is required$'):
        restorer_from_args(_args('--task', 'deblur'))


@pytest.mark.parametrize('task,argv,problem', [
    ('inpaint', [], 'inpainting needs --mask or --mask-dir'),
    ('inpaint', ['--mask', 'm.png'], None),
    ('sr', ['--mask-dir', 'masks'], '--mask/--mask-dir only apply to inpainting (model: sr)'),
    ('deblur', [], None),
])
def test_mask_problem(task, argv, problem):
    assert mask_problem(task, _args(*argv)) == problem
