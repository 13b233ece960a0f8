"""The model card (``README.md``) of a model folder, generated from its ``config.json``.

It says what the weights are (task, stage, architecture, source file and its SHA-256), the
paper's numbers for the release, how to use the folder (Python, ``diffir-restore``, MMagic,
spandrel) and the license. The numbers come from ``configs/metafile.yml``
(:func:`diffir_mm.utils.configs.metafile_path`), the one home of the released weights and the
paper's numbers; nothing is copied here.

Which metafile entries describe a folder: none unless its architecture is the released preset
(:func:`preset_differences` is empty: a variant has no paper numbers); then those whose config
builds the same network (:func:`release_layout`, read from the entry's name, which encodes it as
``diffir_<task>[_x<scale>]..._s<stage>...``; ``tests/test_checkpoint/test_model_folder.py``
checks the rule against every config). Of those, the one named when writing (``model``), else
the one whose ``Official file`` is the source file's name, else the only one; otherwise the card
lists them all.

Needs PyYAML (imported when a card is written).
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = ['release_layout', 'preset_differences', 'releases', 'choose_release', 'render_card']

#: The license of the authors' repository and released weights.
LICENSE_TEXT = ('The authors released DiffIR and its weights under the Apache License 2.0 (the '
                'LICENSE of https://github.com/Zj-BinXia/DiffIR). Weights you trained yourself '
                'are yours to license.')
_TASK_WORDS = {'deblur': 'motion deblurring', 'sr': 'super-resolution', 'inpaint': 'inpainting'}


def release_layout(name: str) -> Tuple[str, int, int, bool]:
    """``(task, scale, stage, big)`` of a metafile entry, read from its name.

    ``diffir_deblur_s2`` -> ('deblur', 1, 2, False); ``diffir_sr_x2_s2_gan`` -> ('sr', 2, 2,
    False); ``diffir_sisr_x4_s2_gan`` -> ('sr', 4, 2, False); ``diffir_inpaint_big_places_s1``
    -> ('inpaint', 1, 1, True). SR without ``_x<scale>`` is x4.

    Raises:
        ValueError: A name that does not follow the rule.
    """
    kind = re.match(r'diffir_(deblur|sisr|sr|inpaint)_', name)
    stage = re.search(r'_s([12])(?:_|$)', name)
    if kind is None or stage is None:
        raise ValueError(f'metafile entry {name!r} does not name its task and stage '
                         '(diffir_<task>[_x<scale>]..._s<stage>...)')
    task = 'sr' if kind.group(1) in ('sr', 'sisr') else kind.group(1)
    factor = re.search(r'_x(\d)_', name)
    scale = (int(factor.group(1)) if factor else 4) if task == 'sr' else 1
    return task, scale, int(stage.group(1)), '_big_' in name


def preset_differences(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The architecture arguments of ``config`` that differ from its released preset
    (``{}``: the released architecture)."""
    import json

    from diffir_mm.archs.presets import preset_kwargs, preset_name

    preset = preset_kwargs(preset_name(config['task'], config['scale'], bool(config.get('big'))),
                           config['stage'])
    kwargs = config['arch_kwargs']
    return {k: v for k, v in kwargs.items()
            if k in preset and json.dumps(v) != json.dumps(preset[k])}


def releases(config: Mapping[str, Any], metafile: Optional[str] = None) -> List[Dict[str, Any]]:
    """The metafile entries whose network is the one ``config`` describes (none for a variant
    of the released architecture)."""
    import yaml

    from diffir_mm.utils.configs import metafile_path

    if preset_differences(config):
        return []
    with open(metafile or metafile_path(), encoding='utf-8') as fh:
        models = yaml.safe_load(fh)['Models']
    wanted = (config['task'], config['scale'], config['stage'], bool(config.get('big')))
    return [model for model in models if release_layout(model['Name']) == wanted]


