"""Admin-managed templates: a send renders one with its context."""

from django.db import models

from emailsystem.emails.rendering import SUBJECT_MAX_LENGTH, validate_no_line_breaks, validate_template_syntax


class EmailTemplate(models.Model):
    """An admin-managed message. Subject and bodies are Django template syntax, rendered per send."""

    name = models.CharField(max_length=200, unique=True)
    subject = models.CharField(
        max_length=SUBJECT_MAX_LENGTH, validators=[validate_template_syntax, validate_no_line_breaks]
    )
    body = models.TextField(validators=[validate_template_syntax], help_text="Plain-text body.")
    html_body = models.TextField(
        blank=True, default="", validators=[validate_template_syntax], help_text="Optional HTML body."
    )
    allow_missing_variables = models.BooleanField(
        default=False,
        help_text="Off: a send whose context lacks a variable the template prints is refused (400). "
        "On: missing variables render as empty text.",
    )
    unsubscribe = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Sends from it give each recipient a one-click unsubscribe link (List-Unsubscribe headers), "
        "unless the send says otherwise.",
    )
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
