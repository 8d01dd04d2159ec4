"""The JSON API's contract: strict JSON input, request schemas built from the page forms, the response shapes, and
the OpenAPI document. Each shape is defined once, here, and used both to build the answers and to publish them."""

import json
import re
import shlex
from dataclasses import dataclass
from functools import wraps
from http import HTTPStatus
from urllib.parse import urlencode

from flask import current_app, g, jsonify, request
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import IntegerField, SelectField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from forms import ApiCreateSecretForm, ApiEditSecretForm, SecretSettingsForm, UnlockForm
from schema import SHARE_ID_PATTERN, AccessOutcome, SecretStatus

# JSON bodies: brackets are counted before parsing, so a deeply nested body is a 400, never a recursion error.
MAX_JSON_DEPTH = 8
JSON_PART = "secret"  # the multipart create's part that holds the JSON fields; its files are parts named "files"
JSON_TOKEN_RE = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')
JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "null": type(None)}
TYPE_WORDS = {"string": "a string", "integer": "a whole number", "boolean": "true or false", "null": "null"}
MAX_PAGE = 100_000
EXAMPLE_SHARE_ID = "example-share-id-4fK9qZ2x"  # fake, but of the real pattern, so the examples validate
RETRY_AFTER_STATUSES = {429, 503}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}
MAX_PER_PAGE = 100
# The reason a bare abort(status) answers with; every other reason is raised by name (ApiError, Refusal).
ERROR_REASONS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    410: "gone", 411: "length_required", 413: "too_large", 415: "unsupported_media_type", 422: "unknown_fields",
    429: "rate_limited", 500: "server_error", 503: "busy",
}  # fmt: skip


@dataclass(frozen=True)
class Reason:
    """One of the API's refusals: its HTTP status, and what it means for the reference."""

    status: int
    meaning: str


# Every `reason` a call can answer with: the error schema's enum, the common answers and each call's own list.
REASONS = {
    "bad_request": Reason(400, "The query string is not clean UTF-8, or a session call other than GET lacks X-CSRFToken."),
    "token_in_query": Reason(400, "A token in the URL (token, access_token, api_key): send it in the Authorization header."),
    "invalid_json": Reason(400, "The body is not a JSON object in UTF-8, or it nests deeper than 8 levels."),
    "invalid_fields": Reason(400, "Values that need fixing: error.fields says what, per name."),
    "unauthorized": Reason(401, "No valid token or session."),
    "wrong_password": Reason(403, "Not the right password: error.tries_left says how many tries are left."),
    "email_unverified": Reason(403, "This SecureShare asks accounts to confirm their email address before they create secrets."),
    "two_factor_required": Reason(403, "This SecureShare requires two-factor sign-in (REQUIRE_TWO_FACTOR)."),
    "too_many_secrets": Reason(403, "The account has as many active secrets as ACTIVE_SECRETS_PER_USER allows."),
    "not_found": Reason(404, "No such secret, or not yours."),
    "method_not_allowed": Reason(405, "The address does not take this method."),
    "files_tampered": Reason(409, "The attached files were changed on the server and could not be opened."),
    "gone": Reason(410, "It expired, was used up or deleted."),
    "destroyed": Reason(410, "Too many wrong passwords destroyed it."),
    "length_required": Reason(411, "A multipart body must say its Content-Length."),
    "too_large": Reason(413, "The body, a file or the query is over its limit."),
    "storage_full": Reason(413, "The files would take the account past FILE_STORAGE_PER_USER."),
    "unsupported_media_type": Reason(415, "The body must be application/json (the create also takes multipart/form-data)."),
    "unknown_fields": Reason(422, "Names this call does not accept, in the query or the body: listed in error.fields."),
    "rate_limited": Reason(429, "Too many calls: wait for Retry-After seconds."),
    "attempts_in_flight": Reason(429, "Other tries on this secret are still running: try again shortly."),
    "server_error": Reason(500, "A fault on the server (it is logged); try again later."),
    "busy": Reason(503, "Too many passwords are being checked at once: wait for Retry-After seconds."),
    "unavailable": Reason(503, "The rate-limit store is down: wait for Retry-After seconds."),
}
# What any call can meet: the checks of every request (its query, its size), the API's rate limit, and faults.
COMMON_REASONS = ("bad_request", "token_in_query", "too_large", "unknown_fields", "rate_limited", "server_error", "unavailable")
# Refusals a body brings: it must be JSON of the call's schema (unknown names are common: the query has them too).
BODY_REASONS = ("invalid_json", "invalid_fields", "unsupported_media_type")


