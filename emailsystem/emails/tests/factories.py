import factory

from emailsystem.emails.models import EmailTemplate, SentEmail
from emailsystem.emails.services import sent_email_create
from emailsystem.users.tests.factories import UserFactory


class EmailTemplateFactory(factory.django.DjangoModelFactory[EmailTemplate]):
    class Meta:
        model = EmailTemplate

    name = factory.Sequence(lambda n: f"template-{n}")
    subject = "Hello {{ name }}"
    body = "Hi {{ name }}, your order {{ order }} shipped."
    html_body = "<p>Hi {{ name }}, your order <b>{{ order }}</b> shipped.</p>"


def sent_email(*, user=None, recipients=("carol@example.com",), subject="Subject", body="Body", **kwargs):
    """A sent email recorded through the real service, as the API would."""
    receipt = sent_email_create(
        user=user or UserFactory(), recipients=list(recipients), subject=subject, body=body, **kwargs
    )
    return SentEmail.objects.get(pk=receipt.email_id)
