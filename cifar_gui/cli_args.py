"""The command line's run settings: each sub-command's flags derived from the RunConfig
fields (:mod:`cifar_gui.settings`), the config they describe, and what a resume may change."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from cifar_gui.config import SETTINGS, RunConfig, flagged, pretrain_defaults
from cifar_gui.engine.errors import UserError
from cifar_gui.settings import add_flags, values_given

GROUP_TITLES = {"speed": "speed (each has an automatic default; see README)"}


def command_defaults(command: str) -> RunConfig:
    """The settings of ``command`` (train, pretrain or study) when no flag is given."""
    if command == "pretrain":
        return RunConfig().replace(**pretrain_defaults())
    if command == "study":
        from cifar_gui.engine.study.plan import study_defaults

        return study_defaults()
    return RunConfig()


def add_settings(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of the :class:`RunConfig` fields ``command`` takes. A flag not given is
    absent from the parsed namespace: :func:`settings_given` tells what was given,
    :func:`config_from_args` fills in the rest."""
    add_flags(parser, flagged(command), command, command_defaults(command), GROUP_TITLES)


def settings_given(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The fields whose flags were given, as :class:`RunConfig` values, in field order."""
    return values_given(args, flagged(command))


def config_from_args(args: argparse.Namespace, command: str) -> RunConfig:
    """The run ``command``'s flags describe: its defaults with the flags given; a value out
    of range is a :class:`UserError`."""
    try:
        return command_defaults(command).replace(**settings_given(args, command))
    except ValueError as exc:
        raise UserError(str(exc)) from None


def flag_names(names: Sequence[str]) -> list[str]:
    """The command-line flags of the RunConfig fields ``names``."""
    return [SETTINGS[name].flag.name for name in names]


def and_list(words: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


# The fields a resumed run may give anew (the rest are the checkpoint's).
RESUME_CHANGES = tuple(n for n, s in SETTINGS.items() if s.on_resume == "new" and s.flag)


def resume_changes(
    args: argparse.Namespace, command: str, allowed: Sequence[str]
) -> dict[str, Any]:
    """The flags given with ``--resume``; a :class:`UserError` names those not ``allowed``."""
    given = settings_given(args, command)
    refused = flag_names([name for name in given if name not in allowed])
    if refused:
        what = "study" if command == "study" else "run"
        raise UserError(
            f"--resume continues the {what} as it was; {', '.join(refused)} cannot change "
            f"(only {and_list(flag_names(allowed))} can)"
        )
    return given