class ApiError(Exception):
    """A refused API request, answered as the error envelope: status, a stable `reason`, words, and details."""

    def __init__(self, status: int, reason: str, message: str, headers: dict | None = None, **details):
        super().__init__(message)
        self.status, self.reason, self.message, self.headers, self.details = status, reason, message, headers or {}, details


def api_error_response(error: ApiError):
    details = {"code": error.status, "reason": error.reason, "message": str(error.message), **error.details}
    response = jsonify(success=False, error=details)
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


# --- strict JSON input ------------------------------------------------------------------------------------------------


def text_is_clean(value: str) -> bool:
    """Tell whether a text has no NUL byte and no lone surrogate (it encodes as UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def _json_nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Tell whether the brackets of a JSON text nest deeper than `limit` (strings are skipped whole; no recursion)."""
    depth = 0
    for token in JSON_TOKEN_RE.finditer(raw):
        if token.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token.group() in (b"]", b"}"):
            depth -= 1
    return False


def _refuse_json_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def json_body() -> dict:
    """Return the request's JSON object.

    :raise ApiError: 415 unless the body is declared application/json; 400 when it is not a JSON object in UTF-8,
        nests deeper than MAX_JSON_DEPTH, or holds a NUL byte or a lone surrogate.
    """
    if request.mimetype == "multipart/form-data" and g.get("upload") is not None:
        raw = request.form.get(JSON_PART, "").encode("utf-8")  # a create with files: the JSON is one part of the form
    elif request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as JSON, with Content-Type: application/json.")
    else:
        raw = request.get_data(cache=True)
    if _json_nests_deeper_than(raw, MAX_JSON_DEPTH):
        raise ApiError(400, "invalid_json", f"JSON may nest at most {MAX_JSON_DEPTH} levels deep.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_json_constant)
    except ValueError:  # also invalid UTF-8, and integers too long to convert
        body = None
    if not isinstance(body, dict) or not all(text_is_clean(value) for value in _json_strings(body)):
        raise ApiError(400, "invalid_json", "Send a JSON object in UTF-8.")
    return body


# --- request schemas, built from the page forms ------------------------------------------------------------------------


def blank_form(form_class: type[FlaskForm], formdata=None, **extra) -> FlaskForm:
    """Return a form for the API (no CSRF field), with the secret limits a secret form needs."""
    if issubclass(form_class, SecretSettingsForm):
        extra["limits"] = current_app.secret_limits
    return form_class(formdata=formdata, meta={"csrf": False}, **extra)


def _field_rule(field) -> dict:
    """Describe one WTForms field as JSON Schema: type, choices, range and length, taken from its validators."""
    rule = {"type": "integer" if isinstance(field, IntegerField) else "string", "description": str(field.label.text)}
    if isinstance(field, SelectField):
        rule["enum"] = [choice.value for choice in field.choices]
    for validator in field.validators:
        if isinstance(validator, NumberRange):
            rule.update({"minimum": validator.min, "maximum": validator.max})
        elif isinstance(validator, Length):
            rule["minLength"] = max(validator.min, 0)
            if validator.max != -1:
                rule["maxLength"] = validator.max
    if field.default is not None:
        rule["default"] = field.default
    return rule


def _form_schema(form_class: type[FlaskForm], only: tuple[str, ...], all_optional: bool = False, **extra: dict) -> dict:
    """Return the JSON Schema of a request that carries `only` these fields of `form_class`, plus `extra` ones.

    The form stays the one place where a field's rules live. A field the form requires is required here (unless
    `all_optional`, for a partial update, which has no defaults either); an optional one also accepts null.
    """
    form = blank_form(form_class)
    properties, required = {}, []
    for name in only:
        field = form[name]
        rule = _field_rule(field)
        if all_optional:
            rule.pop("default", None)
        if not any(isinstance(v, InputRequired | DataRequired) for v in field.validators):
            rule["type"] = [rule["type"], "null"]
            if "enum" in rule:
                rule["enum"].append(None)
        else:
            rule.pop("default", None)  # the page pre-fills it; a request must send it
            required += [] if all_optional else [name]
            if rule["type"] == "string":
                rule["minLength"] = max(rule.get("minLength", 0), 1)
        properties[name] = rule
    properties.update(extra)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _expires_in_rule() -> dict:
    settings = current_app.config
    return {
        "type": ["integer", "null"],
        "minimum": int(settings["SECRET_MIN_EXPIRY"].total_seconds()),
        "maximum": int(settings["SECRET_MAX_EXPIRY"].total_seconds()),
        "description": "Seconds until it expires: the simple way to set an expiry (instead of expiration).",
    }


def create_body() -> dict:
    """POST /api/secrets: the create form's names (confirm optional), plus expires_in."""
    fields = ("title", "content", "password", "confirm", "expiration", "custom_amount", "custom_unit", "blur_level", "max_views")
    schema = _form_schema(ApiCreateSecretForm, fields, expires_in=_expires_in_rule())
    # The form checks an amount against its unit; this bound only keeps it a number that can be multiplied safely.
    most = int(current_app.config["SECRET_MAX_EXPIRY"].total_seconds() // 60)
    schema["properties"]["custom_amount"].update(minimum=1, maximum=most)
    schema["properties"]["content"]["description"] += f" (up to {current_app.config['SECRET_MAX_CONTENT_BYTES']} bytes of UTF-8)"
    return schema


def edit_body() -> dict:
    """PATCH /api/secrets/<id>: any of the settings; max_views null means unlimited."""
    return _form_schema(ApiEditSecretForm, ("title", "blur_level", "max_views"), all_optional=True, expires_in=_expires_in_rule())


def unlock_body() -> dict:
    """POST /api/secrets/<id>/unlock: the password the recipient was given."""
    return _form_schema(UnlockForm, ("password",))


def page_query(**extra: dict) -> dict:
    per_page = current_app.config["SECRETS_PER_PAGE"]
    properties = {
        "page": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1, "description": "Past the last page: empty."},
        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": per_page, "description": "Per page."},
        **extra,
    }
    return {"type": "object", "properties": properties, "required": [], "additionalProperties": False}


def list_query() -> dict:
    """GET /api/secrets: a page of the caller's secrets, optionally of one status."""
    statuses = [status.value for status in SecretStatus]
    return page_query(status={"type": "string", "enum": statuses, "description": "Only secrets in this state."})


def no_query() -> dict:
    return {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


def _rule_problem(value, rule: dict) -> str | None:
    """Return what is wrong with `value` under `rule` (type, enum, minimum/maximum, min/maxLength), or None."""
    types = rule["type"] if isinstance(rule["type"], list) else [rule["type"]]
    # Exact types: true is not 1, and 1.0 or "1" is not an integer.
    if not any(type(value) is JSON_TYPES[name] for name in types):
        return f"Must be {' or '.join(TYPE_WORDS[name] for name in types)}."
    if value is None:
        return None
    if "enum" in rule and value not in rule["enum"]:
        return "Must be one of: " + ", ".join(str(choice) for choice in rule["enum"] if choice is not None) + "."
    if isinstance(value, int) and not rule.get("minimum", value) <= value <= rule.get("maximum", value):
        return f"Must be from {rule.get('minimum', 'any')} to {rule.get('maximum', 'any')}."
    if isinstance(value, str) and not rule.get("minLength", 0) <= len(value) <= rule.get("maxLength", len(value)):
        return "Must not be empty." if not value else f"Use at most {rule['maxLength']} characters."
    return None


def _validated(values: dict, schema: dict, what: str) -> dict:
    """Check `values` against `schema` and return them.

    :raise ApiError: 422 naming the fields the schema does not declare; 400 naming each field that is missing or wrong.
    """
    unknown = sorted(name[:64] for name in set(values) - set(schema["properties"]))
    if unknown:
        fields = {name: ["This is not one of the accepted names."] for name in unknown}
        raise ApiError(422, "unknown_fields", f"Unknown {what}: {', '.join(unknown)}.", fields=fields)
    errors = {name: ["This field is required."] for name in schema["required"] if name not in values}
    for name, value in values.items():
        if problem := _rule_problem(value, schema["properties"][name]):
            errors[name] = [problem]
    if errors:
        raise ApiError(400, "invalid_fields", "Some fields need fixing.", fields=errors)
    return values


def _typed_query(schema: dict) -> dict:
    """Return the query string's values over the declared defaults, whole numbers as ints where the schema says integer."""
    values = {name: rule["default"] for name, rule in schema["properties"].items() if "default" in rule}
    for name, items in request.args.lists():
        rule = schema["properties"].get(name, {})
        value = items[-1]
        if rule.get("type") == "integer" and re.fullmatch(r"[0-9]{1,18}", value):
            value = int(value)
        values[name] = value
    return values


def _checked_by_api_auth() -> None:
    """The API's CSRF check: api_auth_required asks a cookie caller for the token; a bearer token is not ambient."""


def api_operation(
    summary: str,
    responses: dict[int, str],
    reasons: tuple[str, ...] = (),
    body=None,
    query=no_query,
    files: bool = False,
    example: dict | None = None,
):
    """Declare an API operation beside its route: its OpenAPI description, and the schemas its input must pass.

    `responses` names its success answers. `reasons` are the refusals its own code gives (ApiError, Refusal, abort);
    the document adds those of its input, its path, its sign-in and every call's (COMMON_REASONS). `body` and `query`
    are functions returning JSON Schema: the view gets the checked values as `body` / `query` arguments, and the
    OpenAPI document publishes the very same schemas, with `example` (the body's, else the query's) beside them.
    """

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            checked = _validated(_typed_query(query()), query(), "query parameters")
            if query is not no_query:
                kwargs["query"] = checked
            if body is not None:
                kwargs["body"] = _validated(json_body(), body(), "fields")
            return view(*args, **kwargs)

        wrapped.openapi = {
            "summary": summary, "responses": responses, "reasons": reasons, "body": body, "query": query,
            "files": files, "example": example or {},
        }  # fmt: skip
        wrapped.csrf_check = _checked_by_api_auth
        return wrapped

    return decorate


def api_form(form_class: type[FlaskForm], values: dict, **extra) -> FlaskForm:
    """Run checked JSON values through the page's form, so the API validates exactly as the pages do.

    :raise ApiError: 400 naming the fields the form refuses.
    """
    formdata = MultiDict({name: str(value) for name, value in values.items() if value is not None})
    form = blank_form(form_class, formdata, **extra)
    if not form.validate():
        fields = {name: [str(problem) for problem in problems] for name, problems in form.errors.items()}
        raise ApiError(400, "invalid_fields", "Some fields need fixing.", fields=fields)
    return form


# --- response shapes: one definition builds the answer and publishes it -------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A JSON object's fields and their JSON Schema; `build` refuses any other set of fields (a bug, never input)."""

    properties: dict

    def schema(self) -> dict:
        return {"type": "object", "properties": self.properties, "required": list(self.properties)}

    def build(self, **values) -> dict:
        if values.keys() != self.properties.keys():
            raise ValueError(f"the answer's fields {sorted(values)} are not its shape's {sorted(self.properties)}")
        return values


MOMENT = {"type": "string", "format": "date-time"}
NULLABLE_LINK = {"type": ["string", "null"], "format": "uri"}
SECRET = Shape(
    {
        "id": {
            "type": ["string", "null"],
            "pattern": f"^{SHARE_ID_PATTERN}$",
            "description": "The share id (part of the link); null when the server key that sealed it was removed.",
        },
        "title": {"type": "string"},
        "unavailable": {"type": ["string", "null"], "description": "Why the secret cannot be opened, or null."},
        "status": {"type": "string", "enum": [status.value for status in SecretStatus]},
        "created_at": MOMENT,
        "expires_at": MOMENT,
        "max_views": {"type": ["integer", "null"], "description": "null: unlimited until it expires."},
        "view_count": {"type": "integer"},
        "failed_attempts": {"type": "integer"},
        "blur_level": {"type": "integer"},
        "url": {**NULLABLE_LINK, "description": "The share link; null once the secret has ended."},
        "link": {**NULLABLE_LINK, "deprecated": True, "description": "The same as url."},
        "qr_png_url": {**NULLABLE_LINK, "description": "The QR code as PNG (sign-in needed); null once ended."},
        "qr_svg_url": {**NULLABLE_LINK, "description": "The QR code as SVG (sign-in needed); null once ended."},
        "file_count": {"type": "integer", "description": "Files attached (their names are shown only to the recipient)."},
        "file_bytes": {"type": "integer", "description": "Their total size in bytes."},
    }
)
EVENT = Shape(
    {
        "at": MOMENT,
        "outcome": {"type": "string", "enum": [outcome.value for outcome in AccessOutcome]},
        "user_agent": {"type": "string"},
        "ip_prefix": {"type": "string", "description": "The network (/24 or /48), never the full address."},
    }
)
UNLOCKED = Shape(
    {
        "title": {"type": "string"},
        "content": {"type": "string"},
        "view_count": {"type": "integer"},
        "max_views": {"type": ["integer", "null"]},
        "expires_at": MOMENT,
        "files": {
            "type": "array",
            "description": "Attached files, each with a download link that works for a few minutes, needs no "
            "password and spends no view.",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "size": {"type": "integer", "description": "bytes"},
                    "url": {"type": "string", "format": "uri"},
                },
                "required": ["name", "size", "url"],
            },
        },
    }
)
USER = Shape({"id": {"type": "integer"}, "username": {"type": "string"}, "email": {"type": "string"}})
# What webhooks carry about a secret: never its content, its share id or link, nor its password.
WEBHOOK_SECRET = Shape(
    {
        "number": {"type": "integer", "description": "The secret's number: /dashboard/<number> opens its page for you."},
        "title": {"type": ["string", "null"], "description": "Your title; null when the server key that sealed it was removed."},
        "status": SECRET.properties["status"],
        "view_count": {"type": "integer"},
        "max_views": {"type": ["integer", "null"]},
        "failed_attempts": {"type": "integer"},
        "expires_at": MOMENT,
    }
)
WEBHOOK_VISITOR = Shape(
    {
        "device": {"type": "string", "description": "A coarse device name, like Chrome on Android."},
        "network": {"type": "string", "description": "The network (/24 or /48), never the full address."},
    }
)
WEBHOOK_EVENTS = {
    "secret.opened": "One of your secrets was opened with its password (each time).",
    "secret.destroyed": "Wrong passwords destroyed one of your secrets.",
    "secret.expired_unopened": "One of your secrets expired before anyone opened it.",
    "ping": "A test, sent from the Webhooks page.",
}
WEBHOOK_HEADERS = {
    "X-SecureShare-Signature": 't=<unix time>,v1=<hex HMAC-SHA256 of "<t>." followed by the raw body, keyed with the '
    "endpoint's signing secret>. Refuse a call whose signature does not match, or whose t is more than 5 minutes old.",
    "X-SecureShare-Event": "The event's name, as in the body.",
    "X-SecureShare-Delivery": "The delivery's number, as in the body: a retry of the same delivery carries the same one.",
}
PAGE = Shape({name: {"type": "integer", "minimum": 0} for name in ("page", "per_page", "pages", "total")})


