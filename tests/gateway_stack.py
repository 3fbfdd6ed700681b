"""Session fixtures for the real gateways (SPEC §10): the test app served over HTTP, and Kannel + fakesmsc
and an aiosmtpd SMTP server pointed at it. Nothing here is mocked.

* ``live_server``: the session's test application on a free local port, one thread per request (the
  browser tests use it too).
* ``gateway_stack``: a ``registry.gateways.local.GatewayStack`` on ports from ``SAGIP_TEST_KANNEL_PORT_BASE``
  (default 14000 .. 14005), replies posted to ``live_server``'s ``/api/v1/hooks/sms``; it sets the session
  app's REGISTRY_SMS_URL, REGISTRY_SMTP_URL and REGISTRY_SMS_HOOK_SECRET. ``stack.sms_url``,
  ``stack.smtp_url``, ``stack.received_sms()`` ([(from, to, text)]), ``stack.wait_for_sms(n, timeout)``,
  ``stack.inject_sms(from, to, text)``, ``stack.received_email()``, ``stack.wait_for_email(n, timeout)``,
  ``stack.clear()``. Kannel's logs (warning level) are kept in the session's data folder, ``gateways/``.
"""
from __future__ import annotations

import os
import threading

import pytest
from werkzeug.serving import make_server

PORT_BASE = int(os.environ.get("SAGIP_TEST_KANNEL_PORT_BASE", "14000"))


@pytest.fixture(scope="session")
def live_server(app, celery_worker):
    """The test application on a free local port, one thread per request (as gunicorn's threads)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def gateway_stack(app, live_server):
    """Kannel (bearerbox, smsbox, fakesmsc) and an SMTP server for the session; the app is pointed at them."""
    from registry.gateways.local import GatewayStack

    from tests.conftest import DATA_DIR
    stack = GatewayStack(PORT_BASE, hook_base=live_server, sender=app.config.get("REGISTRY_SMS_SENDER") or "SAGIP",
                         workdir=os.path.join(DATA_DIR, "gateways"))
    stack.start()
    saved = {name: app.config.get(name) for name in ("REGISTRY_SMS_URL", "REGISTRY_SMTP_URL",
                                                      "REGISTRY_SMS_HOOK_SECRET")}
    app.config.update(REGISTRY_SMS_URL=stack.sms_url, REGISTRY_SMTP_URL=stack.smtp_url,
                      REGISTRY_SMS_HOOK_SECRET=stack.hook_secret)
    try:
        yield stack
    finally:
        app.config.update(saved)
        stack.stop()
