"""Command-line defaults ``aspo-train`` adds before Hydra parses ``sys.argv``.

Two defaults, each only when the user did not give it:

* ``hardware=<cpu|cuda>`` from the machine (the ``hardware`` config group);
* ``--config-dir <repo>/recipes`` so ``aspo-train --config-name aspo_math_1p5b`` finds the paper
  recipes without the launcher scripts.

Hydra parses with ``argparse``, whose ``overrides`` positional (nargs ``*``) may appear only once: an
override after an option (``a=1 --cfg job b=2``) is rejected. So the arguments are regrouped, options
first and overrides after, in their original order; the option table is read from Hydra's own
parser so a new Hydra flag is still recognised.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

RECIPES_ENV = "ASPO_RECIPES_DIR"


def _hydra_options() -> dict[str, tuple[object, list[str]]]:
    """Hydra option string -> (argparse ``nargs``, allowed values); nargs 0 is a flag, None one value."""
    from hydra._internal.utils import get_args_parser

    return {
        flag: (action.nargs, list(action.choices or []))
        for action in get_args_parser()._actions
        for flag in action.option_strings
    }


def split_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` -> (Hydra options with their values, overrides), each in its original order."""
    table = _hydra_options()
    options: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        options.append(arg)
        nargs, choices = table.get(arg, (0, []))  # unknown or ``--flag=value``: left to Hydra as is
        if i < len(argv) and (nargs is None or (nargs == "?" and argv[i] in choices)):
            options.append(argv[i])
            i += 1
    return options, overrides


def _given(options: list[str], *flags: str) -> bool:
    return any(opt.split("=", 1)[0] in flags for opt in options)


def default_recipes_dir() -> Optional[Path]:
    """``$ASPO_RECIPES_DIR``, else ``recipes/`` beside the package (a source checkout), else None."""
    if os.environ.get(RECIPES_ENV):
        return Path(os.environ[RECIPES_ENV]).expanduser().resolve()
    beside_package = Path(__file__).resolve().parents[1] / "recipes"
    return beside_package if beside_package.is_dir() else None


def with_defaults(argv: list[str], detect_hardware: Callable[[], str]) -> list[str]:
    """``argv`` regrouped (options, then overrides) with the ``hardware`` and recipes defaults added."""
    options, overrides = split_options(argv)
    if not _given(options, "--config-dir", "-cd"):
        recipes = default_recipes_dir()
        if recipes is not None:
            options += ["--config-dir", str(recipes)]
    if not any(o.lstrip("+~").startswith("hardware=") for o in overrides):
        overrides.append(f"hardware={detect_hardware()}")
    return [*options, *overrides]