def page_json(page) -> dict:
    return PAGE.build(page=page.page, per_page=page.per_page, pages=page.pages, total=page.total)


# --- the OpenAPI document ----------------------------------------------------------------------------------------------


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _envelope(success: bool, **properties) -> dict:
    return {
        "type": "object",
        "properties": {"success": {"const": success}, **properties},
        "required": ["success", *properties],
    }


def _error_schema() -> dict:
    details = {
        "code": {"type": "integer", "description": "The HTTP status."},
        "reason": {
            "type": "string",
            "enum": list(REASONS),
            "description": "What went wrong, for scripts: each call lists those it can give.",
        },
        "message": {"type": "string", "description": "What went wrong, for people."},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Per field: what to fix (invalid_fields), or the names not accepted (unknown_fields).",
        },
        "tries_left": {"type": "integer", "minimum": 0, "description": "wrong_password: tries before the secret is destroyed."},
    }
    error = {"type": "object", "properties": details, "required": ["code", "reason", "message"]}
    return {**_envelope(False, error=error), "description": "Every refused call answers this, with the HTTP status as code."}


def _openapi_schemas() -> dict:
    return {
        "Secret": SECRET.schema(),
        "Event": EVENT.schema(),
        "Error": _error_schema(),
        "SecretEnvelope": _envelope(True, secret=_ref("Secret")),
        "DeletedEnvelope": _envelope(True, secret={"oneOf": [_ref("Secret"), {"type": "null"}]}),
        "SecretPage": _envelope(True, secrets={"type": "array", "items": _ref("Secret")}, **PAGE.properties),
        "EventPage": _envelope(True, events={"type": "array", "items": _ref("Event")}, **PAGE.properties),
        "Unlocked": _envelope(True, secret=UNLOCKED.schema()),
        "AuthCheck": _envelope(True, user=USER.schema()),
        "WebhookEvent": _webhook_event_schema(),
    }


