"""One-line errors for user mistakes in ``tools/train.py`` / ``tools/test.py``.

A missing data folder, a missing checkpoint or a typo in a config otherwise ends in a traceback
from deep inside mmengine. :class:`OneLineErrors` turns those mistakes into one line on stderr
that names the problem and the config key to set (as ``--cfg-options`` spells it, list items by
index: ``test_dataloader.2.dataset.data_root``) and gives exit status 1. Anything else is a bug
and keeps its traceback; ``--debug`` or ``DIFFIR_DEBUG=1`` shows the traceback in every case.

Standard library only at import (:func:`load_config` imports mmengine when called); it works on
mmengine configs as plain nested dicts and lists.
"""
from __future__ import annotations

import errno
import os
import os.path as osp
import re
import sys
from typing import Any, Iterator, List, Optional, Tuple

__all__ = ['UserConfigError', 'OneLineErrors', 'check_data_folders', 'debug_requested',
           'load_config']

#: ``KeyError`` text of mmengine's registry for an unknown ``type``.
_UNKNOWN_TYPE = re.compile(r'`?(?P<name>[\w.]+)`? is not in the (?P<registry>\S+) registry')
_UNEXPECTED_ARG = re.compile(r"unexpected keyword argument '(?P<arg>\w+)'")
_MISSING_ARG = re.compile(r"missing \d+ required (?:positional |keyword-only )?arguments?: "
                          r"'(?P<arg>\w+)'")
#: The class whose constructor failed: "DiffIRS2Net.__init__() got ..." or mmengine's
#: "class `DiffIRS2Net` in ...".
_FAILED_CLASS = re.compile(r'(\w+)\.__init__\(\)|class `(\w+)` in')


class UserConfigError(Exception):
    """A mistake in the command line or config, explained in one line."""


def debug_requested(flag: bool = False) -> bool:
    """True when ``--debug`` was given or ``DIFFIR_DEBUG`` is set (to anything but 0/empty)."""
    return flag or os.environ.get('DIFFIR_DEBUG', '') not in ('', '0')


def _walk(node: Any, prefix: str = '') -> Iterator[Tuple[str, Any]]:
    """Every ``(dotted key, value)`` of a nested config, list items by index."""
    if not isinstance(node, dict) and hasattr(node, 'to_dict'):
        node = node.to_dict()  # mmengine.Config
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, (list, tuple)) else ()
    for key, value in items:
        path = f'{prefix}.{key}' if prefix else str(key)
        yield path, value
        yield from _walk(value, path)


def _is_remote(path: str) -> bool:
    return '://' in path or path.startswith('s3:')


def check_data_folders(cfg: Any, loaders: List[str]) -> None:
    """Fail with one line when a dataset folder or annotation file of ``loaders`` is missing.

    Follows mmengine's rule: a relative ``data_prefix`` entry or ``ann_file`` is joined to
    ``data_root``. Wrapped datasets (``RepeatDataset``, ``ConcatDataset``) are searched too.

    Args:
        cfg: The loaded config.
        loaders: Top-level keys to check, e.g. ``['train_dataloader', 'val_dataloader']``.

    Raises:
        UserConfigError: Naming the missing path and the key to set.
    """
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for key, node in _walk(cfg[loader], loader):
            if not (isinstance(node, dict) and 'data_root' in node and '.dataset' in f'.{key}'):
                continue
            _check_dataset(node, key)


def load_config(path: str, cfg_options: Optional[dict], launcher: str,
                loaders: List[str]) -> Any:
    """Load a tool's config, merge ``--cfg-options`` and check the data of ``loaders``.

    Args:
        path: The config file.
        cfg_options: ``--cfg-options`` (None when not given).
        launcher: ``--launcher``, stored as ``cfg.launcher``.
        loaders: Dataloader keys whose folders must exist (see :func:`check_data_folders`).

    Returns:
        mmengine.Config: The config.

    Raises:
        UserConfigError: For a missing config file or data folder.
    """
    from mmengine.config import Config

    if not osp.isfile(path):
        raise UserConfigError(f'config not found: {path}')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    check_data_folders(cfg, loaders)
    return cfg


