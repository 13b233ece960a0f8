"""Make mmengine's distributed launchers work on CPU-only machines.

mmengine 0.10.7 assumes a GPU per process when a launcher is used:

* ``init_dist`` calls ``torch.cuda.set_device(local_rank)`` (``pytorch`` launcher) or divides by
  ``torch.cuda.device_count()`` (``slurm``), which fails without CUDA;
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to ``DistributedDataParallel``, which
  rejects device ids for CPU modules;
* the default ``dist_cfg`` backend is ``'nccl'``, which needs CUDA.

:func:`prepare_cpu_distributed` patches the config accordingly (``gloo`` backend,
``device_ids=None``) and initialises the process group itself, so ``Runner.setup_env`` finds it
initialised and skips ``init_dist``. On machines with CUDA it does nothing.

:func:`close_process_group` and :func:`exit_process` end a distributed run cleanly: the group is
torn down while the interpreter is fully alive, and the process then exits without the
interpreter's finalisation, where third-party C++ threads can still abort a rank whose results
are already saved.
"""
import datetime
import gc
import logging
import os
import subprocess
import sys
from typing import Any, Callable, Dict, Optional

import torch
import torch.distributed as torch_dist

__all__ = ['close_process_group', 'exit_process', 'prepare_cpu_distributed']

#: Wrappers that forward ``device_ids`` to ``DistributedDataParallel``.
_DDP_LIKE_WRAPPERS = ('MMDistributedDataParallel',
                      'MMSeparateDistributedDataParallel',
                      'DistributedDataParallel')


def _log(logger: Optional[Callable[[str], Any]], msg: str) -> None:
    """Log ``msg`` with ``logger`` (defaults to ``print``).

    Args:
        logger: A one-argument logging callable.
        msg: The message.
    """
    (logger or print)(msg)


def _init_process_group(launcher: str, backend: str,
                        dist_cfg: Dict[str, Any]) -> None:
    """Initialise ``torch.distributed`` for a CPU process.

    Args:
        launcher: ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        backend: The backend, normally ``'gloo'``.
        dist_cfg: ``env_cfg.dist_cfg``; ``timeout`` (seconds) is honoured, other keys are ignored.

    Raises:
        ValueError: For an unknown launcher.
    """
    env = os.environ
    if launcher == 'slurm':
        env['RANK'] = env['SLURM_PROCID']
        env['WORLD_SIZE'] = env['SLURM_NTASKS']
        env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
        if 'MASTER_ADDR' not in env:
            env['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {env["SLURM_NODELIST"]} | head -n1')
        env.setdefault('MASTER_PORT', '29500')
    elif launcher == 'mpi':
        env['RANK'] = env['OMPI_COMM_WORLD_RANK']
        env['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
        env['LOCAL_RANK'] = env.get('OMPI_COMM_WORLD_LOCAL_RANK', '0')
        env.setdefault('MASTER_ADDR', '127.0.0.1')
        env.setdefault('MASTER_PORT', '29500')
    elif launcher != 'pytorch':
        raise ValueError(f'Unsupported launcher: {launcher}')
    kwargs: Dict[str, Any] = {}
    timeout = dist_cfg.get('timeout')
    if timeout is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=timeout) \
            if isinstance(timeout, (int, float)) else timeout
    torch_dist.init_process_group(
        backend=backend,
        rank=int(env['RANK']),
        world_size=int(env['WORLD_SIZE']),
        **kwargs)


def prepare_cpu_distributed(cfg: Any,
                            launcher: str,
                            logger: Optional[Callable[[str],
                                                      Any]] = None) -> bool:
    """Adapt ``cfg`` and the process group for distributed runs without CUDA.

    Does nothing when ``launcher == 'none'`` or CUDA is available. Otherwise:

    1. switches ``env_cfg.dist_cfg.backend`` from ``'nccl'`` to ``'gloo'`` (logging one line);
    2. sets ``model_wrapper_cfg.device_ids = None`` (creating the default
       ``MMDistributedDataParallel`` wrapper config when absent) so DDP accepts CPU modules;
    3. initialises the process group unless it already is.

    Args:
        cfg: The (mutable) config.
        launcher: ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
        logger: Logging callable; ``print`` if None.

    Returns:
        True when the config/process group were adapted for CPU.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg') is None:
        cfg.env_cfg.dist_cfg = dict(backend='nccl')
    dist_cfg = cfg.env_cfg.dist_cfg
    if dist_cfg.get('backend', 'nccl') == 'nccl':
        dist_cfg.backend = 'gloo'
        _log(
            logger, 'No CUDA device available: switching '
            "env_cfg.dist_cfg.backend from 'nccl' to 'gloo'.")

    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False),
            device_ids=None)
    elif wrapper_cfg.get('type', 'MMDistributedDataParallel') in \
            _DDP_LIKE_WRAPPERS:
        wrapper_cfg.device_ids = None

    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        _init_process_group(launcher, dist_cfg.backend, dist_cfg)
    return True


def close_process_group() -> bool:
    """Tear the default process group down now, while the interpreter is fully alive.

    Call it after dropping the last reference to the runner: its DDP wrappers hold the group,
    so a garbage collection frees them first, then every rank meets at a barrier and
    ``destroy_process_group`` joins gloo's worker threads. Left to interpreter exit, this
    teardown occasionally aborts a rank with SIGABRT ("terminate called without an active
    exception", pytorch/pytorch#179291), failing a run whose checkpoints are already written.

    Returns:
        True when a process group was torn down.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return False
    gc.collect()
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    gc.collect()
    return True


def exit_process(code: int, distributed: bool) -> None:
    """Exit with ``code``; a distributed run skips the interpreter's finalisation.

    A distributed rank flushes its logs and standard streams and leaves with ``os._exit``:
    everything it writes is already on disk (atomic writes), and finalisation is where leftover
    C++ threads of the communication libraries abort a rank. Other runs exit normally.

    Args:
        code: Exit status.
        distributed: The process was one rank of a distributed run.
    """
    if not distributed:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
