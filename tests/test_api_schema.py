"""schemathesis runs over /api/openapi.json against the app: no server error, no status code the document does not
list, and no response (body, content type, headers) that breaks its documented shape.

The app runs with the testing settings (rate limits off, so generated calls are not cut short) and the real
validation; calls carry the API token of a test user, and half the generated share ids are swapped for the id of
a real secret of that user, so the success paths run too, not only the 404s.
"""

import ast
import inspect
import json
import shlex
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

import api_schema
from app import ERROR_TEXT, create_app, db
from tests.helpers import AuthActions, FrozenClock, make_config
from tests.test_api import NEW_SECRET, bearer, issue_token

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
]

# schemathesis makes one test per operation when the test is collected, so the app exists before the fixtures
# (its lazy fixture loader does not run under pytest 9); its files live in a folder the module fixture removes.
RUN_DIR = Path(tempfile.mkdtemp(prefix="secureshare-schema-"))
app = create_app(make_config(RUN_DIR, FrozenClock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))))
with app.app_context():
    db.create_all()
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)


@pytest.fixture(scope="module")
def api_world():
    """A user with an API token and one active secret; the folder goes when the module is done."""
    client = app.test_client()
    assert AuthActions(client).register().status_code == 302
    token = issue_token(client)
    created = app.test_client().post("/api/secrets", json=NEW_SECRET, headers=bearer(token))
    yield {"token": token, "secret_id": created.json["secret"]["id"]}
    with app.app_context():
        db.engine.dispose()
    shutil.rmtree(RUN_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_matches_its_document(case, api_world):
    share_id = (case.path_parameters or {}).get("unique_id")
    if share_id and ord(share_id[0]) % 2:
        case.path_parameters["unique_id"] = api_world["secret_id"]
    case.call_and_validate(headers=bearer(api_world["token"]), checks=CHECKS)


# The same document, with data it forbids (wrong types, out-of-range values, missing or unknown fields): refused.
# Routes that take no input at all have nothing to make invalid (schemathesis would skip them), so they are left out.
negative_schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app).exclude(
    path=["/api/openapi.json", "/api/docs", "/api/auth/check"]
)
negative_schema.config.generation.update(modes=[GenerationMode.NEGATIVE])


@negative_schema.parametrize()
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_refuses_what_its_document_forbids(case, api_world):
    case.call_and_validate(headers=bearer(api_world["token"]), checks=[not_a_server_error, negative_data_rejection])


# --- the document itself: valid, with examples its own schemas accept, and each refusal where it can happen -----------

ROOT = Path(__file__).resolve().parent.parent
APP_MODULES = ("app.py", "api_schema.py", "guards.py", "signin.py")
# Raised by the framework, never by an abort() of ours: routing's 405 and Flask-Limiter's 429 (answered by ERROR_REASONS).
FRAMEWORK_STATUSES = {405, 429}


def _document() -> dict:
    return app.test_client().get("/api/openapi.json").json


def _operations(document: dict):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def _resolved(document: dict, response: dict) -> dict:
    return document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]] if "$ref" in response else response


def _listed_reasons(document: dict, operation: dict) -> dict[str, int]:
    """The reasons a call's document lists, each with the status it is listed under."""
    listed = {}
    for status, response in operation["responses"].items():
        schema = _resolved(document, response).get("content", {}).get("application/json", {}).get("schema", {})
        for reason in schema["allOf"][1]["properties"]["error"]["properties"]["reason"]["enum"] if "allOf" in schema else []:
            listed[reason] = int(status)
    return listed


def _int_constants(node) -> set[int]:
    return {child.value for child in ast.walk(node) if isinstance(child, ast.Constant) and type(child.value) is int}


def _given_reasons(tree) -> dict[str, set[int]]:
    """The reasons code gives, with their statuses: ApiError(status, "reason"), Refusal(status, "reason"), a reason=
    keyword, and the reason ERROR_REASONS gives a bare abort(status) or _error_response(status)."""
    given: dict[str, set[int]] = {}
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        name = getattr(call.func, "id", getattr(call.func, "attr", ""))
        if name in {"ApiError", "Refusal"} and len(call.args) > 1 and isinstance(call.args[1], ast.Constant):
            given.setdefault(call.args[1].value, set()).update(_int_constants(call.args[0]))
        keyword = next((k.value for k in call.keywords if k.arg == "reason" and isinstance(k.value, ast.Constant)), None)
        if name == "_error_response" and keyword is not None:
            given.setdefault(keyword.value, set()).update(_int_constants(call.args[0]))
        elif name in {"abort", "_error_response"} and call.args:
            for status in _int_constants(call.args[0]) & set(api_schema.ERROR_REASONS):
                given.setdefault(api_schema.ERROR_REASONS[status], set()).add(status)
    return given