def _webhook_event_schema() -> dict:
    secret_event = {
        "type": "object",
        "properties": {"secret": WEBHOOK_SECRET.schema(), "visitor": {"oneOf": [WEBHOOK_VISITOR.schema(), {"type": "null"}]}},
        "required": ["secret", "visitor"],
        "description": "secret.* events: the secret, and for secret.opened who opened it.",
    }
    ping = {"type": "object", "properties": {"username": {"type": "string"}}, "required": ["username"], "description": "ping."}
    properties = {
        "delivery": {"type": "integer", "description": "This delivery's number; a retry repeats it, so a receiver can skip it."},
        "event": {"type": "string", "enum": list(WEBHOOK_EVENTS)},
        "occurred_at": MOMENT,
        "data": {"oneOf": [secret_event, ping]},
    }
    return {"type": "object", "properties": properties, "required": list(properties)}


def _openapi_webhooks() -> dict:
    """OpenAPI 3.1's `webhooks`: what SecureShare POSTs to your endpoints, one entry per event."""
    headers = [
        {"name": name, "in": "header", "required": True, "description": words, "schema": {"type": "string"}}
        for name, words in WEBHOOK_HEADERS.items()
    ]
    answer = (
        "Any 2xx within 10 seconds counts as received. Anything else (a redirect too: none is followed) is retried "
        "after 1 minute, then doubling up to an hour between tries, for up to 72 hours."
    )
    return {
        event: {
            "post": {
                "summary": summary,
                "parameters": headers,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("WebhookEvent")}}},
                "responses": {"2XX": {"description": answer}},
            }
        }
        for event, summary in WEBHOOK_EVENTS.items()
    }


