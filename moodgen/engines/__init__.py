"""The engines, one module each; importing this package registers every module in it."""
from __future__ import annotations

import importlib
import pkgutil

from moodgen.engines.base import (
    Continuation,
    Engine,
    EngineOutput,
    Session,
    engine_class,
    engine_classes,
    engine_names,
    register,
)

__all__ = ["Continuation", "Engine", "EngineOutput", "Session", "engine_class", "engine_classes", "engine_names",
           "register"]

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
