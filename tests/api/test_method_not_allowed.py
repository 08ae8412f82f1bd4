"""A method a path does not serve gets 405 with every method the path does serve in Allow."""

from __future__ import annotations

from tests.support.api import Api


def test_allow_lists_every_method_of_the_path(api: Api) -> None:
    response = api.client.request("OPTIONS", "/v1/admin/departments")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert set(response.headers["allow"].split(", ")) >= {"GET", "POST"}
    single = api.client.delete("/v1/categories")
    assert single.status_code == 405 and "GET" in single.headers["allow"]
