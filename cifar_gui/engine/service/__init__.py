"""The engine service: one child process answers every request the window makes of TensorFlow
(models, activations, evaluation, augmentation previews, the device), with plain data.

``client`` is the window's side (no Qt, no TensorFlow: the window imports it); ``handler``
runs the requests in the child, where TensorFlow lives. The training run has its own child
(:mod:`cifar_gui.engine.runner`): it is the run, not a request.
"""

from cifar_gui.engine.service.client import DeviceInfo, EngineService, ModelHandle, ServiceError

__all__ = ["DeviceInfo", "EngineService", "ModelHandle", "ServiceError"]
