"""``GET /openapi.json`` is a valid OpenAPI 3.1 document, and it is kept true by this test.

- it validates against the OpenAPI 3.1 schema (the one the specification publishes, as
  schemathesis ships it), its structure is checked by hand (operations, responses, media types)
  and every schema in it is checked against JSON Schema 2020-12 (the dialect of OpenAPI 3.1);
- its components are the models the handlers return (api_models.py), so the names in them are
  the python client's, not copies;
- the routes it documents are exactly the routes of docs/http-api.md and exactly the routes the
  app registers (``app.router``), so nothing is served undocumented and nothing documented is
  missing;
- every documented route is driven live on the real server and each real response (successes
  and the documented errors) validates against the schema the document gives for it.

Needs ``jsonschema`` (dev extra).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from schemathesis.specs.openapi.definitions import OPENAPI_31

from bevsession.local_postgres import LocalPostgres
from bevsession.models import SCORE_NAMES, VECTOR_NAMES
from bevsession_edge.openapi import REQUESTS, RESPONSES
from e2e_server import (
    PASSWORD,
    Reply,
    RunningServer,
    StartServer,
    Visitor,
    access_token,
    linking_env,
    server_pool,
)

ROOT = Path(__file__).resolve().parent.parent
HTTP_API_DOC = ROOT / "docs" / "http-api.md"
DOC_URI = "urn:bevsession:openapi"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def documented_in_markdown() -> set[tuple[str, str]]:
    """(METHOD, path) of every row of the routes table in docs/http-api.md."""
    found = set(
        re.findall(r"^\| `(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`", HTTP_API_DOC.read_text(), re.M)
    )
    assert len(found) >= 9, f"could not read the routes table of {HTTP_API_DOC}: {found}"
    return found


@pytest.fixture(scope="module")
async def module_server(
    pg: LocalPostgres, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningServer]:
    """This module's server links sessions, so every documented route can answer 2xx."""
    async with server_pool(pg, template_db, tmp_path_factory.mktemp("server-logs")) as start:
        yield await start(env=linking_env())


@pytest.fixture(scope="module")
async def document(module_server: RunningServer) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(module_server.url("/openapi.json")) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json")
        doc: dict[str, Any] = await resp.json()
        return doc


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


def pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Checker:
    """Validates instances against schemas inside the document, ``$ref``s resolved."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry: Registry = Registry().with_resource(DOC_URI, resource)

    def response(self, method: str, path: str, status: int) -> tuple[str, dict[str, Any]]:
        """(response key, response object) the document gives for this status."""
        op = self.doc["paths"][path][method.lower()]
        responses = op["responses"]
        for key in (str(status), f"{status // 100}XX", "default"):
            if key in responses:
                found = responses[key]
                if "$ref" in found:
                    found = self.resolve(found["$ref"])
                return key, found
        raise AssertionError(
            f"{method} {path} answered {status}, which the document does not describe "
            f"(it has {sorted(responses)})"
        )

    def resolve(self, ref: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.registry.resolver(DOC_URI).lookup(ref).contents
        return resolved

    def validate(self, schema_pointer: str, instance: Any) -> None:
        validator = Draft202012Validator({"$ref": DOC_URI + schema_pointer}, registry=self.registry)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, (
            "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
            + f"\n(schema {schema_pointer})"
        )

    def check_reply(self, method: str, path: str, reply: Reply) -> None:
        """The live reply is described by the document: status, media type and body schema."""
        key, response = self.response(method, path, reply.status)
        content = response.get("content", {})
        media = reply.headers.get("Content-Type", "").split(";")[0].strip()
        assert media in content, (
            f"{method} {path} {reply.status} answered {media!r}; documented: {sorted(content)}"
        )
        if media == "application/json":
            assert "schema" in content[media], f"{method} {path} {key}: no schema"
            self.validate(
                pointer(
                    "paths", path, method.lower(), "responses", key, "content", media, "schema"
                ),
                reply.json,
            )

    def is_valid(self, schema_pointer: str, instance: Any) -> bool:
        validator = Draft202012Validator({"$ref": DOC_URI + schema_pointer}, registry=self.registry)
        return validator.is_valid(instance)


@pytest.fixture(scope="module")
def checker(document: dict[str, Any]) -> Checker:
    return Checker(document)


# --- the document itself -----------------------------------------------------------------------
def test_it_is_an_openapi_3_1_document(document: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", document.get("openapi", "")), document.get("openapi")
    info = document.get("info")
    assert isinstance(info, dict) and info.get("title") and info.get("version"), info
    assert isinstance(document.get("paths"), dict) and document["paths"]
    allowed_top = {
        "openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks", "components",
        "security", "tags", "externalDocs",
    }  # fmt: skip
    extra = {k for k in document if k not in allowed_top and not k.startswith("x-")}
    assert not extra, f"unknown top-level keys: {extra}"
    for path, item in document["paths"].items():
        assert path.startswith("/"), path
        for method, op in item.items():
            if method not in METHODS:
                continue
            assert isinstance(op.get("responses"), dict) and op["responses"], (method, path)
            for status, response in op["responses"].items():
                assert re.fullmatch(r"[1-5](\d\d|XX)|default", status), (method, path, status)
                if "$ref" not in response:
                    assert "description" in response, f"{method} {path} {status}: description"
    ids = [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in METHODS and "operationId" in op
    ]
    assert len(ids) == len(set(ids)), f"duplicate operationIds: {ids}"


def test_it_validates_against_the_openapi_3_1_schema(document: dict[str, Any]) -> None:
    assert OPENAPI_31["$id"].startswith("https://spec.openapis.org/oas/3.1/")
    errors = sorted(Draft202012Validator(OPENAPI_31).iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def test_the_components_are_the_models_of_the_bodies(document: dict[str, Any]) -> None:
    """Every request and response model is a component, and every body an operation sends or
    takes names one of them (a hand-written body schema would be a second definition)."""
    schemas = document["components"]["schemas"]
    assert {model.__name__ for model in (*REQUESTS, *RESPONSES)} <= set(schemas)
    prefix = "#/components/schemas/"
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            bodies = [op.get("requestBody", {}), *op["responses"].values()]
            for body in bodies:
                schema = body.get("content", {}).get("application/json", {}).get("schema")
                if schema is None or path == "/openapi.json":
                    continue
                assert schema.get("$ref", "").removeprefix(prefix) in schemas, (method, path)


def test_the_persona_names_are_the_python_clients(document: dict[str, Any]) -> None:
    """Scores and vectors as bevsession.models names them; histories and questions, which stay
    in the database, are not part of the API."""
    persona = document["components"]["schemas"]["Persona"]
    assert set(SCORE_NAMES) <= set(persona["required"])
    vectors = document["components"]["schemas"]["PersonaVectors"]["properties"]
    expected = {"vectors_updated_at"} | {
        f"{v}{s}" for v in VECTOR_NAMES for s in ("", "_confidence")
    }
    assert set(vectors) == expected
    assert "questions_asked" not in persona["properties"]


def test_every_schema_is_valid_json_schema_2020_12(document: dict[str, Any]) -> None:
    schemas: list[tuple[str, Any]] = list(document.get("components", {}).get("schemas", {}).items())
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for status, response in op["responses"].items():
                for media, content in response.get("content", {}).items():
                    if "schema" in content:
                        schemas.append((f"{method} {path} {status} {media}", content["schema"]))
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                schemas.append((f"{method} {path} request {media}", content["schema"]))
            for param in op.get("parameters", []):
                if "schema" in param:
                    schemas.append((f"{method} {path} ?{param.get('name')}", param["schema"]))
    assert schemas
    for name, schema in schemas:
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            pytest.fail(f"{name}: not a valid 2020-12 schema: {exc.message}")
        assert "nullable" not in str(schema), (
            f"{name}: 'nullable' is OpenAPI 3.0; 3.1 uses type lists"
        )


def test_refs_all_resolve(checker: Checker, document: dict[str, Any]) -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    for ref in refs:
        assert ref.startswith("#/"), f"external $ref {ref!r}: the document must stand alone"
        checker.resolve(ref)


def test_it_documents_exactly_the_routes_of_the_http_api_doc(document: dict[str, Any]) -> None:
    assert operations(document) == documented_in_markdown()


def test_every_registered_route_is_documented_and_every_documented_one_exists(
    document: dict[str, Any],
    module_server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiohttp import web

    from bevsession_edge.app import create_app
    from bevsession_edge.config import load_settings

    for key in ("SESSION_PASSWORDS", "SUPABASE_URL", "BEVSESSION_TRANSPORT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DATABASE_URL", module_server.env["DATABASE_URL"])
    monkeypatch.setenv("SESSION_PASSWORD", PASSWORD)
    monkeypatch.setenv("BEVSESSION_ENV", "development")
    app = create_app(load_settings())  # built only, never started: no I/O

    registered: set[tuple[str, str]] = set()

    def collect(application: web.Application, prefix: str) -> None:
        for resource in application.router.resources():
            sub = getattr(resource, "_app", None)
            if isinstance(sub, web.Application):
                collect(sub, prefix + resource.canonical)
                continue
            for route in resource:
                if route.method in {"HEAD", "OPTIONS"}:
                    continue
                assert route.method != "*", f"{resource.canonical} accepts any method"
                registered.add((route.method, prefix + resource.canonical))

    collect(app, "")
    undocumented = registered - operations(document)
    assert not undocumented, (
        f"routes the app serves but /openapi.json does not document: {undocumented}"
    )
    missing = operations(document) - registered
    assert not missing, f"documented routes the app does not register: {missing}"


def test_the_chat_request_body_is_documented_as_the_server_enforces_it(
    document: dict[str, Any], checker: Checker
) -> None:
    body = document["paths"]["/api/chat"]["post"]["requestBody"]
    assert body.get("required") is True
    assert "application/json" in body["content"]
    where = pointer(
        "paths", "/api/chat", "post", "requestBody", "content", "application/json", "schema"
    )
    assert checker.is_valid(where, {"message": "hi"})
    assert checker.is_valid(where, {"message": "x" * 4000})
    for bad in ({}, {"message": ""}, {"message": "x" * 4001}, {"message": 5},
                {"message": "hi", "extra": 1}, [], "hi"):  # fmt: skip
        assert not checker.is_valid(where, bad), f"the documented body schema accepts {bad!r}"


def test_the_history_query_parameters_are_documented(document: dict[str, Any]) -> None:
    params = {
        p["name"]: p for p in document["paths"]["/api/chat/history"]["get"].get("parameters", [])
    }
    assert {"limit", "before"} <= set(params), params
    limit = params["limit"]
    assert limit["in"] == "query" and params["before"]["in"] == "query"
    assert limit["schema"].get("minimum") == 1 and limit["schema"].get("maximum") == 100, limit
    assert limit["schema"].get("default") == 20, limit


def test_errors_and_unavailability_are_documented(
    document: dict[str, Any], checker: Checker
) -> None:
    chat = document["paths"]["/api/chat"]["post"]["responses"]
    for status in ("400", "413", "415", "503"):
        assert status in chat, f"POST /api/chat does not document {status}"
    assert "503" in document["paths"]["/readyz"]["get"]["responses"]
    _, unavailable = checker.response("POST", "/api/chat", 503)
    assert "Retry-After" in unavailable.get("headers", {}), "the 503 must document Retry-After"
    page = document["paths"]["/"]["get"]["responses"]["200"]
    assert "text/html" in page.get("content", {}), "GET / is documented as HTML"


async def test_a_server_that_cannot_link_answers_as_documented(
    checker: Checker, http: aiohttp.ClientSession, server_factory: StartServer
) -> None:
    """Without SUPABASE_URL, SUPABASE_JWKS or SUPABASE_JWT_SECRET: 501, as documented."""
    server = await server_factory()
    reply = await Visitor(http, server).request(
        "POST", "/api/session/link", headers={"Authorization": f"Bearer {access_token('x')}"}
    )
    assert reply.status == 501, reply
    assert reply.json["error"]["code"] == "linking_not_configured"
    checker.check_reply("POST", "/api/session/link", reply)


# --- live: every documented route, real responses against the document ---------------------------
async def test_every_documented_route_answers_as_documented(
    checker: Checker,
    document: dict[str, Any],
    http: aiohttp.ClientSession,
    module_server: RunningServer,
) -> None:
    driven: set[tuple[str, str]] = set()

    async def call(
        visitor: Visitor, method: str, path: str, *, query: str = "", **kw: Any
    ) -> Reply:
        reply = await visitor.request(method, path + query, **kw)
        assert reply.status < 500, reply
        checker.check_reply(method, path, reply)
        driven.add((method, path))
        return reply

    v = Visitor(http, module_server)
    assert (await call(v, "GET", "/api/session")).status == 200
    chat = await call(
        v, "POST", "/api/chat", json_body={"message": "I run sales at a craft brewery"}
    )
    assert chat.status == 200
    await call(v, "POST", "/api/chat", json_body={"message": "we need to prove ROI"})
    assert (await call(v, "GET", "/api/chat/history")).status == 200
    paged = await call(v, "GET", "/api/chat/history", query="?limit=1")
    assert paged.json["next"] is not None
    older = await call(v, "GET", "/api/chat/history", query=f"?limit=2&before={paged.json['next']}")
    assert older.status == 200
    assert (await call(v, "GET", "/api/session")).status == 200  # returning visitor
    assert (await call(v, "DELETE", "/api/session/data")).status == 200

    w = Visitor(http, module_server)
    await call(w, "POST", "/api/chat", json_body={"message": "hello"})
    assert (await call(w, "DELETE", "/api/session")).status == 200

    # a visitor who signs in; then another account, then no or a bad token
    s = Visitor(http, module_server)
    await call(s, "POST", "/api/chat", json_body={"message": "I run sales at a brewery"})
    user = uuid.uuid4()
    bearer = {"Authorization": f"Bearer {access_token(user)}"}
    linked = await call(s, "POST", "/api/session/link", headers=bearer)
    assert linked.status == 200 and linked.json["userId"] == str(user)
    summary = await call(s, "GET", "/api/session")
    assert summary.json["userId"] == str(user)
    other = {"Authorization": f"Bearer {access_token(uuid.uuid4())}"}
    assert (await call(s, "POST", "/api/session/link", headers=other)).status == 401
    assert (await call(s, "POST", "/api/session/link")).status == 401
    expired = access_token(user, exp=int(time.time()) - 3600)
    refused = await call(
        s, "POST", "/api/session/link", headers={"Authorization": f"Bearer {expired}"}
    )
    assert refused.status == 401 and "WWW-Authenticate" in refused.headers

    for path in ("/healthz", "/readyz", "/", "/openapi.json", "/metrics"):  # (a loopback peer)
        assert (await call(Visitor(http, module_server), "GET", path)).status == 200

    # the documented errors, as really sent
    e = Visitor(http, module_server)
    json_ct = {"Content-Type": "application/json"}
    assert (await call(e, "POST", "/api/chat", data="{nope", headers=json_ct)).status == 400
    assert (await call(e, "POST", "/api/chat", json_body={"message": ""})).status == 400
    assert (await call(e, "POST", "/api/chat", json_body={"message": "x", "y": 1})).status == 400
    assert (
        await call(e, "POST", "/api/chat", data=b"hi", headers={"Content-Type": "text/plain"})
    ).status == 415
    big = b'{"message": "' + b"x" * (1024 * 1024) + b'"}'
    assert (await call(e, "POST", "/api/chat", data=big, headers=json_ct)).status == 413
    assert (await call(e, "GET", "/api/chat/history", query="?limit=0")).status == 400

    assert driven == operations(document), f"not driven: {operations(document) - driven}"

    # 404 and 405 belong to no operation; they must still have the documented error shape
    _, bad_request = checker.response("POST", "/api/chat", 400)
    error_schema = pointer("paths", "/api/chat", "post", "responses", "400", "content",
                           "application/json", "schema")  # fmt: skip
    assert "application/json" in bad_request["content"]
    for method, path, status in (("GET", "/nowhere", 404), ("PUT", "/api/session", 405)):
        reply = await e.request(method, path)
        assert reply.status == status, reply
        checker.validate(error_schema, reply.json)
