"""The model folder (model.safetensors + config.json + README.md card) of
``tools/convert_official_ckpt.py --format safetensors``, and every entry point reading it.

* what the folder holds: each network once, ``config.json`` read from the weights, the card's
  numbers from ``configs/metafile.yml``;
* round trip: official ``.pth`` -> folder -> ``load_official``, ``Restorer``, ``diffir-restore``,
  ``MMagicInferencer`` and spandrel give outputs identical to the ``.pth``'s;
* nothing is overwritten, nothing partial is left;
* a ``.safetensors`` with a wrong shape, a missing key or a header that lies is one line in every
  entry point; reading never unpickles.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import struct
from pathlib import Path
from typing import Callable, Dict, List

import cv2
import numpy as np
import pytest
import torch
import yaml
from helpers import (REPO_ROOT, TINY, import_tool, official_checkpoint, released_weights_spec,
                     synthetic_state_dict, tiny_net)
from safetensors import safe_open
from safetensors.torch import save_file as save_safetensors

import diffir_mm
from diffir_mm import load_official
from diffir_mm.checkpoint import (CheckpointMismatchError, infer_arch_kwargs, read_checkpoint,
                                  read_network)
from diffir_mm.checkpoint.card import release_layout, render_card
from diffir_mm.checkpoint.formats import is_big_inpainting
from diffir_mm.checkpoint.safe_load import SAFETENSORS_META_KEY
from diffir_mm.inference import Restorer

ARCH = dict(TINY, num_refinement_blocks=1)
METAFILE = os.path.join(REPO_ROOT, 'configs', 'metafile.yml')
#: The file name of the GAN x4 release (configs/metafile.yml names it as its ``Official file``).
GAN_X4 = 'DiffIRS2-GAN.pth'


@pytest.fixture(scope='module')
def tool():
    return import_tool('convert_official_ckpt')


@pytest.fixture(scope='module')
def released(tmp_path_factory):
    """A tiny SR x4 network in the released BasicSR layout: ``params`` != ``params_ema``."""
    root = tmp_path_factory.mktemp('released')
    ema, raw = tiny_net('sr_x4', 0), tiny_net('sr_x4', 1)
    ckpt = official_checkpoint(ema)
    ckpt['params'] = official_checkpoint(raw)['params_ema']
    torch.save(ckpt, root / GAN_X4)
    return root / GAN_X4, ema


@pytest.fixture(scope='module')
def released_full(tmp_path_factory):
    """The full-size SR x4 release layout (synthetic weights) under the GAN release's file name,
    and its model folder."""
    root = tmp_path_factory.mktemp('released_full')
    sd = synthetic_state_dict(released_weights_spec('sr_x4', 2))
    torch.save({'params_ema': sd}, root / GAN_X4)
    tool = import_tool('convert_official_ckpt')
    assert tool.main([str(root / GAN_X4), str(root / 'diffir_sr_x4_gan'), '--task', 'sr',
                      '--stage', '2', '--format', 'safetensors']) == 0
    return root / GAN_X4, root / 'diffir_sr_x4_gan'


@pytest.fixture(scope='module')
def tiny_config(tmp_path_factory):
    """configs/diffir_sr_s2.py with the tiny network."""
    cfg = tmp_path_factory.mktemp('configs') / 'tiny_sr.py'
    cfg.write_text(f"_base_ = ['{REPO_ROOT}/configs/diffir_sr_s2.py']\n"
                   f"model = dict(generator=dict(**{ARCH!r}))\n")
    return str(cfg)


@pytest.fixture(scope='module')
def folder(released, tool, tmp_path_factory):
    src, _ = released
    dst = tmp_path_factory.mktemp('folders') / 'diffir_sr_x4'
    assert tool.main([str(src), str(dst), '--task', 'sr', '--stage', '2', '--arch',
                      *[f'{k}={v!r}'.replace(' ', '') for k, v in ARCH.items()],
                      '--format', 'safetensors']) == 0
    return dst


def _metafile_entry(name: str) -> Dict:
    with open(METAFILE, encoding='utf-8') as fh:
        return next(m for m in yaml.safe_load(fh)['Models'] if m['Name'] == name)


def _tensors(path: Path):
    with safe_open(str(path), framework='pt') as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


# --------------------------------------------------------------------------- what it holds


def test_folder_holds_what_it_says(released, folder):
    src, ema = released
    assert sorted(os.listdir(folder)) == ['README.md', 'config.json', 'model.safetensors']
    config = json.loads((folder / 'config.json').read_text())
    source = read_network(src)  # params_ema
    assert (config['task'], config['stage'], config['scale'], config['big']) == ('sr', 2, 4,
                                                                                False)
    assert config['arch_kwargs'] == json.loads(json.dumps(infer_arch_kwargs(source)))
    assert config['components'] == ['generator', 'generator_ema']
    assert config['source'] == {'file': GAN_X4,
                                'sha256': hashlib.sha256(src.read_bytes()).hexdigest()}
    assert config['diffir_mm_version'] == diffir_mm.__version__
    assert config['parameters'] == sum(p.numel() for p in ema.parameters())
    assert config['model'] is None  # a variant (dim=8): no release, whatever the file name
    assert 'A variant of the released architecture (dim=8' in (folder / 'README.md').read_text()
    tensors, header = _tensors(folder / 'model.safetensors')
    assert json.loads(header[SAFETENSORS_META_KEY])['diffir_mm']['task'] == 'sr'
    n = len(ema.state_dict())
    assert len(tensors) == 2 * n  # params and params_ema differ: both kept, once each
    assert all(torch.equal(tensors['generator_ema.' + k], v) for k, v in ema.state_dict().items())


def test_each_network_is_stored_once(tmp_path, tool):
    net = tiny_net('deblur')
    torch.save(official_checkpoint(net), tmp_path / 'net_g_latest.pth')  # params_ema only
    dst = tmp_path / 'deblur'
    assert tool.main([str(tmp_path / 'net_g_latest.pth'), str(dst), '--task', 'deblur',
                      '--stage', '2', '--format', 'safetensors',
                      '--arch', *[f'{k}={v!r}'.replace(' ', '') for k, v in ARCH.items()]]) == 0
    tensors, _ = _tensors(dst / 'model.safetensors')
    assert sorted({k.split('.')[0] for k in tensors}) == ['generator_ema']
    state = read_checkpoint(dst)['state_dict']  # the reader fills in the generator
    assert all(state['generator.' + k] is state['generator_ema.' + k] for k in net.state_dict())


def test_card_numbers_come_from_the_metafile(released_full, tmp_path):
    _, folder = released_full
    config = json.loads((folder / 'config.json').read_text())
    card = (folder / 'README.md').read_text()
    # the metafile entry whose official file this is
    entry = next(m for m in yaml.safe_load(open(METAFILE))['Models']
                 if (m.get('Metadata') or {}).get('Official file') == GAN_X4)
    assert config['model'] == entry['Name'] and f"the release `{entry['Name']}`" in card
    for result in entry['Results']:
        assert result['Dataset'] in card
        for metric, value in result['Metrics'].items():
            assert f'{metric} {value}' in card
    for line in ("diffir-restore photo.png -o out/ --checkpoint diffir_sr_x4_gan",
                 "load_from_file('diffir_sr_x4_gan/model.safetensors')",
                 f"config_name='{config['model']}'", 'Apache License 2.0'):
        assert line in card
    # an edited metafile gives another card: nothing is copied
    text = Path(METAFILE).read_text()
    value = entry['Results'][0]['Metrics']['PSNR']
    edited = tmp_path / 'metafile.yml'
    edited.write_text(text.replace(f'PSNR: {value}', 'PSNR: 99.99', 1))
    other = render_card(config, 'diffir_sr_x4_gan', metafile=str(edited))
    assert 'PSNR 99.99' in other and f'PSNR {value}' not in other.split('## Use')[0]


def test_unknown_file_lists_every_release_of_the_network(released_full, tool, tmp_path,
                                                         capsys):
    src, _ = released_full
    renamed = tmp_path / 'my_x4.pth'
    shutil.copy(src, renamed)
    arch = []
    assert tool.main([str(renamed), str(tmp_path / 'a'), '--task', 'sr', '--stage', '2',
                      '--format', 'safetensors', *arch]) == 0
    config = json.loads((tmp_path / 'a' / 'config.json').read_text())
    assert config['model'] is None
    card = (tmp_path / 'a' / 'README.md').read_text()
    x4 = [m['Name'] for m in yaml.safe_load(open(METAFILE))['Models']
          if release_layout(m['Name']) == ('sr', 4, 2, False)]
    assert len(x4) > 1 and all(name in card for name in x4)
    # --model names it; a name of another network is one line
    assert tool.main([str(renamed), str(tmp_path / 'b'), '--task', 'sr', '--stage', '2',
                      '--format', 'safetensors', '--model', x4[-1], *arch]) == 0
    assert json.loads((tmp_path / 'b' / 'config.json').read_text())['model'] == x4[-1]
    capsys.readouterr()
    assert tool.main([str(renamed), str(tmp_path / 'c'), '--task', 'sr', '--stage', '2',
                      '--format', 'safetensors', '--model', 'diffir_deblur_s2', *arch]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error:') and 'diffir_deblur_s2' in err[0]
    assert not (tmp_path / 'c').exists()


def test_the_only_release_of_a_network_is_chosen():
    from diffir_mm.archs import preset_kwargs
    from diffir_mm.checkpoint.card import choose_release, releases

    config = dict(task='deblur', scale=1, stage=2, big=False, source={'file': 'net_g_latest.pth'},
                  arch_kwargs=json.loads(json.dumps(preset_kwargs('deblur', 2))))
    deblur = [m['Name'] for m in yaml.safe_load(open(METAFILE))['Models']
              if release_layout(m['Name']) == ('deblur', 1, 2, False)]
    assert len(deblur) == 1
    assert choose_release(config, releases(config))['Name'] == deblur[0]
    variant = dict(config, arch_kwargs=dict(config['arch_kwargs'], dim=32))
    assert releases(variant) == []


def test_the_card_examples_run(released_full, monkeypatch, tmp_path):
    """Every example of a card runs as written, from the folder's parent."""
    import shlex

    import diffir_mm.apis.inferencer as inferencer_module
    from diffir_mm.cli.restore import main

    _, folder = released_full
    card = (folder / 'README.md').read_text()
    blocks = re.findall(r'```(python|bash)\n(.*?)```', card, re.S)
    assert [kind for kind, _ in blocks] == ['python', 'bash', 'python', 'python']
    monkeypatch.chdir(folder.parent)
    monkeypatch.setattr(inferencer_module, 'CACHE_DIR', str(tmp_path / 'cache'))
    photo = np.random.default_rng(0).random((12, 16, 3)).astype(np.float32)
    cv2.imwrite('photo.png', (photo * 255).astype(np.uint8))
    python, bash, mmagic, spandrel_block = (code for _, code in blocks)
    scope = {'image': photo}
    exec(python, scope)
    assert scope['out'].shape == (48, 64, 3)
    command = shlex.split(bash.strip())
    assert command[0] == 'diffir-restore' and main(command[1:] + ['--no-progress', '-q']) == 0
    assert cv2.imread('out/photo.png').shape == (48, 64, 3)
    os.remove('out/photo.png')
    exec(mmagic, {})
    assert cv2.imread('out/photo.png').shape == (48, 64, 3)
    pytest.importorskip('spandrel')
    scope = {'image': torch.from_numpy(photo).permute(2, 0, 1)[None]}
    exec(spandrel_block, scope)
    assert scope['out'].shape == (1, 3, 48, 64)


