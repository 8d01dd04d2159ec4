"""schemathesis runs over /api/openapi.json against the app: no server error, no status code the document does not
list, and no response (body, content type, headers) that breaks its documented shape.

The app runs with the testing settings (rate limits off, so generated calls are not cut short) and the real
validation; calls carry the API token of a test user, and half the generated share ids are swapped for the id of
a real secret of that user, so the success paths run too, not only the 404s.
"""

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

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

from app import create_app, db
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
