"""``GET /openapi.json`` describes exactly the Binance surface the server serves (no drift)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis

from adapters.sim.engine.gateway import ENDPOINTS
from adapters.sim.server import ROUTES
from adapters.sim.server.openapi import describe, error_codes, served
from adapters.sim.server.surface import OPERATIONS, Kind
from tests.fuzz.kit import FuzzServer, RawClient, Request


@pytest.fixture(scope="module")
def published(fuzz_server: FuzzServer) -> tuple[dict[str, Any], dict[str, str]]:
    client = RawClient(fuzz_server.host, fuzz_server.port)
    try:
        reply = client.send(Request("GET", "/openapi.json"))
    finally:
        client.close()
    assert reply.status == 200, reply
    doc: dict[str, Any] = reply.json
    return doc, reply.headers


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


def test_every_served_fapi_and_sim_route_is_described_and_nothing_else(
    published: tuple[dict[str, Any], dict[str, str]],
) -> None:
    doc, _ = published
    routes = served((r.method, r.path) for r in ROUTES)
    assert routes, "the route table has no /fapi or /sim route"
    assert _operations(doc) == set(routes)
    assert set(OPERATIONS) == set(routes), "surface.OPERATIONS and the route table differ"
    assert set(ENDPOINTS) == set(routes), "the gateway's ENDPOINTS and the route table differ"
    assert not any(p.startswith(("/control", "/ws", "/stream", "/openapi")) for p in doc["paths"])


def test_a_served_route_missing_from_the_table_cannot_be_described() -> None:
    with pytest.raises(KeyError, match=r"add it to surface\.OPERATIONS"):
        describe([*((r.method, r.path) for r in ROUTES), ("GET", "/fapi/v1/new")], symbols=["X"])


def test_security_is_the_gateways(published: tuple[dict[str, Any], dict[str, str]]) -> None:
    doc, _ = published
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "X-MBX-APIKEY"}
    assert (schemes["Signature"]["in"], schemes["Signature"]["name"]) == ("query", "signature")
    for (method, path), endpoint in ENDPOINTS.items():
        op = doc["paths"][path][method.lower()]
        names = {p["name"] for p in op["parameters"]}
        if endpoint.signed:
            assert op["security"] == [{"ApiKeyAuth": [], "Signature": []}], path
            assert {"timestamp", "recvWindow"} <= names, path
            assert {-1022, -1021, -1102} <= set(error_codes(method, path)[400]), path
            assert error_codes(method, path)[401] == (-2014, -2015), path
        elif OPERATIONS[(method, path)].api_key:
            assert op["security"] == [{"ApiKeyAuth": []}], path
            assert "timestamp" not in names, path
        else:
            assert op["security"] == [], path
            assert 401 not in error_codes(method, path), path
        if isinstance(endpoint.weight, int):
            assert op["x-weight"] == endpoint.weight, path


def test_parameters_carry_their_types_and_values(
    published: tuple[dict[str, Any], dict[str, str]], fuzz_server: FuzzServer
) -> None:
    doc, _ = published
    symbols = sorted(fuzz_server.handle.engine.instruments)
    for (method, path), op in OPERATIONS.items():
        described = {p["name"]: p for p in doc["paths"][path][method.lower()]["parameters"]}
        for p in op.params:
            schema = described[p.name]["schema"]
            assert described[p.name]["required"] is p.required, (path, p.name)
            if p.kind is Kind.SYMBOL:
                assert sorted(schema["enum"]) == symbols
            elif p.kind is Kind.ENUM:
                assert schema["enum"] == list(p.values)
            elif p.kind is Kind.INTEGER:
                assert schema["type"] == "integer"
                assert schema.get("minimum") == p.minimum
                assert schema.get("maximum") == p.maximum
            elif p.kind is Kind.DECIMAL:
                assert schema["pattern"] == r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
        codes = error_codes(method, path)
        assert {-1100, -1101} <= set(codes[400]), path
        assert codes[413] == (-1101,)
        for status, listed in codes.items():
            response = doc["paths"][path][method.lower()]["responses"][str(status)]
            enum = response["content"]["application/json"]["schema"]["allOf"][1]
            assert enum["properties"]["code"]["enum"] == list(listed)


def test_the_description_is_public_uncharged_and_loads_in_schemathesis(
    published: tuple[dict[str, Any], dict[str, str]], fuzz_server: FuzzServer
) -> None:
    doc, headers = published
    assert "X-MBX-USED-WEIGHT-1M" not in headers  # not a venue request: weight 0
    assert doc["openapi"].startswith("3.0")
    assert doc["servers"] == [{"url": fuzz_server.handle.base_url}]
    schema = schemathesis.openapi.from_dict(doc)
    assert len(list(schema.get_all_operations())) == len(OPERATIONS)
