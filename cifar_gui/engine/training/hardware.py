"""What the machine is, read without TensorFlow (so the GUI and benchmarks can ask cheaply)."""

from __future__ import annotations

import functools
import platform


def _cpuinfo_field(name: str) -> str | None:
    """The first ``name: value`` line of ``/proc/cpuinfo`` (Linux), or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_name() -> str:
    """The CPU model, e.g. "AMD EPYC"; the architecture where the model is unknown."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    if platform.system() != "Linux":
        return frozenset()
    return frozenset((_cpuinfo_field("flags") or "").split())
