"""What the app knows of a setting besides its value, and the checks of values.

Each :class:`~cifar_gui.config.RunConfig` field carries a :class:`Setting` in its dataclass
metadata: its :class:`Flag` on the command line, how it may change when a run resumes, where
the window shows it, and a pretrain's own default. The command line's parsers, the command a
study records and the resume rule are derived from them (tyro's idea, by hand).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


def check_type(name: str, value: Any, kind: type | tuple[type, ...]) -> None:
    """Raise ValueError unless ``value`` is a ``kind`` (a bool is no number here)."""
    is_bool = isinstance(value, bool)
    wants_bool = kind is bool or (isinstance(kind, tuple) and bool in kind)
    if not isinstance(value, kind) or (is_bool and not wants_bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{name} must be of type {names}, not {type(value).__name__}")


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` when it is a whole number in [low, high]; else ValueError naming ``name``."""
    check_type(name, value, int)
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high:,} (got {value})")
    return value


def check_number(name: str, value: Any, low: float, high: float) -> float:
    """``value`` when it is a finite number in [low, high]; else ValueError naming ``name``."""
    check_type(name, value, (int, float))
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be a number from {low:g} to {high:g} (got {value})")
    return value


def auto_or_positive(text: str) -> int | str:
    """``auto`` or a whole number of at least 1, from the command line's text."""
    if text == "auto":
        return text
    if text.isascii() and text.isdigit() and int(text) >= 1:
        return int(text)
    raise ValueError(f"{text!r}: give auto or a number of at least 1")


COMMANDS_WITH_SETTINGS = ("train", "pretrain", "study")
CLASSES_HELP = (
    "class names or indices: a name that matches a class is that class; otherwise a whole "
    "number 0-N (N: the number of classes less one, 9 for CIFAR-10) is an index"
)
# How a setting may change when a run continues from its checkpoint (Setting.on_resume).
ON_RESUME = (
    "keep",  # it defines the run: the resumed run has the checkpoint's value
    "new",  # the resume may give a new one: the total of epochs, the devices, the data's place
    "follows",  # not the user's to give: it follows the checkpoint (where its files are)
)
# Where the window shows a setting (Setting.shown): a box of the Training tab's form, another
# tab, or nowhere (the command line only, or nothing at all).
SHOWN = ("run", "transfer", "pretrain", "advanced", "output", "dataset", "augmentation", "")


@dataclass(frozen=True)
class Flag:
    """A setting on the command line. ``help`` and ``choices`` are one for every command or
    one per command; ``words``: what each word given means (``--augment auto``: None)."""

    name: str  # "--batch-size"; a bool setting's flag sets the value its name says (--no-X)
    commands: tuple[str, ...] = ("train",)
    help: str | Mapping[str, str] | None = None
    kind: Callable[[str], Any] = str  # from the text given to the value
    choices: tuple[str, ...] | Mapping[str, tuple[str, ...]] | None = None
    words: Mapping[str, Any] | None = None
    metavar: str | None = None
    group: str | None = None  # "speed": listed under its own heading

    def help_for(self, command: str) -> str | None:
        return self.help.get(command) if isinstance(self.help, Mapping) else self.help

    def choices_for(self, command: str) -> tuple[str, ...] | None:
        if isinstance(self.choices, Mapping):
            return self.choices.get(command)
        return self.choices

    def value_of(self, parsed: Any) -> Any:
        """The field's value from what argparse made of the words given."""
        if self.words is not None:
            return self.words[parsed]
        return tuple(parsed) if isinstance(parsed, list) else parsed

    def command_words(self, value: Any) -> list[str]:
        """The words that give ``value`` (one the flag can give) on the command line."""
        if isinstance(value, bool) and self.words is None:
            return [self.name]
        if self.words is not None:
            return [self.name, next(w for w, v in self.words.items() if v == value)]
        if isinstance(value, tuple):
            return [self.name, *(str(item) for item in value)]
        return [self.name, str(value)]


SAME_AS_TRAINING = object()  # Setting.pretrain: a pretrain's default is RunConfig's


@dataclass(frozen=True)
class Setting:
    """What the app knows of one :class:`RunConfig` field besides its value: its flag on the
    command line, how it may change on resume (:data:`ON_RESUME`), where the window shows it
    (:data:`SHOWN`), and a pretrain's default where it differs from a training run's."""

    flag: Flag | None = None
    on_resume: str = "keep"
    shown: str = ""
    pretrain: Any = SAME_AS_TRAINING

    def __post_init__(self) -> None:
        if self.on_resume not in ON_RESUME or self.shown not in SHOWN:
            raise ValueError(f"bad setting metadata: {self}")


def option(default: Any, **meta: Any) -> Any:
    """A dataclass field with its :class:`Setting`."""
    return field(default=default, metadata=option_meta(**meta))


def option_meta(**meta: Any) -> dict[str, Setting]:
    """A dataclass field's metadata holding its :class:`Setting`."""
    return {"setting": Setting(**meta)}


def _argument_type(kind: Any) -> Any:
    """``kind`` for argparse: its own message for a value it refuses (int's and float's are
    argparse's)."""
    if kind in (int, float, str):
        return kind

    def convert(text: str) -> Any:
        try:
            return kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = kind.__name__
    return convert


def add_flags(
    parser: argparse.ArgumentParser,
    flags: Mapping[str, Flag],
    command: str,
    defaults: Any,
    group_titles: Mapping[str, str],
) -> None:
    """Give ``parser`` the flags (field name -> :class:`Flag`) of ``command``, the values
    ``defaults`` has when none is given. A flag not given is absent from the namespace."""
    groups: dict[str, Any] = {}
    for name, flag in flags.items():
        target: Any = parser
        if flag.group is not None:
            if flag.group not in groups:
                groups[flag.group] = parser.add_argument_group(group_titles[flag.group])
            target = groups[flag.group]
        options: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
        options["help"] = flag.help_for(command)
        default = getattr(defaults, name)
        if isinstance(default, bool) and flag.words is None:
            options.update(action="store_const", const=not flag.name.startswith("--no-"))
        else:
            choices = flag.choices_for(command)
            # Named by the flag, not the field (--lr LR); choices show themselves.
            metavar = None if choices else flag.name[2:].replace("-", "_").upper()
            options.update(
                type=_argument_type(flag.kind),
                choices=choices,
                metavar=flag.metavar or metavar,
                nargs="+" if isinstance(default, tuple) else None,
            )
        target.add_argument(flag.name, **options)


def values_given(args: argparse.Namespace, flags: Mapping[str, Flag]) -> dict[str, Any]:
    """The fields whose flags were given on the command line, as their values."""
    return {
        name: flag.value_of(getattr(args, name))
        for name, flag in flags.items()
        if hasattr(args, name)
    }
