"""The nationals pages (SPEC §9): register (``/console/nationals/new``), find (``/console/nationals``) and read
(``/console/nationals/{id}``) a national, through the API's schemas and ``registry.nationals.services``."""
from __future__ import annotations

from registry.console.nationals import record, register, search  # noqa: F401  (the pages register their routes)
