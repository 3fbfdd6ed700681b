"""The crisis pages (SPEC §9, §4.1): the list (``/console/crises``), declaring one (``/console/crises/new``)
and a crisis with its exposed people (``/console/crises/{id}``), through ``registry.crises`` services and the
API's schemas."""
from __future__ import annotations

from registry.console.crises import declare, detail, index  # noqa: F401  (the pages register their routes)
