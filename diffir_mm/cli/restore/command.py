"""``diffir-restore``'s :func:`main`: the steps of the command, in order, and their exit statuses.

1. parse and check the arguments (:mod:`.arguments`);
2. build the model (:mod:`.model`) and check the mask options against its task;
3. find the inputs (:mod:`.discovery`), one ``error:`` line for each that names no image;
4. create the output folder (:mod:`.writing`) and restore (:mod:`.run`);
5. print ``done: N restored, M failed``.

Steps 1, 2 and the output folder stop the command with :data:`~.errors.EXIT_SETUP`; everything
after is per input (:mod:`.errors`).
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

import torch

from diffir_mm.utils.host_memory import keep_freed_memory_unless_disabled

from .arguments import build_parser, validate
from .discovery import collect_inputs, mask_files
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_SETUP, Reporter, SetupError, one_line
from .model import mask_problem, restorer_from_args
from .run import Run
from .writing import OutputPlan, ResultWriter, prepare_output_dir

__all__ = ['main']


def _load_model(args: argparse.Namespace):
    """The Restorer of ``args``, its mask options checked.

    Raises:
        SetupError: The model cannot be built or does not fit the mask options.
    """
    try:
        restorer = restorer_from_args(args)
    except Exception as err:  # noqa: BLE001 - any setup problem is one line
        raise SetupError(one_line(err)) from None
    problem = mask_problem(restorer.task, args)
    if problem:
        raise SetupError(problem)
    return restorer


def _restore(args: argparse.Namespace, reporter: Reporter) -> int:
    problem = validate(args)
    if problem:
        raise SetupError(problem)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    keep_freed_memory_unless_disabled()  # large CPU tensors reuse mapped pages (issue 14)
    restorer = _load_model(args)
    files, errors = collect_inputs(args.inputs)
    for error in errors:
        reporter.error(error)
    if not args.quiet:
        reporter.say(f'{restorer.describe()}; {len(files)} image(s) -> {args.out_dir}')
    if not files:
        reporter.error('no images to process')
        return EXIT_FAILED
    prepare_output_dir(args.out_dir)
    plan = OutputPlan(args.out_dir, args.suffix, args.ext,
                      protect=list(files) + mask_files(args.mask, args.mask_dir))
    run = Run(restorer, plan, ResultWriter(plan, reporter, args.compare), reporter,
              batch_size=args.batch_size, mask=args.mask, mask_dir=args.mask_dir,
              progress=not args.no_progress)
    try:
        run.run(files)
    except KeyboardInterrupt:
        reporter.say('interrupted')
        return EXIT_INTERRUPTED
    reporter.say(reporter.summary())
    return reporter.exit_status()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``diffir-restore``; returns the exit status (:mod:`.errors`)."""
    args = build_parser().parse_args(argv)
    reporter = Reporter(quiet=args.quiet)
    try:
        return _restore(args, reporter)
    except SetupError as err:
        reporter.say(f'error: {err}')
        return EXIT_SETUP
