"""One place that knows which verl release we are written against."""

from __future__ import annotations

import warnings

from aspo import VERL_VERSION


def installed_verl_version() -> str:
    from importlib.metadata import version

    return version("verl")


def check_verl_version(what: str, *, strict: bool = False) -> None:
    """Warn (or raise, when ``strict``) if the installed verl is not the pinned release.

    ``what`` names the shim asking, so the message says which piece may be out of date.
    """
    found = installed_verl_version()
    if found != VERL_VERSION:
        msg = (
            f"{what} was written for verl=={VERL_VERSION} but verl=={found} is installed; "
            f"pin it with `pip install 'verl[verl-core]=={VERL_VERSION}'` or update {what}."
        )
        if strict:
            raise RuntimeError(msg)
        warnings.warn(msg, stacklevel=2)
