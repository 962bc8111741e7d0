"""Fast on the wire (docs/adr/0032), measured in Chromium against a server set up as production is:
static files collected with production's storage and served by WhiteNoise from STATIC_ROOT alone.

Signed in as staff over a fleet of a few hundred terminals, a first visit (empty cache) to the device
list transfers under 100 KB — the page and everything it loads, headers included; every page, script
and stylesheet arrives compressed (brotli or gzip), every static file under a hashed name with a
year-long immutable cache; and on the device list, the dashboard, a terminal's page and a merchant's
home every stylesheet, script and font the page loads is named by the page itself — nothing is found
only through another file (a CSS @import, a script adding a stylesheet), so what blocks rendering
arrives in one round trip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.test.testcases import LiveServerThread

from posfleet.fleet.services import NewTerminal, terminals_register_batch
from posfleet.fleet.states import Status
from posfleet.testing.browser import log_in
from posfleet.testing.personas import SYSTEM, build_world, make_terminal
from posfleet.testing.static import production_static_settings

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BUDGET = 100_000  # bytes on the wire for the device list, first visit
IMMUTABLE = "max-age=315360000, public, immutable"
ACTIVE = 60  # bound and active, walked through the services (the list's first page is all theirs)
IN_STOCK = 300  # imported in one batch, as the warehouse does
TEXT_TYPES = {"document", "stylesheet", "script", "xhr", "fetch"}


@pytest.fixture
def fleet():
    world = build_world()
    for user in ("admin", "merchant_a"):
        person = world.user(user)
        person.language = "zh-hans"
        person.save(update_fields=["language"])
    merchants = [world.merchant_a, world.merchant_a1, world.merchant_b]
    for i in range(ACTIVE):
        make_terminal(world, f"SN-A-{i:04d}", Status.ACTIVE, merchant=merchants[i % len(merchants)])
    stock = [
        NewTerminal(
            sn=f"SN-S-{i:04d}",
            model_id=world.model.pk,
            sim_iccid=f"8986{i:016d}",
            service_expires_on=date(2027, 12, 31),
            firmware_version="2.4.1",
        )
        for i in range(IN_STOCK)
    ]
    terminals_register_batch(actor=SYSTEM, batch="budget-0001", terminals=stock)
    return world


@pytest.fixture
def production_server(production_static, fleet) -> Iterator[str]:
    """A live server whose handler (middleware and all) is built under production's static settings:
    no Django static handler in front, so /static/ is WhiteNoise's, from the collected files only."""
    with production_static_settings(production_static):
        server = LiveServerThread("localhost", static_handler=lambda handler: handler)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise server.error
        try:
            yield f"http://{server.host}:{server.port}"
        finally:
            server.terminate()


@dataclass
class Transfer:
    url: str
    kind: str  # Playwright's resource type: document, stylesheet, script, font, image, xhr, fetch …
    status: int
    headers: dict[str, str]
    bytes: int  # response headers and encoded body, as they crossed the wire


class Visit:
    """What a page load fetched (everything Chromium asked the network for)."""

    def __init__(self, page) -> None:
        self.transfers: list[Transfer] = []
        self.errors: list[str] = []  # script errors and console errors (a CSP refusal shows there)
        page.on("requestfinished", self._finished)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)

    def _finished(self, request) -> None:
        response = request.response()
        if response is None:
            return
        sizes = request.sizes()
        self.transfers.append(
            Transfer(
                request.url,
                request.resource_type,
                response.status,
                response.all_headers(),
                sizes["responseHeadersSize"] + sizes["responseBodySize"],
            )
        )

    @property
    def total(self) -> int:
        return sum(t.bytes for t in self.transfers)

    def summary(self) -> str:
        return "\n".join(
            f"{t.bytes:>7} {t.kind:<10} {t.headers.get('content-encoding', '-'):<4} {urlsplit(t.url).path}"
            for t in self.transfers
        )


