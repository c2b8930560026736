"""Speed settings of a run and the hardware checks behind their ``"auto"`` values.

``precision``            ``auto``: ``mixed_float16`` on a GPU; ``mixed_bfloat16`` on a CPU with
                         bfloat16 instructions (AVX512_BF16 or AMX); else ``float32``. Mixed
                         policies keep the weights in float32 and the output layer in float32
                         (``models.output_head``), so the loss and the saved weights are exact.
``steps_per_execution``  training batches per compiled call. Fewer Python round trips per
                         batch (Keras' per-call work costs about 2 ms, a third of a CPU
                         step of the baseline); batch events and the cooperative stop come
                         once per call. Each epoch is its own finite stream, so an epoch's
                         last call is simply shorter. ``auto``: 8 on a CPU (a call of about
                         40 ms: 25 progress events a second, a stop within 40 ms), 32 on a
                         GPU, where a step takes about a millisecond.
``threads``              TensorFlow's intra-op threads; 0 keeps its default (every core). Takes
                         effect only before TensorFlow's first operation in the process.
``feature_cache``        the frozen front (the leading layers training cannot change: the
                         whole VGG16 base in ``transfer``, blocks 1 and 2 in ``finetune``,
                         any frozen base of a Sequential model) runs outside the training
                         step, in inference mode, and only the rest is trained, at the same
                         batch size, on its outputs: the same arithmetic, without the per-step
                         overhead around the front. Its outputs for the test images are
                         computed once per run, and for the training images once too when
                         they are not augmented; augmented, the front runs on each prepared
                         chunk of ``CHUNK_BATCHES`` batches (256 images) in the input
                         pipeline. Off: the whole model every step (the equality tests and the
                         benchmark's ``full`` recipe use it).
``matmul_convolutions``  convolutions on maps up to 4x4 (VGG16's blocks 4 and 5 at 32x32) as
                         im2col matrix products, their gradients too, and on 8x8 maps (block
                         3) their kernel gradients: oneDNN's kernels are several times slower
                         there (:mod:`cifar_gui.engine.training.matmul_conv`). ``auto``: on a
                         CPU only (measured there; a GPU keeps cuDNN's kernels).
``fused_optimizer``      RMSprop's update as TensorFlow's one fused kernel instead of Keras'
                         element-wise passes, outside distribution strategies
                         (:mod:`cifar_gui.engine.training.fused_rmsprop`).

Tried on the 2-core AVX512_BF16 CPU and not kept (bench/README figures): XLA for the front
(``jit_compile``: about 10x slower than oneDNN's kernels), one inter-op thread (no change),
front batches over 256 images (2% less CPU time per image at 512, none at 1024: not worth
changing the augmentation chunks, whose seeds depend on their size). Keras is channels-last
throughout already, and oneDNN's convolutions take that layout as it is (no activation
reorders in ``ONEDNN_VERBOSE``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import tensorflow as tf

from cifar_gui.engine.training.hardware import cpu_flags

# /proc/cpuinfo flags of CPUs that multiply bfloat16 in hardware.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
CPU_STEPS_PER_EXECUTION = 8  # ~40 ms calls: the round trip amortised, the GUI still live
GPU_STEPS_PER_EXECUTION = 32  # GPU steps are several times shorter: a similar call length


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def cpu_has_bfloat16() -> bool:
    """Whether the CPU has bfloat16 arithmetic (AVX512_BF16 or AMX)."""
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def resolve_precision(setting: str) -> str:
    """The Keras dtype policy name for ``setting`` (``"auto"`` decided by the hardware)."""
    if setting != "auto":
        return setting
    if has_gpu():
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"


def resolve_matmul_convolutions(setting: str) -> bool:
    """Whether small maps' convolutions run as matrix products (``"auto"``: without a GPU)."""
    return setting == "on" or (setting == "auto" and not has_gpu())


def resolve_steps_per_execution(setting: int | str, steps_per_epoch: int) -> int:
    """Training batches per compiled call: the setting (``"auto"``: 8 on a CPU, 32 on a GPU),
    at most the epoch's batches."""
    if setting == "auto":
        setting = GPU_STEPS_PER_EXECUTION if has_gpu() else CPU_STEPS_PER_EXECUTION
    return max(1, min(int(setting), steps_per_epoch))


@contextlib.contextmanager
def precision_scope(policy: str) -> Iterator[None]:
    """Layers made inside compute in ``policy``; the previous global policy comes back after.

    Keras keeps the policy per thread, so a GUI worker's run does not affect the GUI thread.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def model_precision(model: keras.Model) -> str:
    """The policy of the model's first layer with weights (the policy it mostly computes in)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.weights:
            return model_precision(layer)
        if layer.weights:
            return layer.dtype_policy.name
    return model.dtype_policy.name


def apply_threads(threads: int) -> int:
    """Ask TensorFlow for ``threads`` intra-op threads (0: leave it); return what is in use.

    TensorFlow fixes its thread pools at its first operation; later requests are ignored,
    and the number returned says so (0 means TensorFlow's default).
    """
    if threads:
        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(threads)
    return tf.config.threading.get_intra_op_parallelism_threads()
