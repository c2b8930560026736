"""Training one run, a job per module (none imports Qt; all import TensorFlow):

- :mod:`~cifar_gui.engine.training.pipeline`: the input pipeline (``EpochStream``,
  ``eval_dataset``);
- :mod:`~cifar_gui.engine.training.frozen_front`: the frozen front, its feature cache, and
  what ``fit`` trains (``split_front``, ``FrozenFront``, ``plan_fit``);
- :mod:`~cifar_gui.engine.training.callbacks`: the run's Keras callbacks (progress events and
  the stop, keep-best);
- :mod:`~cifar_gui.engine.training.matmul_conv` and
  :mod:`~cifar_gui.engine.training.fused_rmsprop`: the speed-ups that replace Keras'
  arithmetic; what every speed setting came to is the record's
  :class:`~cifar_gui.engine.record.Performance`;
- :mod:`~cifar_gui.engine.training.run`: the run itself (``train``, ``run_training``).
"""