def _json_response(description: str, schema: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


def _openapi_responses() -> dict:
    location = {"Location": {"description": "The new secret's API address.", "required": True, "schema": {"type": "string"}}}
    any_body = {"schema": {}}
    return {
        "Secret": _json_response("The secret's state (never its content).", "SecretEnvelope"),
        "SecretCreated": _json_response("Created.", "SecretEnvelope", location),
        "SecretDeleted": _json_response(
            "An active secret is deleted and erased (its record stays until the purge); an ended record is removed "
            "(secret is null).",
            "DeletedEnvelope",
        ),
        "SecretPage": _json_response("A page of secrets, newest first; past the last page it is empty.", "SecretPage"),
        "EventPage": _json_response("A page of access events, newest first.", "EventPage"),
        "Unlocked": _json_response("The right password: the content, and one view counted.", "Unlocked"),
        "AuthCheck": _json_response("The caller is signed in.", "AuthCheck"),
        "OpenApiDocument": {"description": "This document.", "content": {"application/json": {"schema": {"type": "object"}}}},
        "DocsPage": {"description": "The API reference as a web page.", "content": {"text/html": any_body}},
        "QrPng": {"description": "The QR code of the share link.", "content": {"image/png": any_body}},
        "QrSvg": {"description": "The QR code of the share link.", "content": {"image/svg+xml": any_body}},
    }


def reasons_by_status(reasons) -> dict[int, list[str]]:
    """Group `reasons` by their HTTP status, in status order, each group in REASONS' order."""
    grouped: dict[int, list[str]] = {}
    for reason in sorted(set(reasons), key=list(REASONS).index):
        grouped.setdefault(REASONS[reason].status, []).append(reason)
    return dict(sorted(grouped.items()))


def _common_response_name(status: int) -> str:
    return HTTPStatus(status).phrase.title().replace(" ", "").replace("-", "")


def _refusal_response(reasons: list[str]) -> dict:
    """One status's refusal: the error envelope, its `reason` one of `reasons`, each explained."""
    reason_is = {"properties": {"error": {"properties": {"reason": {"enum": reasons}}}}}
    response = {
        "description": " ".join(f"{reason}: {REASONS[reason].meaning}" for reason in reasons),
        "content": {"application/json": {"schema": {"allOf": [_ref("Error"), reason_is]}}},
    }
    if REASONS[reasons[0]].status in RETRY_AFTER_STATUSES:
        response["headers"] = RETRY_AFTER
    return response


def _common_responses() -> dict:
    """The refusals every call can give, defined once; calls refer to them by $ref."""
    return {
        _common_response_name(status): _refusal_response(reasons) for status, reasons in reasons_by_status(COMMON_REASONS).items()
    }


def _call_reasons(view, rule, declared: dict) -> list[str]:
    """Every reason a call can give: every call's, its input's, its path's, its sign-in's, and its own code's."""
    reasons = [*COMMON_REASONS, *declared["reasons"]]
    if declared["query"]()["properties"]:
        reasons.append("invalid_fields")
    if declared["body"]:
        reasons += BODY_REASONS
    if rule.arguments:
        reasons.append("not_found")
    if getattr(view, "requires_auth", False):
        reasons.append("unauthorized")
    return reasons


def _refusals(reasons: list[str]) -> dict:
    """A call's refusals by status: a $ref to the common answer when the call adds nothing to it, else its own list."""
    common = reasons_by_status(COMMON_REASONS)
    return {
        str(status): {"$ref": f"#/components/responses/{_common_response_name(status)}"}
        if grouped == common.get(status)
        else _refusal_response(grouped)
        for status, grouped in reasons_by_status(reasons).items()
    }


def _example_url(path: str, values: dict) -> str:
    server = current_app.config["PUBLIC_BASE_URL"] or request.host_url.rstrip("/")
    return server + path.replace("{unique_id}", EXAMPLE_SHARE_ID) + (f"?{urlencode(values)}" if values else "")


def _curl_line(method: str, url: str, signed_in: bool, body: dict | None) -> str:
    """The call as one curl command; the token is read from $TOKEN, so no token is ever printed."""
    words = ["curl"]
    if method in {"PATCH", "DELETE"}:
        words += ["-X", method]
    if signed_in:
        words += ["-H", '"Authorization: Bearer $TOKEN"']
    if body is not None:
        words += ["-H", "'Content-Type: application/json'", "-d", shlex.quote(json.dumps(body))]
    return " ".join([*words, shlex.quote(url)])


def _parameters(rule, declared: dict) -> list[dict]:
    """The path's share id and the query's names, each with its example where the call declares one."""
    share_id = {"type": "string", "pattern": f"^{SHARE_ID_PATTERN}$"}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": share_id, "example": EXAMPLE_SHARE_ID}
        for name in sorted(rule.arguments)
    ]
    query_example = {} if declared["body"] else declared["example"]
    for name, schema in declared["query"]()["properties"].items():
        parameter = {"name": name, "in": "query", "required": False, "schema": schema}
        if name in query_example:
            parameter["example"] = query_example[name]
        parameters.append(parameter)
    return parameters