def _check_dataset(dataset: dict, key: str) -> None:
    root = dataset.get('data_root') or ''
    hint = f'--cfg-options {key}.data_root=/path/to/data'
    if root and not _is_remote(root) and not osp.isdir(root):
        raise UserConfigError(f'data folder not found: {root}; set {key}.data_root ({hint})')
    prefixes = dataset.get('data_prefix') or {}
    for name, prefix in prefixes.items():
        folder = prefix if osp.isabs(prefix) else osp.join(root, prefix)
        if prefix and not _is_remote(folder) and not osp.isdir(folder):
            raise UserConfigError(
                f'data folder not found: {folder} ({key}.data_root={root!r} + '
                f'data_prefix.{name}={prefix!r}); set {key}.data_root or '
                f'{key}.data_prefix.{name} ({hint})')
    ann_file = dataset.get('ann_file') or ''
    path = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
    if ann_file and not _is_remote(path) and not osp.isfile(path):
        raise UserConfigError(f'annotation file not found: {path}; set {key}.ann_file')


def _keys_with(cfg: Any, predicate) -> List[str]:
    return [key for key, value in _walk(cfg) if predicate(key, value)] if cfg else []


def explain(exc: BaseException, cfg: Any = None) -> Optional[str]:
    """One line for a user mistake, None for anything else (a bug keeps its traceback).

    Args:
        exc: The exception raised while loading the config, building or running.
        cfg: The loaded config, used to name the key that caused the error.
    """
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if isinstance(exc, UserConfigError):
        return text
    if isinstance(exc, KeyError) and (match := _UNKNOWN_TYPE.search(text)):
        name = match['name']
        keys = _keys_with(cfg, lambda k, v: k.endswith('type') and v == name) or ['type']
        return (f'unknown type {name!r} ({", ".join(keys)}): it is not in the '
                f'{match["registry"]} registry; fix the name, or add the module registering it '
                'to custom_imports')
    if isinstance(exc, TypeError) and (match := _UNEXPECTED_ARG.search(text) or
                                       _MISSING_ARG.search(text)):
        arg = match['arg']
        found = _FAILED_CLASS.findall(text)
        inits = [a for a, _ in found if a]
        wrappers = [b for _, b in found if b]
        owner = (inits or wrappers[-1:] or ['a module'])[0]
        owners = _keys_with(cfg, lambda k, v: isinstance(v, dict) and v.get('type') == owner) \
            or _keys_with(cfg, lambda k, v: isinstance(v, dict) and arg in v)
        keys = [f'{k}.{arg}' for k in owners] or [arg]
        if match.re is _UNEXPECTED_ARG:
            return f'{owner} has no argument {arg!r} ({", ".join(keys)}): fix or remove that key'
        return f'{owner} needs the argument {arg!r}: set {", ".join(keys)}'
    if isinstance(exc, FileNotFoundError):
        missing = exc.filename or text
        keys = _keys_with(cfg, lambda k, v: isinstance(v, str) and len(v) > 2 and v in missing)
        where = f'; set {", ".join(keys)}' if keys else ''
        return f'{text}{where}'
    if type(exc).__name__ in ('CheckpointMismatchError', 'TrainingStopped'):
        return text
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        from .atomic import describe_write_error
        return describe_write_error(exc.filename or (cfg or {}).get('work_dir') or '.', exc)
    if isinstance(exc, ImportError) and 'custom_imports' in text:
        return text.splitlines()[0]
    return None


class OneLineErrors:
    """Context manager: user mistakes become one line on stderr and :attr:`exit_code` 1.

    Example::

        errors = OneLineErrors('train.py', debug=args.debug)
        with errors:
            errors.cfg = cfg = Config.fromfile(args.config)
            ...
        return errors.exit_code

    Args:
        prog: Name printed before ``error:``.
        debug: Let every exception through with its traceback (see :func:`debug_requested`).
    """

    def __init__(self, prog: str, debug: bool = False) -> None:
        self.prog = prog
        self.debug = debug_requested(debug)
        self.cfg: Any = None
        self.exit_code = 0

    def __enter__(self) -> 'OneLineErrors':
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or self.debug or not isinstance(exc, Exception):
            return False
        message = explain(exc, self.cfg)
        if message is None:
            return False
        print(f'{self.prog}: error: {" ".join(message.split())} '
              '(--debug or DIFFIR_DEBUG=1 shows the traceback)', file=sys.stderr)
        self.exit_code = 1
        return True
