"""The demo district: generated department systems in their real formats, and their ground truth.

``generate_demo(home)`` writes ``<home>/demo/`` (see :mod:`demo.generate`); ``SOURCES_YAML`` declares
those systems for the pipeline. The generator is imported on first use, so that importing the
package stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SOURCES_YAML", "DemoSummary", "generate_demo"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from demo import generate

        return getattr(generate, name)
    raise AttributeError(f"module 'demo' has no attribute {name!r}")
