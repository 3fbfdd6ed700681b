#!/usr/bin/env python
"""The crisis page's first load, in KB, as Chromium receives it: the HTML, the JavaScript and CSS, and the
data its scripts fetch on load (the area, the map's grouped points, the offline base map's tiles).

    python bench/page_weight.py [--nationals 400] [--runs 3] \
        [--database-url postgresql://postgres@127.0.0.1:5432/sagip_bench_page] [--redis-url redis://127.0.0.1:6379/10]

1. Creates and migrates the scratch database (once), loads the demo into it (``registry demo --nationals N``,
   in-process: its crisis "Demo: flash flood, Dubai", its exposure run and first roster), and serves the
   app on 127.0.0.1 from a thread of this process.
2. Signs in as the demo coordinator in Debian's Chromium (Playwright, ``--no-sandbox``), then, --runs
   times in a fresh page with an empty cache, opens the crisis page and waits until the network is idle
   and the map has drawn its points. Every response of that load is counted: its body as received
   (``request.sizes()``: encoded bytes on the wire) and its headers.
3. Prints the total and the parts per kind (document, script, stylesheet, the page's data, base map tiles,
   other), the median over the runs. Nothing leaves 127.0.0.1 (any other request is refused and named).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.exposure import prepare

KINDS = ("document", "script", "stylesheet", "page data", "base map tiles", "other")


def kind_of(url: str, resource_type: str) -> str:
    path = urlsplit(url).path
    if path.startswith("/console/basemap/"):
        return "base map tiles"
    if resource_type in ("document", "script", "stylesheet"):
        return resource_type
    if resource_type in ("fetch", "xhr"):
        return "page data"
    return "other"


def demo(app, nationals: int) -> dict[str, str]:
    """Load the demo (once; later runs reuse it); the demo users' passwords (new on every run)."""
    result = app.test_cli_runner().invoke(args=["demo", "--nationals", str(nationals)])
    if result.exit_code != 0:
        raise SystemExit(f"registry demo failed:\n{result.output}")
    listed = result.output[result.output.index("Console sign-in"):].splitlines()[1:7]
    return dict(line.split() for line in listed)


def serve(app) -> tuple[str, object]:
    import logging

    from werkzeug.serving import make_server
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="page-weight", daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


def measure(base: str, password: str, crisis_path: str, runs: int) -> list[dict]:
    from playwright.sync_api import sync_playwright
    chromium = os.environ.get("SAGIP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("Chromium is not installed (apt-get install chromium)")
    results, refused = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(runs):
            context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 860})

            def route(route, request):
                if urlsplit(request.url).hostname in ("127.0.0.1", "localhost") or request.url.startswith("data:"):
                    route.continue_()
                else:
                    refused.append(request.url)
                    route.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.goto("/console/login")
            page.get_by_label("Username").fill("coordinator")
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/console/")
            # An empty cache for the measured load (the sign-in page cached console.css and console.js).
            cdp = context.new_cdp_session(page)
            cdp.send("Network.clearBrowserCache")
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            seen: list = []
            page.on("requestfinished", lambda request, into=seen: into.append(request))
            page.goto(crisis_path)
            page.wait_for_selector("#crisis-map[data-loaded='true']", timeout=60_000)
            page.wait_for_load_state("networkidle")
            parts = defaultdict(lambda: [0, 0, 0])  # kind -> [requests, body bytes, header bytes]
            for request in seen:
                sizes = request.sizes()
                part = parts[kind_of(request.url, request.resource_type)]
                part[0] += 1
                part[1] += sizes["responseBodySize"]
                part[2] += sizes["responseHeadersSize"]
            results.append(dict(parts))
            context.close()
        browser.close()
    if refused:
        raise SystemExit(f"the page tried to leave 127.0.0.1: {refused[:5]}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nationals", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/sagip_bench_page")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    args = parser.parse_args()

    app, _, _ = prepare(args.database_url, args.redis_url)
    app.config["REGISTRY_COOKIE_SECURE"] = False  # plain HTTP on 127.0.0.1
    passwords = demo(app, args.nationals)
    from sqlalchemy import text

    from registry.extensions import db
    with app.app_context():
        row = db.session.execute(text(
            "SELECT c.id, (SELECT (r.counts->>'total')::int FROM exposure_runs r WHERE r.crisis_id = c.id AND "
            "r.status = 'succeeded' ORDER BY r.created_at DESC LIMIT 1) FROM crises c "
            "WHERE c.name = 'Demo: flash flood, Dubai' ORDER BY c.created_at LIMIT 1")).one()
    crisis_path, exposed = f"/console/crises/{row[0]}", row[1]
    base, server = serve(app)
    try:
        results = measure(base, passwords["coordinator"], crisis_path, args.runs)
    finally:
        server.shutdown()

    print(f"crisis page first load: {crisis_path} (demo, {args.nationals} nationals, {exposed} exposed), "
          f"Chromium, empty cache, median of {args.runs}")
    print(f"{'part':<16}{'requests':>9}{'body KB':>10}{'headers KB':>12}")
    total_body = total_headers = 0.0
    for kind in KINDS:
        counted = [r.get(kind, [0, 0, 0]) for r in results]
        requests = statistics.median(c[0] for c in counted)
        body = statistics.median(c[1] for c in counted) / 1024
        headers = statistics.median(c[2] for c in counted) / 1024
        total_body += body
        total_headers += headers
        print(f"{kind:<16}{requests:>9.0f}{body:>10.1f}{headers:>12.1f}")
    print(f"{'total':<16}{'':>9}{total_body:>10.1f}{total_headers:>12.1f}")
    print(f"first load: {total_body + total_headers:.1f} KB (bodies {total_body:.1f} KB + headers "
          f"{total_headers:.1f} KB)")


if __name__ == "__main__":
    main()
