"""Answers travel compressed (docs/adr/0032): brotli when the browser accepts it, gzip otherwise, pages
and JSON whole and exports streamed, each saying ``Vary: Accept-Encoding``; an answer that shows a
secret once goes uncompressed (BREACH); what is compressed already (a Parquet file) is left alone."""

from __future__ import annotations

import csv
import gzip
import io

import brotli
import pytest
from django.test import Client

from posfleet.api.tests.helpers import new_token
from posfleet.console.tests.test_money_access import MID_A, money  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

BROWSER = "gzip, deflate, br, zstd"  # what Chromium sends


def vary(response) -> set[str]:
    return {v.strip().lower() for v in response.get("Vary", "").split(",")}


def decoded(response) -> bytes:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    coding = response.get("Content-Encoding")
    if coding == "br":
        return brotli.decompress(raw)
    if coding == "gzip":
        return gzip.decompress(raw)
    assert coding is None, coding
    return raw


@pytest.mark.parametrize(
    ("accept", "coding"), [(BROWSER, "br"), ("gzip, deflate", "gzip"), ("br;q=0, gzip", "gzip")]
)
def test_a_console_page_is_compressed_with_the_best_coding_the_browser_accepts(world, login, accept, coding):
    plain = login("admin").get("/console/terminals/")
    response = login("admin").get("/console/terminals/", HTTP_ACCEPT_ENCODING=accept)
    assert response.status_code == 200
    assert response["Content-Encoding"] == coding
    assert "accept-encoding" in vary(response)
    assert int(response["Content-Length"]) == len(response.content) < len(plain.content) / 3
    html = decoded(response).decode()
    assert html.startswith("<!doctype html>")
    assert 'data-testid="version"' in html


def test_without_accept_encoding_the_page_is_plain_and_says_it_varies(world, login):
    response = login("admin").get("/console/terminals/")
    assert response.status_code == 200
    assert "Content-Encoding" not in response
    assert "accept-encoding" in vary(response)
    assert response.content.decode().startswith("<!doctype html>")


def test_api_json_is_compressed(world):
    client = Client(headers={"Authorization": f"Bearer {new_token(world.user('admin'))}"})
    response = client.get("/api/v1/openapi.json", HTTP_ACCEPT_ENCODING=BROWSER)
    assert response.status_code == 200
    assert response["Content-Encoding"] == "br"
    assert b'"openapi"' in decoded(response)


def test_a_streamed_csv_export_is_compressed_piece_by_piece_and_reads_back_whole(money, login):  # noqa: F811
    plain = b"".join(login("merchant_a").get("/console/transactions/export/csv/").streaming_content)
    for accept, coding in ((BROWSER, "br"), ("gzip", "gzip")):
        response = login("merchant_a").get("/console/transactions/export/csv/", HTTP_ACCEPT_ENCODING=accept)
        assert response.status_code == 200
        assert response.streaming
        assert response["Content-Encoding"] == coding
        assert "Content-Length" not in response
        body = decoded(response)
        assert body == plain
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert len(rows) > 1
        assert MID_A in body.decode()


def test_a_parquet_file_is_not_compressed_again(money, login):  # noqa: F811
    response = login("merchant_a").get("/console/transactions/export/parquet/", HTTP_ACCEPT_ENCODING=BROWSER)
    assert response.status_code == 200
    assert "Content-Encoding" not in response
    assert b"".join(response.streaming_content)[:4] == b"PAR1"  # compressed inside, sent as it is


def test_answers_that_show_a_secret_once_are_not_compressed(world, login):
    # The API: a webhook endpoint's signing secret, in the answer that creates it.
    client = Client(headers={"Authorization": f"Bearer {new_token(world.user('merchant_a'))}"})
    created = client.post(
        "/api/v1/webhook-endpoints",
        {"url": "https://hooks.example.com/in"},
        content_type="application/json",
        HTTP_ACCEPT_ENCODING=BROWSER,
    )
    assert created.status_code == 201, created.content
    assert "Content-Encoding" not in created
    assert created.json()["secret"].startswith("whsec_")
    listed = client.get("/api/v1/webhook-endpoints", HTTP_ACCEPT_ENCODING=BROWSER)
    assert listed["Content-Encoding"] == "br"  # the same resource without its secret is compressed
    # The console: the security page, where a TOTP secret and backup codes are shown.
    page = login("merchant_a").get("/accounts/security/", HTTP_ACCEPT_ENCODING=BROWSER)
    assert page.status_code == 200
    assert "Content-Encoding" not in page
    assert page.content.decode().startswith("<!doctype html>")
