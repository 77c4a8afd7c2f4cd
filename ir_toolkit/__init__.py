"""ir_toolkit: incident response for Microsoft 365 / Entra ID token-forgery breaches.

Layers, dependencies pointing down only::

    cli -> report -> analysis -> tokens -> case -> sources -> schema/timeutil/errors
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