def _reasons_the_code_gives() -> dict[str, set[int]]:
    given = {api_schema.ERROR_REASONS[status]: {status} for status in FRAMEWORK_STATUSES}
    for module in APP_MODULES:
        for reason, statuses in _given_reasons(ast.parse((ROOT / module).read_text())).items():
            given.setdefault(reason, set()).update(statuses)
    return given


def test_the_document_is_valid_openapi_3_1():
    OPENAPI_31_VALIDATOR.validate(_document())


def test_every_call_has_an_example_its_own_schema_accepts():
    for call, operation in _operations(_document()):
        assert operation["x-codeSamples"][0]["source"].startswith("curl "), call
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            jsonschema_rs.validator_for(body["schema"]).validate(body["example"])
            words = shlex.split(operation["x-codeSamples"][0]["source"])
            assert json.loads(words[words.index("-d") + 1]) == body["example"], call
        examples = [parameter for parameter in operation["parameters"] if "example" in parameter]
        for parameter in examples:
            jsonschema_rs.validator_for(parameter["schema"]).validate(parameter["example"])
        queried = any(parameter["in"] == "query" for parameter in operation["parameters"])
        assert not queried or any(parameter["in"] == "query" for parameter in examples), f"{call}: no query example"


def test_the_examples_work_when_sent_in_order(api_world):
    """Sent for real, in the document's order, each body example is taken: create, change, then open its secret."""
    client, made = app.test_client(), None
    for call, operation in _operations(_document()):
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            method, path = call.split(" ")
            address = path.replace("{unique_id}", made or "")
            answer = client.open(address, method=method, json=body["example"], headers=bearer(api_world["token"]))
            assert answer.status_code in {200, 201}, (call, answer.json)
            made = made or answer.json["secret"]["id"]
    assert made is not None


def test_the_common_answers_are_defined_once_and_referred_to():
    document = _document()
    common = api_schema.reasons_by_status(api_schema.COMMON_REASONS)
    for call, operation in _operations(document):
        listed = _listed_reasons(document, operation)
        assert set(api_schema.COMMON_REASONS) <= set(listed), call
        for status, reasons in common.items():
            response = operation["responses"][str(status)]
            own = {reason for reason, at in listed.items() if at == status} - set(reasons)
            assert ("$ref" in response) == (not own), (call, status)


def test_each_listed_reason_is_one_the_code_gives_with_that_status():
    document, given = _document(), _reasons_the_code_gives()
    assert set(given) == set(api_schema.REASONS)
    for reason, entry in api_schema.REASONS.items():
        assert given[reason] == {entry.status}, reason
    for call, operation in _operations(document):
        for reason, status in _listed_reasons(document, operation).items():
            assert status in given[reason], (call, reason)


def test_each_call_lists_the_reasons_its_own_code_gives():
    document = _document()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if not hasattr(view, "openapi"):
            continue
        own_code = ast.parse(inspect.getsource(inspect.unwrap(view)).strip())
        path = rule.rule.replace("<secret_id:unique_id>", "{unique_id}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            listed = _listed_reasons(document, document["paths"][path][method.lower()])
            assert set(_given_reasons(own_code)) <= set(listed), (method, path)


def test_the_reference_is_english_in_a_frame_in_the_readers_language():
    page = app.test_client().get("/api/docs", headers={"Accept-Language": "de"})
    assert '<html lang="de"' in page.text
    assert page.text.count('<div lang="en">') == 1
    assert "Diese API-Referenz ist auf Englisch" in page.text.split('<div lang="en">')[0]
    assert "<caption>JSON body</caption>" in page.text and "Titel" not in page.text  # the form labels it quotes too
    assert "Sprache" in page.text  # the language menu
    assert page.text.count("Answers every call can give</h2>") == 1
    for reason in api_schema.COMMON_REASONS:
        assert page.text.count(f"<code>{reason}</code>") == 1, reason


def test_an_error_from_the_reference_is_english_like_every_api_answer():
    refused = app.test_client().get("/api/docs?x=%ff", headers={"Accept-Language": "de"})  # not UTF-8: a 400
    assert (refused.status_code, refused.json["error"]["message"]) == (400, str(ERROR_TEXT[400][1]))


def test_the_foot_menus_work_on_the_reference():
    # The page is under /api/, whose JSON answers take no pick: a pick there was refused with a JSON 422.
    for query in ("lang=fr", "theme=dark"):
        picked = app.test_client().get(f"/api/docs?{query}")
        assert (picked.status_code, picked.headers["Location"]) == (303, "/api/docs"), query
        assert picked.headers["Set-Cookie"].startswith(query + ";")


def test_a_pick_off_the_menus_on_the_reference_is_refused_in_english_like_every_api_answer():
    client = app.test_client()
    client.set_cookie("lang", "de")
    for query, words in (("theme=pink", "That theme isn't available"), ("lang=xx", "That language isn't available")):
        refused = client.get(f"/api/docs?{query}")
        assert refused.status_code == 400 and refused.json["error"]["message"].startswith(words), query
    assert "Dieses Design gibt es hier nicht." in client.get("/?theme=pink").text  # a page says it in its language
