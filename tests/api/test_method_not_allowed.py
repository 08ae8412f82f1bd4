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


def test_open311_paths_name_only_their_own_methods(api: Api) -> None:
    # Found by schemathesis: a catch-all route for unknown Open311 resources put POST in every Open311 path's Allow.
    for method, path in (("OPTIONS", "/open311/discovery.json"), ("POST", "/open311/v2/services.xml")):
        response = api.client.request(method, path)
        assert response.status_code == 405 and response.headers["allow"] == "GET", (method, path, response.headers)
    assert api.client.request("OPTIONS", "/open311/v2/requests.json").headers["allow"] == "GET, POST"
    unknown = api.client.get("/open311/v2/tokens/abc.json")
    assert unknown.status_code == 404 and unknown.json() == [
        {"code": "unknown_resource", "description": "没有这个 Open311 资源（格式须为 .json 或 .xml）"}
    ]
    assert api.client.get("/v1/nothing-here").json()["error"]["code"] == "not_found"