def test_release_rule_matches_every_config():
    """The card's rule (task, scale, stage, big from the entry's name) is what each config
    builds."""
    from mmengine.config import Config

    for model in yaml.safe_load(open(METAFILE))['Models']:
        gen = Config.fromfile(os.path.join(REPO_ROOT, model['Config'])).model.generator
        stage = 2 if gen['type'].endswith('S2Net') else 1
        scale = gen.get('scale', 4) if gen['task'] == 'sr' else 1
        big = is_big_inpainting(dict(gen))
        assert release_layout(model['Name']) == (gen['task'], scale, stage, big), model['Name']


# ------------------------------------------------------------------------------ round trip


def _restore_png(args: List[str], out: Path) -> bytes:
    from diffir_mm.cli.restore import main

    assert main([*args, '-o', str(out), '--seed', '0', '--no-progress', '-q']) == 0
    return (out / 'photo.png').read_bytes()


def test_round_trip_every_entry_point(released, folder, tiny_config, tmp_path, monkeypatch):
    """.pth -> folder -> load_official, Restorer, diffir-restore, MMagicInferencer, spandrel:
    the folder (and its model.safetensors) give exactly the .pth's outputs."""
    src, _ = released
    sources = {'pth': src, 'folder': folder, 'file': folder / 'model.safetensors'}
    x = torch.rand(1, 3, 12, 20, generator=torch.Generator().manual_seed(0))
    noise = torch.randn(1, 256, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        outs = {k: load_official(v, task='sr', scale=4, **ARCH)(x, noise=noise)
                for k, v in sources.items()}
    assert all(torch.equal(outs['pth'], o) for o in outs.values())
    restored = {k: Restorer.from_checkpoint(v).restore_tensor(x) for k, v in sources.items()}
    assert all(torch.equal(restored['pth'], o) for o in restored.values())

    photo = tmp_path / 'photo.png'
    cv2.imwrite(str(photo), (np.random.default_rng(0).random((12, 20, 3)) * 255).astype(np.uint8))
    cli = {k: _restore_png([str(photo), '--checkpoint', str(v)], tmp_path / f'cli_{k}')
           for k, v in sources.items()}
    assert cli['pth'] == cli['folder'] == cli['file']

    spandrel = pytest.importorskip('spandrel')
    import diffir_mm.spandrel as ds
    ds.install()
    models = [spandrel.ModelLoader().load_from_file(src),
              spandrel.ModelLoader().load_from_file(folder / 'model.safetensors'),
              ds.load_from_file(folder)]
    calls = [m(x) for m in models]
    assert all(torch.equal(calls[0], c) for c in calls)
    assert torch.equal(calls[0], restored['pth'].clamp(0, 1))

    import diffir_mm.apis.inferencer as inferencer_module
    import diffir_mm.registration  # noqa: F401
    from mmagic.apis import MMagicInferencer

    monkeypatch.setattr(inferencer_module, 'CACHE_DIR', str(tmp_path / 'cache'))
    cfg = tiny_config
    results = {}
    for key in ('pth', 'folder'):
        inferencer = MMagicInferencer(model_config=str(cfg), model_ckpt=str(sources[key]),
                                      device='cpu')
        model = inferencer.inferencer.inferencer.model
        assert all(torch.equal(v, models[0].model.state_dict()[k])
                   for k, v in model.generator_ema.state_dict().items())
        out = tmp_path / f'mm_{key}.png'
        inferencer.infer(img=str(photo), result_out_dir=str(out))
        results[key] = out.read_bytes()
    assert results['pth'] == results['folder']
    from diffir_mm.apis import prepare_checkpoint
    assert prepare_checkpoint(str(folder), str(cfg)) == str(folder)  # used in place


# --------------------------------------------------------------------- never overwrite


def test_nothing_is_overwritten(released, tool, tmp_path, capsys):
    src, _ = released
    arch = ['--arch', *[f'{k}={v!r}'.replace(' ', '') for k, v in ARCH.items()]]
    base = [str(src), '--task', 'sr', '--stage', '2', '--format', 'safetensors', *arch]

    def run(dst, *extra):
        capsys.readouterr()
        code = tool.main([base[0], str(dst), *base[1:], *extra])
        return code, capsys.readouterr().err.strip().splitlines()

    mine = tmp_path / 'mine'  # a user's folder
    mine.mkdir()
    (mine / 'notes.txt').write_text('keep me')
    for extra in ((), ('--force',)):
        code, err = run(mine, *extra)
        assert code == 1 and len(err) == 1 and err[0].startswith('error:'), err
        assert os.listdir(mine) == ['notes.txt']
    a_file = tmp_path / 'model'
    a_file.write_text('keep me too')
    assert run(a_file, '--force')[0] == 1 and a_file.read_text() == 'keep me too'

    dst = tmp_path / 'folder'
    assert run(dst)[0] == 0
    before = {n: (dst / n).read_bytes() for n in os.listdir(dst)}
    code, err = run(dst)
    assert code == 1 and 'exists' in err[0] and '--force' in err[0]
    assert {n: (dst / n).read_bytes() for n in os.listdir(dst)} == before
    assert run(dst, '--force')[0] == 0  # an earlier model folder is replaced
    assert sorted(os.listdir(tmp_path)) == ['folder', 'mine', 'model']  # no temporary left


def test_a_failed_write_leaves_nothing(released, monkeypatch, tmp_path):
    from diffir_mm.checkpoint import read_components, write_model_folder
    from diffir_mm.checkpoint import writing

    src, _ = released
    networks = read_components(src)
    original = writing.write_bytes_atomic

    def fail_on_card(path, data):
        if os.path.basename(path) == 'README.md':
            raise OSError(28, 'No space left on device')
        original(path, data)

    dst = tmp_path / 'folder'
    monkeypatch.setattr(writing, 'write_bytes_atomic', fail_on_card)
    with pytest.raises(OSError, match='No space'):
        write_model_folder(dst, networks)
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(writing, 'write_bytes_atomic', original)
    write_model_folder(dst, networks)
    before = {n: (dst / n).read_bytes() for n in os.listdir(dst)}
    monkeypatch.setattr(writing, 'write_bytes_atomic', fail_on_card)
    with pytest.raises(OSError, match='No space'):
        write_model_folder(dst, networks, overwrite=True)
    assert os.listdir(tmp_path) == ['folder']
    assert {n: (dst / n).read_bytes() for n in os.listdir(dst)} == before


_KILLED_WRITER = """
import os, signal, sys
from diffir_mm.checkpoint import read_components, write_model_folder
from diffir_mm.checkpoint import writing

def killed(path, data):  # half the weights on disk, then the process dies (no cleanup runs)
    with open(path, 'wb') as fh:
        fh.write(data[:len(data) // 2])
        fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)

writing.write_serialized = killed
write_model_folder(sys.argv[2], read_components(sys.argv[1]))
"""


def test_a_killed_write_is_cleaned_up_by_the_next(released, tmp_path):
    """A converter killed while writing leaves its temporary folder (nothing can run in a killed
    process); the next write into the same folder removes it, as the CLI removes its temporary
    files."""
    import subprocess
    import sys

    from diffir_mm.checkpoint import read_components, write_model_folder

    src, _ = released
    dst = tmp_path / 'folder'
    proc = subprocess.run([sys.executable, '-c', _KILLED_WRITER, str(src), str(dst)],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith('.folder.') and left[0].endswith('.tmp'), left
    write_model_folder(dst, read_components(src))
    assert os.listdir(tmp_path) == ['folder']
    assert (dst / 'model.safetensors').stat().st_size > 0


# ---------------------------------------------------------------- bad files: one line each


def _rewrite(folder: Path, change: Callable[[Dict[str, torch.Tensor]], None]) -> None:
    tensors, header = _tensors(folder / 'model.safetensors')
    change(tensors)
    os.remove(folder / 'model.safetensors')
    save_safetensors(tensors, str(folder / 'model.safetensors'), metadata=header)


def _wrong_shape(folder: Path) -> None:
    def change(tensors):
        for key in [k for k in tensors if k.endswith('encoder_level1.0.attn.qkv.weight')]:
            tensors[key] = tensors[key][:-3].clone()
    _rewrite(folder, change)


def _missing_key(folder: Path) -> None:
    def change(tensors):
        for key in [k for k in tensors if k.endswith('encoder_level1.0.attn.qkv.weight')]:
            del tensors[key]
    _rewrite(folder, change)


def _header_lies_about_bytes(folder: Path) -> None:
    """The JSON header claims a shape the stored bytes do not have."""
    raw = (folder / 'model.safetensors').read_bytes()
    size = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    key = next(k for k in header if k.endswith('encoder_level1.0.attn.qkv.weight'))
    header[key]['shape'][0] += 1
    text = json.dumps(header).encode()
    (folder / 'model.safetensors').write_bytes(struct.pack('<Q', len(text)) + text
                                               + raw[8 + size:])


def _header_lies_about_the_model(folder: Path) -> None:
    """Header and config.json agree -- on a deblurring model; the weights are SR x4."""
    _tensors_, header = _tensors(folder / 'model.safetensors')
    meta = json.loads(header[SAFETENSORS_META_KEY])
    meta['diffir_mm']['task'] = 'deblur'
    meta['diffir_mm']['scale'] = 1
    header[SAFETENSORS_META_KEY] = json.dumps(meta)
    os.remove(folder / 'model.safetensors')
    save_safetensors(_tensors_, str(folder / 'model.safetensors'), metadata=header)
    config = json.loads((folder / 'config.json').read_text())
    config.update(task='deblur', scale=1)
    (folder / 'config.json').write_text(json.dumps(config))


def _config_lies(folder: Path) -> None:
    """config.json claims another width than the header (and the weights)."""
    config = json.loads((folder / 'config.json').read_text())
    config['arch_kwargs']['dim'] = 16
    (folder / 'config.json').write_text(json.dumps(config))


BAD = {'wrong shape': (_wrong_shape, r'differ in shape'),
       'missing key': (_missing_key, r'missing \(e\.g\. '),
       'header lies about bytes': (_header_lies_about_bytes, r'cannot read checkpoint .*'),
       'header lies about the model': (_header_lies_about_the_model,
                                       r"says task='deblur', but its weights .* hold task='sr'"),
       'config.json lies': (_config_lies, r'config\.json says arch_kwargs=.*model\.safetensors')}


def _check_line(text: str, pattern: str) -> None:
    assert '\n' not in text.strip() and 'Traceback' not in text, text
    assert re.search(pattern, text), (pattern, text)


@pytest.mark.parametrize('case', sorted(BAD))
def test_bad_safetensors_is_one_line_everywhere(case, folder, tiny_config, tool, tmp_path,
                                                capsys):
    import diffir_mm.registration  # noqa: F401
    from diffir_mm.apis import prepare_checkpoint
    from diffir_mm.cli.restore import main

    bad = tmp_path / 'bad'
    shutil.copytree(folder, bad)
    damage, pattern = BAD[case]
    damage(bad)
    structural = case in ('wrong shape', 'missing key', 'header lies about bytes')
    for source in (bad, bad / 'model.safetensors') if structural else (bad,):
        for read in (lambda p: load_official(p, task='sr', scale=4, **ARCH),
                     lambda p: Restorer.from_checkpoint(p),
                     lambda p: prepare_checkpoint(str(p), tiny_config)):
            with pytest.raises(CheckpointMismatchError) as err:
                read(source)
            _check_line(str(err.value), pattern)
        photo = tmp_path / 'photo.png'
        cv2.imwrite(str(photo), np.zeros((8, 8, 3), np.uint8))
        capsys.readouterr()
        assert main([str(photo), '-o', str(tmp_path / 'out'), '--checkpoint', str(source)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith('error: ')
        _check_line(err, pattern)
        assert tool.main([str(source), str(tmp_path / 'conv'), '--task', 'sr', '--stage', '2',
                          '--format', 'safetensors']) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith('error: ') and not (tmp_path / 'conv').exists()
        _check_line(err, '.')

    spandrel = pytest.importorskip('spandrel')
    import diffir_mm.spandrel as ds
    with pytest.raises(spandrel.UnsupportedModelError) as err:
        ds.load_from_file(bad)
    _check_line(str(err.value), pattern)
    ds.install()
    if structural:  # spandrel's own reader: its error, or ours through the architecture
        with pytest.raises(Exception) as err:
            spandrel.ModelLoader().load_from_file(bad / 'model.safetensors')
        _check_line(str(err.value), pattern if case != 'header lies about bytes' else
                    r'Error while deserializing header')
    else:  # spandrel drops the header: it sees the weights, which are fine, as what they are
        model = spandrel.ModelLoader().load_from_file(bad / 'model.safetensors')
        assert (model.purpose, model.scale) == ('SR', 4)


def test_reading_never_unpickles(folder, monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError('unpickling')

    monkeypatch.setattr(pickle, 'Unpickler', refuse)
    monkeypatch.setattr(pickle, 'load', refuse)
    monkeypatch.setattr(pickle, 'loads', refuse)
    monkeypatch.setattr(torch, 'load', refuse)
    for source in (folder, folder / 'model.safetensors'):
        assert read_network(source).layout.task == 'sr'
        load_official(source, task='sr', scale=4, **ARCH)


def test_a_pickle_named_safetensors_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {tmp_path / "pwned"}',)

    bad = tmp_path / 'bad'
    bad.mkdir()
    torch.save({'x': Payload()}, bad / 'model.safetensors')
    for source in (bad, bad / 'model.safetensors'):
        with pytest.raises(CheckpointMismatchError, match='cannot read checkpoint') as err:
            read_network(source)
        _check_line(str(err.value), 'safetensors|header')
    assert not (tmp_path / 'pwned').exists()
