"""The old name of the engine service's front (:mod:`cifar_gui.engine.service`), kept for the
modules that still import it (the Activations tab and its tests, benchmarks); new code
imports :mod:`cifar_gui.engine.service`."""

from cifar_gui.engine.service import EngineService as ModelService
from cifar_gui.engine.service import ModelHandle
from cifar_gui.engine.service import ServiceError as ModelServiceError

__all__ = ["ModelHandle", "ModelService", "ModelServiceError"]
