"""Which language API messages come in: the token user's own; otherwise Accept-Language; otherwise
Chinese, the provider's default."""

from __future__ import annotations

from django.test import Client

from posfleet.api.tests.helpers import SN_A, assert_problem
from posfleet.iam.models import User


def test_anonymous_callers_get_chinese_unless_they_ask(db):
    plain = Client().get("/api/v1/me")
    assert assert_problem(plain, 401, "not_authenticated")["title"].startswith("需要认证")
    english = Client().get("/api/v1/me", headers={"Accept-Language": "en"})
    assert assert_problem(english, 401, "not_authenticated")["title"].startswith("Authentication is needed")


def test_a_token_answers_in_its_users_language(fleet, api_as, world):
    api = api_as("merchant_b")  # the personas read English
    body = assert_problem(api.get(f"/terminals/{SN_A}"), 404, "not_found")
    assert body["detail"] == "Not found."
    User.objects.filter(username="merchant_b").update(language="zh-hans")
    body = assert_problem(api.get(f"/terminals/{SN_A}"), 404, "not_found")
    assert body["detail"] == "未找到。"
