"""How the window words numbers: probabilities, counts, what a classifier's answer means."""

from __future__ import annotations

from collections.abc import Sequence

# The file dialogs' filter for model files (opening, exporting).
MODEL_FILTERS = "Keras models (*.keras *.h5);;All files (*)"


def format_probability(p: float) -> str:
    """A probability as the app shows it everywhere: a percentage with one decimal."""
    return f"{p:.1%}"


def counted(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``: the count and the noun, plural unless it is one."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def known_classes_note(class_names: Sequence[str]) -> str:
    """What a classifier's answer means: it picks one of its classes for any picture."""
    names = list(class_names)
    known = " and ".join(names) if len(names) <= 2 else f"its {len(names)} classes"
    return f"This model only knows {known}: a picture of anything else still gets one of them."