def choose_release(config: Mapping[str, Any], candidates: List[Dict[str, Any]],
                   model: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The entry a folder is: ``model`` by name, else the one whose ``Official file`` is the
    source file, else the only candidate; None when it cannot be told.

    Raises:
        ValueError: ``model`` is not one of ``candidates``.
    """
    if model is not None:
        named = [c for c in candidates if c['Name'] == model]
        if not named:
            raise ValueError(f'{model!r} is not a metafile entry of this network; choose from '
                             f'{[c["Name"] for c in candidates]}')
        return named[0]
    source = (config.get('source') or {}).get('file')
    by_file = [c for c in candidates
               if source and os.path.basename(str((c.get('Metadata') or {}).get(
                   'Official file', '')).split(' ')[0]) == source]
    if len(by_file) == 1:
        return by_file[0]
    return candidates[0] if len(candidates) == 1 else None


def _results_table(entries: List[Dict[str, Any]]) -> str:
    rows = ['| Release | Test set | Paper (not re-measured) |', '|---|---|---|']
    for entry in entries:
        for result in entry['Results']:
            metrics = ', '.join(f'{k} {v}' for k, v in (result.get('Metrics') or {}).items())
            rows.append(f'| {entry["Name"]} | {result["Dataset"]} | '
                        f'{metrics or "no number in the paper"} |')
    return '\n'.join(rows)


def _title(config: Mapping[str, Any]) -> str:
    task = _TASK_WORDS[config['task']]
    if config['task'] == 'sr':
        task += f' x{config["scale"]}'
    if config.get('big'):
        task = 'big ' + task
    return f'DiffIR {task}, stage {config["stage"]}'


def _usage(config: Mapping[str, Any], folder: str, release: Optional[str]) -> str:
    task, scale = config['task'], config['scale']
    named = f"task='{task}'" + (f', scale={scale}' if task == 'sr' else '') + \
        (', big=True' if config.get('big') else '') + \
        ''.join(f', {k}={v!r}' for k, v in preset_differences(config).items())
    mask = ', mask=mask' if task == 'inpaint' else ''
    mask_cli = ' --mask mask.png' if task == 'inpaint' else ''
    mask_mm = ", mask='mask.png'" if task == 'inpaint' else ''
    setting = f"'diffir', config_name='{release}'" if release else \
        "model_config='your_config.py'"
    call = 'model(image, mask)' if task == 'inpaint' else 'model(image)'
    return f"""Give the folder (or its `model.safetensors`) to any of these; nothing else is needed.

Python (PyTorch only):

```python
import diffir_mm
from diffir_mm.inference import Restorer

net = diffir_mm.load_official('{folder}', {named}, stage={config['stage']})
restorer = Restorer.from_checkpoint('{folder}', tile=512)
out = restorer.restore(image{mask}, seed=0)  # (H, W, 3) RGB in [0, 1]
```

Command line:

```bash
diffir-restore photo.png -o out/ --checkpoint {folder}{mask_cli} --tile 512
```

MMagic:

```python
import diffir_mm.registration  # noqa: F401
from mmagic.apis import MMagicInferencer

MMagicInferencer({setting}, model_ckpt='{folder}').infer(
    img='photo.png'{mask_mm}, result_out_dir='out/photo.png')
```

spandrel (ComfyUI, chaiNNer, ...; `pip install 'diffir-mm[spandrel]'`):

```python
import spandrel, diffir_mm.spandrel
diffir_mm.spandrel.install()
model = spandrel.ModelLoader().load_from_file('{folder}/model.safetensors')
out = {call}  # (1, 3, H, W) tensors in [0, 1]
```
"""


def render_card(config: Mapping[str, Any], folder: str,
                metafile: Optional[str] = None) -> str:
    """The model card of a folder.

    Args:
        config: The folder's ``config.json`` (:func:`~diffir_mm.checkpoint.write_model_folder`).
        folder: How the card names the folder in its examples.
        metafile: Another ``metafile.yml`` (tests); default the package's.
    """
    candidates = releases(config, metafile)
    release = next((c for c in candidates if c['Name'] == config.get('model')), None)
    source = config.get('source') or {}
    origin = (f"converted from `{source['file']}` (SHA-256 `{source['sha256']}`)"
              if source.get('file') else 'written')
    kwargs = ', '.join(f'{k}={v!r}' for k, v in config['arch_kwargs'].items())
    parts = [f'# {_title(config)}', '',
             f"`{config['architecture']}` weights of DiffIR (Xia et al., ICCV 2023, "
             '[arXiv:2303.09472](https://arxiv.org/abs/2303.09472)): a transformer U-Net '
             '(DIRformer) guided by a 256-d prior that a four-step diffusion estimates from the '
             f"degraded image. {origin[0].upper() + origin[1:]} by diffir-mm "
             f"{config['diffir_mm_version']}"
             + (f", the release `{release['Name']}`." if release else '.'), '',
             f"- Networks: {', '.join(config['components'])} (EMA weights are used when present)",
             f'- Architecture: {kwargs}',
             f"- Parameters: {config['parameters']:,}",
             '- Files: `model.safetensors` (weights, no pickle), `config.json` (what they are; '
             'checked against the weights when read), this card', '',
             '## Paper results', '',
             'From `configs/metafile.yml` of diffir-mm (the paper\'s tables, not re-measured).']
    if release is not None:
        parts += ['', _results_table([release])]
    elif candidates:
        parts += ['', 'The weights do not say which release they are; the releases with this '
                  'network:', '', _results_table(candidates)]
    else:
        changed = ', '.join(f'{k}={v!r}' for k, v in preset_differences(config).items())
        parts += ['', f'A variant of the released architecture ({changed}): the paper has no '
                  'numbers for it.' if changed else 'No release in the metafile has this '
                  'network.']
    if config['stage'] == 1:
        parts += ['', '## Use', '', 'A stage-1 network estimates its prior from the ground truth: '
                  'it is the teacher of stage-2 training (`model.stage1_checkpoint`), not a '
                  'restorer.']
    else:
        parts += ['', '## Use', '', _usage(config, folder, release['Name'] if release else
                                             (candidates[0]['Name'] if candidates else None))]
    parts += ['## License', '', LICENSE_TEXT, '']
    return '\n'.join(parts)
