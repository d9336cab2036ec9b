from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from emailsystem.core.fields import StrictCharField, StrictEmailField
from emailsystem.users.models import ApiKey, ApiKeyScope, User, normalize_email_address

LOGIN_FAILED = "Unable to log in with the provided credentials."
# The browsable API's password input: never refilled with what was typed (core/forms/password.html).
PASSWORD_STYLE = {"input_type": "password", "template": "core/forms/password.html"}


class RegisterSerializer(serializers.Serializer):
    email = StrictEmailField(max_length=254)
    username = StrictCharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = StrictCharField(
        write_only=True, max_length=128, style={**PASSWORD_STYLE, "autocomplete": "new-password"}
    )

    def validate_email(self, value: str) -> str:
        value = normalize_email_address(value)
        if not value.isascii():  # a domain with no ASCII spelling (the part before the @ is ASCII by now)
            raise serializers.ValidationError("Enter a valid email address.", code="invalid")
        if get_user_model().objects.filter(email=value).exists():
            raise serializers.ValidationError("A user with this email address already exists.")
        return value

    def validate_username(self, value: str) -> str:
        if get_user_model().objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError("A user with this username already exists.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = get_user_model()(email=attrs["email"], username=attrs["username"])
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as error:
            raise serializers.ValidationError({"password": list(error.messages)}) from None
        return attrs


class LoginSerializer(serializers.Serializer):
    """{"username": <email or username>, "password"}; "email" is accepted in place of "username"."""

    username = StrictCharField(required=False, max_length=254, help_text="Your email address (or username).")
    # The same as username for clients that say "email"; the HTML form shows username only.
    email = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=254,
        write_only=True,
        style={"input_type": "hidden", "hide_label": True},
    )
    password = StrictCharField(write_only=True, max_length=128, style=PASSWORD_STYLE)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        identifier = attrs.get("username") or attrs.get("email")
        if not identifier:
            raise serializers.ValidationError({"username": ["This field is required."]})
        user: User | None = authenticate(self.context.get("request"), username=identifier, password=attrs["password"])
        if user is None:
            raise serializers.ValidationError(LOGIN_FAILED, code="authorization")
        attrs["user"] = user
        return attrs


class LogoutSerializer(serializers.Serializer):
    """Logging out takes no input."""


class VerifyEmailQuerySerializer(serializers.Serializer):
    """The query of the link mailed to an address: ?token=..."""

    token = StrictCharField(max_length=200, help_text="The token from the link mailed to your address.")


class VerifyEmailRequestSerializer(serializers.Serializer):
    """Asking for a new link takes no input: it goes to your account's address."""


class IdentitySerializer(serializers.Serializer):
    """Who you are and whether your address may be used as From (docs/sending/sender-identity.md)."""

    email = serializers.EmailField()
    username = serializers.CharField()
    email_verified = serializers.BooleanField(
        help_text="True once you followed the link mailed to your address (or an admin verified it): only then "
        "do your emails go From it (or with Reply-To it, under EMAIL_FROM_ADDRESS)."
    )


class VerificationAnswerSerializer(serializers.Serializer):
    message = serializers.CharField()
    email = serializers.EmailField()
    email_verified = serializers.BooleanField()


class ApiKeyCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100, help_text="What the key is for: billing-app.")
    scope = serializers.ChoiceField(
        choices=ApiKeyScope.choices,
        default=ApiKeyScope.SEND,
        help_text="`send` (the default): send email and read the emails sent, nothing else. "
        "`full`: everything you may do yourself.",
    )


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as its owner lists it: never the key itself, which only its creation answer shows."""

    class Meta:
        model = ApiKey
        fields = ["id", "name", "scope", "prefix", "created", "last_used"]
        read_only_fields = fields
        extra_kwargs = {
            "prefix": {"help_text": "The key's first characters, to tell it apart."},
            "last_used": {"help_text": "When it last authenticated a request, to the minute; null if never."},
        }


class ApiKeyIssuedSerializer(serializers.Serializer):
    """A new key (users.api_keys.IssuedApiKey), the one time it is shown: only its digest is stored."""

    id = serializers.IntegerField(source="api_key.id")
    name = serializers.CharField(source="api_key.name")
    scope = serializers.ChoiceField(choices=ApiKeyScope.choices, source="api_key.scope")
    prefix = serializers.CharField(source="api_key.prefix")
    key = serializers.CharField(
        help_text="The key, shown this once: send it in the Authorization header, after `Bearer `."
    )
    created = serializers.DateTimeField(source="api_key.created")