def _code_sample(method: str, path: str, signed_in: bool, declared: dict) -> dict:
    """The call's example as a curl line (the x-codeSamples extension), from the same example values."""
    body_example = declared["example"] if declared["body"] else None
    url = _example_url(path, {} if declared["body"] else declared["example"])
    return {"lang": "Shell", "label": "curl", "source": _curl_line(method, url, signed_in, body_example)}


def _openapi_operation(endpoint: str, view, rule, method: str, path: str) -> dict:
    declared = view.openapi
    signed_in = getattr(view, "requires_auth", False)
    operation = {
        "operationId": endpoint.removeprefix("api."),
        "summary": declared["summary"],
        "description": (view.__doc__ or "").strip(),
        "parameters": _parameters(rule, declared),
        "x-codeSamples": [_code_sample(method, path, signed_in, declared)],
    }
    if declared["body"]:
        operation["requestBody"] = {
            "required": True,
            "description": (declared["body"].__doc__ or "").strip(),
            "content": {"application/json": {"schema": declared["body"](), "example": declared["example"]}},
        }
        if declared["files"]:
            operation["requestBody"]["content"]["multipart/form-data"] = _multipart_create()
    if signed_in:
        cookie = {"cookieAuth": []} if method == "GET" else {"cookieAuth": [], "csrfToken": []}
        operation["security"] = [{"bearerAuth": []}, cookie]
    else:
        operation["security"] = []
    answers = {str(status): {"$ref": f"#/components/responses/{name}"} for status, name in declared["responses"].items()}
    operation["responses"] = dict(sorted({**answers, **_refusals(_call_reasons(view, rule, declared))}.items()))
    return operation


