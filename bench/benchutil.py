"""What every benchmark script records about the machine, and how it writes its result."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from cifar_gui.engine.training.hardware import cpu_name


def machine_fields() -> dict[str, object]:
    """CPU, cores, load and date: the context a timing needs to be read."""
    return {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_result(result: dict[str, object], out: str | Path) -> dict[str, object]:
    """Write ``result`` as JSON to ``out`` and print it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result
