from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from app.core.config import SecuritySettings
from app.core.db import unit_of_work
from app.identity import service as identity_service
from app.identity.models import StaffUser
from app.identity.roles import Role
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


def _b64(data: dict[str, object] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data, default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forge(claims: dict[str, Any], key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or SecuritySettings().token_secret, algorithm=algorithm)


def _without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


def _unsigned(claims: dict[str, Any], signature: str = "") -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.{signature}"


def _tampered(token: str, claims: dict[str, Any]) -> str:
    """The payload changed, the header and signature of the genuine token kept."""
    header, _, signature = token.split(".")
    return f"{header}.{_b64(claims)}.{signature}"


HOUR = timedelta(hours=1)
# Each forgery of a genuine token's claims; all must be answered 401 on both kinds of token.
FORGERIES: dict[str, Callable[[str, dict[str, Any], datetime], str]] = {
    "alg none, no signature": lambda token, claims, now: _unsigned(claims),
    "alg none, the genuine signature": lambda token, claims, now: _unsigned(claims, token.rsplit(".", 1)[1]),
    "alg HS512 with the right key": lambda token, claims, now: _forge(claims, algorithm="HS512"),
    "wrong key": lambda token, claims, now: _forge(claims, key="another-key-another-key-another-key-0000"),
    "payload edited, signature kept": lambda token, claims, now: _tampered(token, {**claims, "exp": now + 900 * HOUR}),
    "no expiry": lambda token, claims, now: _forge(_without(claims, "exp")),
    "no issued-at": lambda token, claims, now: _forge(_without(claims, "iat")),
    "no subject": lambda token, claims, now: _forge(_without(claims, "sub")),
    "no audience": lambda token, claims, now: _forge(_without(claims, "aud")),
    "no issuer": lambda token, claims, now: _forge(_without(claims, "iss")),
    "expired": lambda token, claims, now: _forge({**claims, "exp": now - timedelta(minutes=1)}),
    "wrong audience": lambda token, claims, now: _forge({**claims, "aud": "someone-else"}),
    "audience list": lambda token, claims, now: _forge({**claims, "aud": [claims["aud"], "someone-else"]}),
    "wrong issuer": lambda token, claims, now: _forge({**claims, "iss": "someone-else"}),
    "not valid before an hour from now": lambda token, claims, now: _forge({**claims, "nbf": now + HOUR}),
    "issued an hour from now": lambda token, claims, now: _forge({**claims, "iat": now + HOUR}),
    "subject not a uuid": lambda token, claims, now: _forge({**claims, "sub": claims["sub"].split(":")[0] + ":x"}),
    "subject of the other kind": lambda token, claims, now: _forge(
        {**claims, "sub": claims["sub"].replace("reporter:", "other:").replace("staff:", "reporter:")}
    ),
    "garbage": lambda token, claims, now: "not-a-token",
    "three empty parts": lambda token, claims, now: "..",
    "truncated signature": lambda token, claims, now: token[:-6],
    "header not json": lambda token, claims, now: f"{_b64(b'{not json')}.{token.split('.', 1)[1]}",
}
# The route each kind of token is for.
ROUTES = {"reporter": "/v1/me/reports", "staff": "/v1/auth/staff/me"}
UNAUTHENTICATED = {"invalid_token", "wrong_token_kind", "unauthenticated"}


def _refused(response: Any, what: str) -> None:
    assert response.status_code == 401, f"{what}: {response.status_code} {response.text}"
    error = response.json()["error"]
    assert error["code"] in UNAUTHENTICATED, f"{what}: {error}"
    assert re.search(r"[\u4e00-\u9fff]", error["message"]), f"{what}: {error}"


def _genuine(api: Api, kind: str) -> str:
    headers = api.reporter("carol") if kind == "reporter" else api.staff("dispatcher")
    return headers["Authorization"].split()[1]


@pytest.mark.filterwarnings("ignore:The HMAC key is .* below the minimum recommended length")  # HS512, our key
@pytest.mark.parametrize("kind", ["reporter", "staff"])
@pytest.mark.parametrize("open_to_both", [False, True], ids=["own-kind-route", "route-open-to-both"])
def test_tampered_tokens_are_refused(api: Api, kind: str, open_to_both: bool) -> None:
    """On a route for one kind of caller, and on one open to reporters and staff alike (its own decode, against
    either audience)."""
    token = _genuine(api, kind)
    route = ROUTES[kind]
    if open_to_both:
        route = f"/v1/uploads/{api.upload_id({'Authorization': f'Bearer {token}'})}"
    assert api.client.get(route, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    claims = jwt.decode(token, options={"verify_signature": False})
    now = datetime.now(UTC)
    for name, forge in FORGERIES.items():
        forged = forge(token, claims, now)
        _refused(api.client.get(route, headers={"Authorization": f"Bearer {forged}"}), name)
    for header in ("", "Bearer", "Bearer ", f"Basic {token}", f"Token {token}", token):
        _refused(api.client.get(route, headers={"Authorization": header}), f"Authorization: {header[:20]!r}")
    _refused(api.client.get(route), "no Authorization")


def _set_active(api: Api, username: str, *, delete: bool = False) -> None:
    async def change(context: Any) -> None:
        async with unit_of_work(context.sessions) as session:
            staff = await session.scalar(select(StaffUser).where(StaffUser.username == username))
            assert staff is not None
            if delete:
                await session.delete(staff)
            else:
                staff.is_active = False

    api.client.portal.call(change, api.client.app.state.context)  # type: ignore[attr-defined,union-attr]


def test_a_staff_token_dies_with_its_account(api: Api) -> None:
    """A token outlives neither a deactivated nor a deleted account: staff are looked up on every request."""

    async def create(context: Any) -> None:
        async with unit_of_work(context.sessions) as session:
            for username in ("leaver", "removed"):
                await identity_service.create_staff(
                    session, username=username, password="pw-" + username, display_name=username, role=Role.DISPATCHER
                )

    api.client.portal.call(create, api.client.app.state.context)  # type: ignore[attr-defined,union-attr]
    for username, delete in (("leaver", False), ("removed", True)):
        login = api.client.post("/v1/auth/staff/login", json={"username": username, "password": "pw-" + username})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert api.client.get("/v1/staff/triage", headers=headers).status_code == 200
        _set_active(api, username, delete=delete)
        _refused(api.client.get("/v1/staff/triage", headers=headers), username)
        _refused(api.client.get("/v1/auth/staff/me", headers=headers), username)
        relogin = api.client.post("/v1/auth/staff/login", json={"username": username, "password": "pw-" + username})
        assert relogin.status_code == 401


def test_a_changed_role_takes_effect_on_the_next_request(api: Api) -> None:
    """The token names the account, not its role: the role the account holds now decides, with no re-login."""
    headers = api.staff("inspector")
    assert api.client.get("/v1/staff/triage", headers=headers).status_code == 403

    async def change(context: Any, role: Role) -> None:
        async with unit_of_work(context.sessions) as session:
            staff = await session.scalar(select(StaffUser).where(StaffUser.username == "inspector"))
            assert staff is not None
            staff.role = role.value

    context = api.client.app.state.context  # type: ignore[attr-defined]
    api.client.portal.call(change, context, Role.DISPATCHER)  # type: ignore[union-attr]
    assert api.client.get("/v1/staff/triage", headers=headers).status_code == 200
    api.client.portal.call(change, context, Role.INSPECTOR)  # type: ignore[union-attr]
    assert api.client.get("/v1/staff/triage", headers=headers).status_code == 403


def test_staff_token_is_useless_on_reporter_routes_and_back(api: Api) -> None:
    staff = api.staff("dispatcher")
    reporter = api.reporter("dave")
    for route in ("/v1/me/reports", "/v1/me/rewards"):
        _refused(api.client.get(route, headers=staff), f"staff token on {route}")
    for route in (
        "/v1/auth/staff/me",
        "/v1/staff/cases",
        "/v1/staff/triage",
        "/v1/staff/rewards",
        "/v1/admin/partners",
    ):
        _refused(api.client.get(route, headers=reporter), f"reporter token on {route}")
    _refused(api.client.get("/v1/me/reports"), "no token")