def _multipart_create() -> dict:
    """The create with files: the same JSON fields in a part of their own, and the files beside it."""
    settings = current_app.config
    return {
        "schema": {
            "type": "object",
            "properties": {
                JSON_PART: {"type": "string", "description": "The JSON fields, as for application/json (content may be empty)."},
                "files": {
                    "type": "array",
                    "items": {"type": "string", "format": "binary"},
                    "description": f"Up to {settings['FILE_MAX_COUNT']} files, {settings['FILE_MAX_BYTES']} bytes in all.",
                },
            },
            "required": [JSON_PART],
        },
        "encoding": {JSON_PART: {"contentType": "application/json"}},
    }


def openapi_document() -> dict:
    """Describe every API route from its own declaration (`api_operation`), with the shared shapes."""
    paths: dict[str, dict] = {}
    for rule in current_app.url_map.iter_rules():
        view = current_app.view_functions[rule.endpoint]
        if not hasattr(view, "openapi") or not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _openapi_operation(rule.endpoint, view, rule, method, path)
    schemes = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API token from the Account page."},
        "cookieAuth": {
            "type": "apiKey",
            "in": "cookie",
            "name": current_app.config["SESSION_COOKIE_NAME"],
            "description": "A signed-in browser session.",
        },
        "csrfToken": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRFToken",
            "description": "With a session, anything but GET also needs the page's CSRF token (its csrf-token meta tag).",
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SecureShare API",
            "version": "1",
            "description": "Create, list, change and delete your secrets, and open one with its password.",
        },
        "servers": [{"url": current_app.config["PUBLIC_BASE_URL"] or request.host_url.rstrip("/")}],
        "paths": paths,
        "webhooks": _openapi_webhooks(),
        "components": {
            "schemas": _openapi_schemas(),
            "responses": {**_openapi_responses(), **_common_responses()},
            "securitySchemes": schemes,
        },
    }
