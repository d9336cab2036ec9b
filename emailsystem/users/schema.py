"""The OpenAPI schema's account of API keys beyond what drf-spectacular infers (SPECTACULAR_SETTINGS hooks)."""

from typing import Any

from emailsystem.users.authentication import ApiKeyScheme

SEND_SCOPE_REFUSED = "An API key with the send scope: this operation is outside it."


def api_key_scope_refusals(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Document the 403 a send key gets (ApiKeyAuthentication) on every operation that takes API
    keys and does not document a 403 of its own."""
    refused = {
        "description": SEND_SCOPE_REFUSED,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for item in result["paths"].values():
        for operation in item.values():
            if any(ApiKeyScheme.name in requirement for requirement in operation.get("security", [])):
                operation["responses"].setdefault("403", refused)
    return result
