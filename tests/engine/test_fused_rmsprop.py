"""RMSprop's fused update: the weights and the state of Keras' own update, step after step,
only for the optimizers it computes exactly, and Keras' update again after the block."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from cifar_gui.engine.training.fused_rmsprop import eligible, fused_rmsprop

SHAPES = [(3, 3, 4, 5), (5,), (7, 2)]


def run_steps(fused: bool, steps: int = 6) -> tuple[list[np.ndarray], list[np.ndarray], bool]:
    """Weights and optimizer state after ``steps`` updates with the same gradients, traced
    once (as fit does) or run eagerly."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=shape).astype(np.float32)) for shape in SHAPES]
    # Gradients of every size RMSprop meets: tiny ones (below sqrt(epsilon)) and large ones.
    gradients = [
        [tf.constant(rng.normal(size=s) * 10.0 ** rng.integers(-6, 1), tf.float32) for s in SHAPES]
        for _ in range(steps)
    ]
    optimizer = keras.optimizers.RMSprop(learning_rate=1e-2)
    with fused_rmsprop(optimizer, variables, fused) as used:
        apply = tf.function(lambda grads: optimizer.apply(grads, variables))
        for step in gradients:
            apply(step)
    state = [v.numpy() for v in optimizer.variables if v.shape in SHAPES]
    return [v.numpy() for v in variables], state, used


def test_same_weights_and_state_as_keras():
    ours, our_state, used = run_steps(True)
    theirs, their_state, none = run_steps(False)
    assert used and not none
    start, _, _ = run_steps(False, steps=0)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(theirs, start, strict=True)) > 1e-2
    for a, b in zip(ours + our_state, theirs + their_state, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_only_plain_rmsprop_outside_strategies():
    assert eligible(keras.optimizers.RMSprop())
    assert not eligible(keras.optimizers.RMSprop(momentum=0.9))
    assert not eligible(keras.optimizers.RMSprop(centered=True))
    assert not eligible(keras.optimizers.Adam())
    variables = [keras.Variable(np.zeros(3, np.float32))]
    with fused_rmsprop(keras.optimizers.RMSprop(), variables, enabled=False) as used:
        assert not used
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope(), fused_rmsprop(keras.optimizers.RMSprop(), variables) as used:
        assert not used


def test_keras_update_again_after_the_block():
    optimizer = keras.optimizers.RMSprop()
    variables = [keras.Variable(np.zeros(3, np.float32))]
    with pytest.raises(RuntimeError), fused_rmsprop(optimizer, variables):
        assert "update_step" in vars(optimizer)
        raise RuntimeError("a failed run")
    assert "update_step" not in vars(optimizer)