class _Refs(HTMLParser):
    """The assets a page names in its own HTML (stylesheets, scripts, preloads, icons)."""

    def __init__(self) -> None:
        super().__init__()
        self.named: set[str] = set()
        self.blocking: set[str] = set()
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "head":
            self._in_head = True
        elif tag == "body":
            self._in_head = False
        elif tag == "link" and a.get("href"):
            self.named.add(a["href"] or "")
            if "stylesheet" in (a.get("rel") or "").split() and a.get("media") in (None, "all", "screen"):
                self.blocking.add(a["href"] or "")
        elif tag == "script" and a.get("src"):
            self.named.add(a["src"] or "")
            if self._in_head and "defer" not in a and "async" not in a and a.get("type") != "module":
                self.blocking.add(a["src"] or "")


def visit(page, base: str, path: str) -> tuple[Visit, _Refs]:
    """Load ``path`` as a first visit (an empty cache) and wait until the network is quiet."""
    recorder = Visit(page)
    response = page.goto(f"{base}{path}", wait_until="networkidle")
    assert response is not None
    assert response.status == 200, (path, response.status)
    refs = _Refs()
    refs.feed(response.text())
    refs.named = {urljoin(f"{base}{path}", u) for u in refs.named}
    refs.blocking = {urljoin(f"{base}{path}", u) for u in refs.blocking}
    return recorder, refs


def check_wire(recorder: Visit, refs: _Refs, path: str) -> None:
    assert recorder.errors == [], (path, recorder.errors)
    assets = [t for t in recorder.transfers if t.kind not in {"document", "xhr", "fetch"}]
    assert assets, recorder.summary()
    for t in recorder.transfers:
        assert t.status in (200, 204), (t.url, t.status)
        if t.kind in TEXT_TYPES and int(t.headers.get("content-length", "1000")) > 0:
            assert t.headers.get("content-encoding") in {"br", "gzip"}, (path, t.url, t.headers)
    for t in assets:
        url_path = urlsplit(t.url).path
        assert url_path.startswith("/static/"), t.url
        assert re.search(r"\.[0-9a-f]{12}\.[a-z0-9]+$", url_path), t.url  # hashed name
        assert t.headers.get("cache-control") == IMMUTABLE, (t.url, t.headers.get("cache-control"))
        # One round trip: the page names every stylesheet, script and font it loads.
        assert t.url in refs.named, (path, t.url, "found only through another file")
    blocking_loaded = {t.url for t in assets if t.kind in {"stylesheet", "script"}} & refs.blocking
    assert blocking_loaded == refs.blocking, (path, refs.blocking - blocking_loaded)


def first_visit(browser, base: str, who: str, path: str, check=None) -> Visit:
    """Sign ``who`` in, then load ``path`` in a new browser context with that session and an empty
    cache (what signing in loaded is not there): a first visit. ``check(page)`` runs on the page."""
    options = {"locale": "zh-CN", "viewport": {"width": 1400, "height": 900}}
    signing_in = browser.new_context(**options)
    signing_in.set_default_timeout(30_000)
    try:
        log_in(signing_in.new_page(), base, who)
        fresh = browser.new_context(**options, storage_state=signing_in.storage_state())
    finally:
        signing_in.close()
    fresh.set_default_timeout(30_000)
    try:
        page = fresh.new_page()
        recorder, refs = visit(page, base, path)
        if check is not None:
            check(page)
        check_wire(recorder, refs, path)
        print(f"\n{path} as {who}, first visit: {recorder.total} bytes\n{recorder.summary()}")
        return recorder
    finally:
        fresh.close()


def test_device_list_first_visit_is_under_budget_and_everything_is_compressed_and_cacheable(
    browser, production_server
):
    def full_page(page) -> None:
        assert page.locator("[data-sn]").count() == 50  # a full page of the few hundred

    recorder = first_visit(browser, production_server, "admin", "/console/terminals/", full_page)
    assert recorder.total < BUDGET, recorder.summary()


@pytest.mark.parametrize(
    ("who", "path"),
    [("admin", "/console/"), ("admin", "/console/terminals/SN-A-0001/"), ("merchant_a", "/console/")],
)
def test_key_pages_load_what_blocks_rendering_in_one_round_trip(browser, production_server, who, path):
    first_visit(browser, production_server, who, path)
