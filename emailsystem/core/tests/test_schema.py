"""The published OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/).

How accurate the schema is, operation by operation, is proven by test_fuzz_api.py; these
tests hold what it publishes and that the docs page needs nothing from outside our server.
"""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/schema/"


def published_schema(client) -> dict:
    response = client.get(SCHEMA_URL, {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def test_the_schema_is_public_and_lists_every_api_operation(client):
    schema = published_schema(client)

    operations = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    assert operations == {
        ("GET", "/api/v1/"),
        ("POST", "/api/v1/users/register/"),
        ("POST", "/api/v1/users/login/"),
        ("POST", "/api/v1/users/logout/"),
        ("GET", "/api/v1/users/me/"),
        ("GET", "/api/v1/users/verify-email/"),
        ("POST", "/api/v1/users/verify-email/"),
        ("GET", "/api/v1/users/api-keys/"),
        ("POST", "/api/v1/users/api-keys/"),
        ("DELETE", "/api/v1/users/api-keys/{id}/"),
        ("GET", "/api/v1/emails/email-template/"),
        ("POST", "/api/v1/emails/email-template/"),
        ("GET", "/api/v1/emails/email-template/{id}/"),
        ("PUT", "/api/v1/emails/email-template/{id}/"),
        ("PATCH", "/api/v1/emails/email-template/{id}/"),
        ("DELETE", "/api/v1/emails/email-template/{id}/"),
        ("POST", "/api/v1/emails/email-template/{id}/preview/"),
        ("POST", "/api/v1/emails/email-template/validate/"),
        ("GET", "/api/v1/emails/sent-email/"),
        ("POST", "/api/v1/emails/sent-email/"),
        ("GET", "/api/v1/emails/sent-email/{id}/"),
        ("POST", "/api/v1/emails/batch/"),
        ("POST", "/api/v1/emails/sent-email/{id}/cancel/"),
        ("GET", "/api/v1/emails/suppressions/"),
        ("DELETE", "/api/v1/emails/suppressions/{id}/"),
        ("GET", "/api/v1/webhooks/endpoints/"),
        ("POST", "/api/v1/webhooks/endpoints/"),
        ("GET", "/api/v1/webhooks/endpoints/{id}/"),
        ("PATCH", "/api/v1/webhooks/endpoints/{id}/"),
        ("DELETE", "/api/v1/webhooks/endpoints/{id}/"),
        ("POST", "/api/v1/webhooks/endpoints/{id}/rotate-secret/"),
        ("POST", "/api/v1/webhooks/endpoints/{id}/test/"),
        ("GET", "/api/v1/webhooks/endpoints/{id}/deliveries/"),
        ("POST", "/api/v1/webhooks/endpoints/{id}/deliveries/{delivery_id}/replay/"),
    }


def test_the_schema_names_token_bearer_and_session_authentication(client):
    schema = published_schema(client)

    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "sessionid"}
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    send = schema["paths"]["/api/v1/emails/sent-email/"]["post"]
    assert send["security"] == [{"tokenAuth": []}, {"bearerAuth": []}, {"cookieAuth": []}]  # no anonymous entry
    template_list = schema["paths"]["/api/v1/emails/email-template/"]["get"]
    assert {} in template_list["security"] and {"bearerAuth": []} in template_list["security"]
    login = schema["paths"]["/api/v1/users/login/"]["post"]
    assert {"bearerAuth": []} not in login["security"]  # session only: keys are ignored there


def test_every_operation_that_takes_an_api_key_documents_the_send_scopes_403(client):
    schema = published_schema(client)

    operations = [operation for item in schema["paths"].values() for operation in item.values()]
    keyed = [operation for operation in operations if {"bearerAuth": []} in operation["security"]]
    assert len(keyed) > 20
    assert [operation["operationId"] for operation in keyed if "403" not in operation["responses"]] == []
    issued = schema["paths"]["/api/v1/users/api-keys/"]["post"]["responses"]["201"]["content"]["application/json"]
    assert issued["schema"] == {"$ref": "#/components/schemas/ApiKeyIssued"}
    assert set(schema["components"]["schemas"]["ApiKeyIssued"]["required"]) == {
        "id",
        "name",
        "scope",
        "prefix",
        "key",
        "created",
    }


def test_the_send_documents_its_202_answer_and_its_refusals(client):
    schema = published_schema(client)

    send = schema["paths"]["/api/v1/emails/sent-email/"]["post"]
    assert set(send["responses"]) == {"202", "400", "401", "403", "409", "413", "415", "429"}
    accepted = schema["components"]["schemas"]["SendAccepted"]
    assert set(accepted["required"]) == {"id", "status", "created", "recipients"}
    assert [p["name"] for p in send["parameters"]] == ["Idempotency-Key"]
    log = schema["paths"]["/api/v1/emails/sent-email/"]["get"]
    recipient = next(p for p in log["parameters"] if p["name"] == "recipient")
    assert recipient["schema"]["type"] == "array" and recipient["explode"] is True


def test_the_schema_generates_without_a_warning():
    # What `make lint` runs; a warning (an untyped field, a view it cannot read) fails it.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_swagger_ui_loads_every_asset_from_our_own_static_files(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert urls and all(url.startswith("/static/") for url in urls), urls  # nothing from a CDN
    assets = [url.removeprefix("/static/") for url in urls]
    assert {asset.rsplit("/", 1)[1] for asset in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        assert finders.find(asset), f"{asset} is not among our static files"
    assert '"/api/schema/"' in page
