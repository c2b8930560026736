"""Every use of Keras' private parts, in one place.

The frozen front reads a functional model's graph, the model inspection follows an output
back to its activation, the fused RMSprop update reads the optimizer's state, and the
small-map convolutions and the fused update replace a method on one object for the length
of a run. Keras documents none of that, so ``pyproject.toml`` bounds Keras to the versions
this was tested with, and tests/engine/test_keras_internals.py checks (:func:`probe`) that
each name of :data:`INTERNALS` is still where it was, naming the one that moved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras

# Each internal, and what relies on it.
INTERNALS = {
    "KerasTensor._keras_history": "the frozen front and the output activation: which layer "
    "made a symbolic tensor (engine/training/frozen_front.py, engine/models/inspect.py)",
    "Operation._inbound_nodes": "the frozen front and the output activation: the tensors a "
    "layer was called on (engine/training/frozen_front.py, engine/models/inspect.py)",
    "Layer._call_has_training_arg": "the frozen front: whether a layer computes otherwise in "
    "training (engine/training/frozen_front.py)",
    "Optimizer._get_variable_index": "the fused RMSprop update: a variable's slot in the "
    "optimizer's state (engine/training/fused_rmsprop.py)",
    "RMSprop._velocities": "the fused RMSprop update: the optimizer's mean squares "
    "(engine/training/fused_rmsprop.py)",
    "Optimizer.update_step": "the fused RMSprop update replaces it on one optimizer "
    "(engine/training/fused_rmsprop.py)",
    "BaseConv.convolution_op": "the small-map convolutions replace it on one layer "
    "(engine/training/matmul_conv.py)",
}


def moved_message(name: str) -> str:
    """One line for an internal of :data:`INTERNALS` that the installed Keras lacks."""
    return (
        f"keras {keras.__version__} no longer has {name}, which {INTERNALS[name]} relies on: "
        "use a Keras version within pyproject.toml's bounds, or port "
        "cifar_gui/engine/models/keras_internals.py"
    )


def producer(tensor: Any) -> tuple[Any, int] | None:
    """The operation (a layer, a nested model, a ``keras.ops`` call) that made the symbolic
    ``tensor``, and which of its calls did; None for a tensor Keras did not make."""
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else (history.operation, history.node_index)


def made_by(tensor: Any) -> Any:
    """The operation that made the symbolic ``tensor`` (a model's input: its InputLayer)."""
    made = producer(tensor)
    return None if made is None else made[0]


def call_inputs(operation: Any, call: int) -> list[Any]:
    """The symbolic tensors ``operation``'s call number ``call`` took."""
    return list(operation._inbound_nodes[call].input_tensors)


def every_call_inputs(layer: keras.layers.Layer) -> list[list[Any]]:
    """The symbolic tensors of each of ``layer``'s calls in the models it belongs to."""
    return [list(node.input_tensors) for node in layer._inbound_nodes]


def has_training_argument(layer: keras.layers.Layer) -> bool:
    """Whether ``layer``'s ``call`` takes ``training`` (it may then compute otherwise)."""
    return bool(layer._call_has_training_arg)


def rmsprop_slots(
    optimizer: keras.optimizers.Optimizer,
) -> tuple[Callable[[Any], int], Sequence[Any]] | None:
    """For a built RMSprop: the function from a variable to its slot in the optimizer's state,
    and the mean-squares accumulators by slot; None where this Keras keeps them otherwise."""
    if not (hasattr(optimizer, "_get_variable_index") and hasattr(optimizer, "_velocities")):
        return None
    return optimizer._get_variable_index, optimizer._velocities


@contextlib.contextmanager
def replaced(obj: Any, method: str, replacement: Callable[..., Any]) -> Iterator[None]:
    """Within the block, ``obj.<method>`` (``update_step`` of an optimizer,
    ``convolution_op`` of a convolution) is ``replacement``, for that object only: Keras
    calls it through the object, so functions traced inside the block keep it."""
    setattr(obj, method, replacement)
    try:
        yield
    finally:
        delattr(obj, method)


def probe() -> dict[str, bool]:
    """Whether the installed Keras has each internal of :data:`INTERNALS` (on a tiny model)."""
    inputs = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(1, 3)
    outputs = keras.layers.Dense(1)(conv(inputs))
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.RMSprop()
    optimizer.build(model.trainable_variables)
    made = producer(outputs)
    return {
        "KerasTensor._keras_history": made is not None and made[0] is model.layers[-1],
        "Operation._inbound_nodes": made is not None
        and bool(getattr(made[0], "_inbound_nodes", None))
        and hasattr(made[0]._inbound_nodes[made[1]], "input_tensors"),
        "Layer._call_has_training_arg": isinstance(
            getattr(keras.layers.Dropout(0.5), "_call_has_training_arg", None), bool
        ),
        "Optimizer._get_variable_index": callable(getattr(optimizer, "_get_variable_index", None)),
        "RMSprop._velocities": len(getattr(optimizer, "_velocities", ())) == 4,
        "Optimizer.update_step": callable(getattr(optimizer, "update_step", None)),
        "BaseConv.convolution_op": callable(getattr(conv, "convolution_op", None)),
    }
