"""RMSprop's update as TensorFlow's one fused kernel, in place of Keras' element-wise passes.

Keras 3 updates each variable with about nine element-wise operations, each a pass over the
variable's memory; TensorFlow's ``ResourceApplyRMSProp`` makes one. For finetune's 14.6
million trainable weights that is 46 ms of each training step against 22 (measured on 2
cores of an Intel Xeon with AMX, finetune's step about 150 ms). The arithmetic is the same
(with ``momentum = 0`` the kernel computes Keras' ``v = rho v + (1 - rho) g^2`` as
``v += (g^2 - v)(1 - rho)`` and ``w -= lr g / sqrt(v + epsilon)``): round-off apart, the same
weights, which tests/engine/test_fused_rmsprop.py checks against Keras' own update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import keras
import tensorflow as tf

from cifar_gui.engine.models.keras_internals import replaced, rmsprop_slots


def eligible(optimizer: keras.optimizers.Optimizer) -> bool:
    """Whether the fused kernel computes ``optimizer``'s update: Keras' plain RMSprop (no
    momentum, not centered)."""
    return (
        type(optimizer) is keras.optimizers.RMSprop
        and optimizer.momentum == 0
        and not optimizer.centered
    )


@contextlib.contextmanager
def fused_rmsprop(
    optimizer: keras.optimizers.Optimizer,
    variables: Sequence[keras.Variable],
    enabled: bool = True,
) -> Iterator[bool]:
    """Within the block, ``optimizer`` updates ``variables`` with the fused kernel (where
    :func:`eligible`, ``enabled`` and outside a distribution strategy, whose variables the
    kernel cannot take); yields whether it does. Its state stays Keras' own (the same
    velocities, saved and resumed as ever); functions traced inside the block keep the fused
    update, and the optimizer is Keras' again after it."""
    if not (enabled and eligible(optimizer) and not tf.distribute.has_strategy()):
        yield False
        return
    if not optimizer.built:
        optimizer.build(list(variables))
    slots = rmsprop_slots(optimizer)
    if slots is None:  # another Keras version's layout: its own update
        yield False
        return
    slot, velocities = slots
    # The kernel's momentum accumulator: with momentum 0 it only holds this step's increment,
    # so it is scratch, never saved (a variable of its own for each, as updates may overlap).
    scratch = {
        slot(variable): tf.Variable(tf.zeros(variable.shape, variable.dtype), trainable=False)
        for variable in variables
    }

    def update_step(gradient: tf.Tensor, variable: tf.Variable, learning_rate: tf.Tensor) -> None:
        index = slot(variable)
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyRMSProp(
            var=variable.handle,
            ms=velocities[index].handle,
            mom=scratch[index].handle,
            lr=tf.cast(learning_rate, dtype),
            rho=tf.constant(optimizer.rho, dtype),
            momentum=tf.constant(0, dtype),
            epsilon=tf.constant(optimizer.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )

    with replaced(optimizer, "update_step", update_step):
        yield True
