from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from tests.support.api import Api


def test_wechat_login_issues_a_reporter_token_and_never_the_session_key(api: Api) -> None:
    response = api.client.post("/v1/auth/wechat/login", json={"code": "code-alice"})
    assert response.status_code == 200
    assert "SECRET-SESSION-KEY" not in response.text
    body = response.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "hazard-miniprogram"
    assert claims["sub"] == f"reporter:{body['reporter_id']}"
    assert {"exp", "iat", "iss"} <= set(claims)


def test_the_same_openid_is_the_same_reporter(api: Api) -> None:
    first = api.client.post("/v1/auth/wechat/login", json={"code": "code-bob"}).json()
    second = api.client.post("/v1/auth/wechat/login", json={"code": "code-bob"}).json()
    assert first["reporter_id"] == second["reporter_id"]


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("used", 401, "wechat_code_invalid"),
        ("nonsense", 401, "wechat_code_invalid"),
        ("busy", 503, "wechat_unavailable"),
        ("broken", 503, "wechat_unavailable"),
    ],
)
def test_wechat_refusals_are_clear_errors(api: Api, code: str, status: int, error: str) -> None:
    response = api.client.post("/v1/auth/wechat/login", json={"code": code})
    assert response.status_code == status
    assert response.json()["error"]["code"] == error


def test_dev_login_is_refused_unless_enabled(api: Api) -> None:
    response = api.client.post("/v1/auth/wechat/login", json={"code": "dev:alice"})
    assert response.status_code == 401


def test_staff_login_and_profile(api: Api) -> None:
    headers = api.staff("inspector")
    me = api.client.get("/v1/auth/staff/me", headers=headers).json()
    assert me["role"] == "inspector"
    assert me["department_id"] is not None


def test_wrong_password_and_unknown_user_look_alike(api: Api) -> None:
    wrong = api.client.post("/v1/auth/staff/login", json={"username": "admin", "password": "nope"})
    unknown = api.client.post("/v1/auth/staff/login", json={"username": "ghost", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def _forge(
    claims: dict[str, object], key: str = "dev-only-token-secret-change-me-0123456789abcdef", algorithm: str = "HS256"
) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def test_tampered_tokens_are_refused(api: Api) -> None:
    headers = api.reporter("carol")
    token = headers["Authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    now = datetime.now(UTC)
    header, payload, _ = token.split(".")
    none_token = jwt.encode(claims, None, algorithm="none") if False else f"{header}.{payload}."
    candidates = {
        "alg none": none_token,
        "wrong key": _forge(claims, key="another-key-another-key-another-key-0000"),
        "no expiry": _forge({k: v for k, v in claims.items() if k != "exp"}),
        "expired": _forge({**claims, "exp": now - timedelta(minutes=1)}),
        "wrong audience": _forge({**claims, "aud": "someone-else"}),
        "garbage": "not-a-token",
    }
    for name, forged in candidates.items():
        response = api.client.get("/v1/me/reports", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, name


def test_staff_token_is_useless_on_reporter_routes_and_back(api: Api) -> None:
    staff = api.staff("dispatcher")
    reporter = api.reporter("dave")
    assert api.client.get("/v1/me/reports", headers=staff).status_code == 401
    assert api.client.get("/v1/auth/staff/me", headers=reporter).status_code == 401
    assert api.client.get("/v1/me/reports").status_code == 401
