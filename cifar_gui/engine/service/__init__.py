"""The engine service: one child process answers every request the window makes of TensorFlow
(models, activations, evaluation, augmentation previews, the device), with plain data.

``client`` is the window's side (no Qt, no TensorFlow: the window imports it); ``handler``
runs the requests in the child, where TensorFlow lives; ``replies`` is the plain data both
sides share. The training run has its own child
(:mod:`cifar_gui.engine.training.runner`): it is the run, not a request.
"""

from cifar_gui.engine.service.client import EngineService
from cifar_gui.engine.service.replies import DeviceInfo, ModelHandle, ServiceError

__all__ = ["DeviceInfo", "EngineService", "ModelHandle", "ServiceError"]
