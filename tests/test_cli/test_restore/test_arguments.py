"""diffir_mm.cli.restore.arguments: the options and the checks made before any model is loaded."""
import pytest

from diffir_mm.cli.restore.arguments import build_parser, validate


def _args(*argv):
    return build_parser().parse_args(['x.png', '-o', 'out', *argv])


def test_defaults():
    args = _args()
    assert (args.precision, args.compile, args.backend) == ('auto', 'auto', 'pytorch')
    assert (args.tile, args.batch_size, args.tile_batch, args.seed) == (0, 1, 1, 0)
    assert args.prior_max_side is None and args.ext is None and args.suffix == ''
    assert validate(args) is None


@pytest.mark.parametrize('argv', [['--task', 'sr', '--config', 'c.py'], ['--scale', '3'],
                                  ['--precision', 'fp8'], ['--backend', 'tensorrt']])
def test_parser_rejects(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        _args(*argv)
    assert exc.value.code == 2
    assert 'error:' in capsys.readouterr().err


@pytest.mark.parametrize('argv,message', [
    (['--tile', '-1'], '--tile must be >= 0'),
    (['--tile-overlap', '-1'], '--tile-overlap must be >= 0'),
    (['--tile', '32'], '--tile-overlap (32) must be smaller than --tile (32)'),
    (['--batch-size', '0'], '--tile-batch and --batch-size must be >= 1'),
    (['--tile-batch', '0'], '--tile-batch and --batch-size must be >= 1'),
    (['--task', 'sr', '--big'], '--big applies to --task inpaint only'),
    (['--prior-max-side', '-1'], '--prior-max-side must be >= 0'),
    (['--mask', 'm.png', '--mask-dir', 'masks'], 'give either --mask or --mask-dir'),
    (['--backend', 'onnxruntime'],
     '--backend onnxruntime needs --onnx X.onnx (from tools/export_onnx.py)'),
    (['--backend', 'onnxruntime', '--onnx', 'x.onnx', '--checkpoint', 'c.pth'],
     '--checkpoint does not apply to --backend onnxruntime (the weights are in --onnx)'),
    (['--backend', 'onnxruntime', '--onnx', 'x.onnx', '--compile', 'on'],
     '--compile on applies to the pytorch backend'),
    (['--onnx', 'x.onnx'], '--onnx needs --backend onnxruntime'),
    (['--mask', 'missing.png'], '--mask missing.png: no such file'),
    (['--mask-dir', 'missing'], '--mask-dir missing: no such folder'),
    (['--ext', 'xyz'], '--ext xyz: OpenCV cannot write this format'),
])
def test_validate_names_the_problem(argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert validate(_args(*argv)) == message


def test_validate_accepts_what_exists(tmp_path):
    (tmp_path / 'm.png').write_bytes(b'')
    (tmp_path / 'masks').mkdir()
    for argv in (['--mask', str(tmp_path / 'm.png')], ['--mask-dir', str(tmp_path / 'masks')],
                 ['--ext', '.PNG'], ['--tile', '64', '--tile-overlap', '16'],
                 ['--backend', 'onnxruntime', '--onnx', 'x.onnx']):
        assert validate(_args(*argv)) is None, argv


def test_an_out_dir_that_is_a_file(tmp_path):
    (tmp_path / 'f').write_text('x')
    args = build_parser().parse_args(['x.png', '-o', str(tmp_path / 'f')])
    assert validate(args) == f'--out-dir {tmp_path / "f"} exists and is not a folder'
