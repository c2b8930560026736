"""Each RunConfig field's Setting, and the rules derived from it: the command line's flags and
what a resumed run may change (issue 23, "settings described once")."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cifar_gui.cli import RESUME_CHANGES, build_parser, config_from_args
from cifar_gui.config import SETTINGS, RunConfig, flagged, pretrain_defaults, run_differences
from cifar_gui.engine.errors import ModelError
from cifar_gui.engine.training.checkpoints import Checkpoint, check_resumable
from tests.cli.test_cli_study import other_value


def test_every_field_has_its_setting():
    assert list(SETTINGS) == [f.name for f in dataclasses.fields(RunConfig)]


@pytest.mark.parametrize("command", ["train", "pretrain", "study"])
def test_no_flag_gives_the_commands_defaults(command):
    config = config_from_args(build_parser().parse_args([command]), command)
    expected = {
        "train": RunConfig(),
        "pretrain": RunConfig().replace(weights="none", use_augmentation=False),
        "study": RunConfig(out_dir="study"),
    }
    assert config == expected[command]
    assert pretrain_defaults() == {"weights": "none", "use_augmentation": False}


@pytest.mark.parametrize("name", list(flagged("train")))
def test_each_train_flag_reaches_its_field(name):
    """Parse, don't train: the words of another value give that value."""
    flag = SETTINGS[name].flag
    value = other_value(name, getattr(RunConfig(), name), "train")
    args = build_parser().parse_args(["train", *flag.command_words(value)])
    assert config_from_args(args, "train") == RunConfig().replace(**{name: value})


def _checkpoint(config: RunConfig) -> Checkpoint:
    return Checkpoint(Path("run"), Path("run/epoch-0001.keras"), config, 1, 3, {}, ("a", "b"))


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(RunConfig)])
def test_a_resume_refuses_exactly_the_fields_that_define_the_run(name):
    saved = RunConfig(epochs=2)
    default = getattr(saved, name)
    changed = {
        "variant": "augmented", "augment": dataclasses.replace(saved.augment, zoom=0.1),
        "excluded": ("cat", "dog"), "arch": "vgg16", "unfreeze_from": "block4_conv1",
        "use_augmentation": True, "learning_rate": 0.5, "train_limit": 3, "epochs": 3,
    }.get(name)  # fmt: skip
    if changed is None:
        changed = other_value(name, default)
    resumed = saved.replace(**{name: changed})
    keep = SETTINGS[name].on_resume == "keep"
    assert run_differences(resumed, saved) == ([name] if keep else [])
    if keep:
        with pytest.raises(ModelError, match=f"differs from the checkpoint's in {name}"):
            check_resumable(resumed, _checkpoint(saved))
    else:
        check_resumable(resumed, _checkpoint(saved))


def test_the_command_line_resume_may_give_the_documented_settings_only():
    assert set(RESUME_CHANGES) == {"data", "epochs", "strategy"}  # see README, Resume


def test_plan_run_takes_the_settings_a_resume_may_give():
    import inspect

    from cifar_gui.engine.training.runner import plan_run

    keywords = [
        name
        for name, p in inspect.signature(plan_run).parameters.items()
        if p.kind is p.KEYWORD_ONLY and name not in ("resume", "new_folder", "overwrite")
    ]
    assert sorted(keywords) == sorted(n for n, s in SETTINGS.items() if s.on_resume == "new")
