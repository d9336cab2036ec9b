"""Query-string filters of the sent-email log: recipient and tag (repeatable), start_time, end_time, status.

`status` takes an email status (the email's own, derived status) or a recipient status that
only recipients have (`bounced`, `opened`...: emails with at least one such recipient).
"""

import datetime
import re
from typing import Any

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from emailsystem.emails.models import (
    RECIPIENT_ONLY_STATUSES,
    Delivery,
    DeliveryStatus,
    EmailStatus,
    SentEmail,
    SentEmailTag,
)
from emailsystem.users.models import normalize_email_address

# An unencoded "+" in a query string arrives as a space: "10:00:00 01:00" meant "10:00:00+01:00".
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACE_FOR_PLUS_OFFSET = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


# Between addresses typed into one box: commas, semicolons, spaces. Other whitespace (a line
# break) is a control character, refused below.
_ADDRESS_SEPARATORS = re.compile(r"[ ,;]+")


class RepeatableWidget(forms.TextInput):
    """Reads every occurrence of a query parameter (?recipient=a&recipient=b), and shows them in
    the browsable API's Filters dialog as one box, separated by commas."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> list[str]:
        if hasattr(data, "getlist"):
            return data.getlist(name)
        value = data.get(name)
        return [] if value is None else [value] if isinstance(value, str) else list(value)

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, list | tuple):
            value = ", ".join(str(item) for item in value)
        return super().format_value(value)


class EmailAddressListField(forms.Field):
    """Addresses from every occurrence of the parameter, each of which may hold several
    separated by commas (?recipient=a,b is ?recipient=a&recipient=b)."""

    widget = RepeatableWidget

    def to_python(self, value: Any) -> list[str]:
        items = [part for item in (value or []) for part in _ADDRESS_SEPARATORS.split(str(item))]
        values = [normalize_email_address(item) for item in items]
        values = [item for item in values if item]
        for item in values:
            if len(item) > 254:
                raise forms.ValidationError("An email address has at most 254 characters.", code="max_length")
            if any(ord(char) < 32 for char in item):
                raise forms.ValidationError("An email address has no control characters.", code="invalid")
        return values


class DateOrDateTimeField(forms.Field):
    """An ISO 8601 date or datetime. Returns (aware datetime, was_date_only); naive means UTC."""

    def to_python(self, value: Any) -> tuple[datetime.datetime, bool] | None:
        if value in (None, ""):
            return None
        text = _SPACE_FOR_PLUS_OFFSET.sub(r"\1+\2", str(value).strip())
        try:
            # Date first: on Python 3.11+ parse_datetime also accepts a bare date, as midnight.
            if _DATE_ONLY.match(text) and (day := parse_date(text)) is not None:
                return _in_utc_within_range(
                    datetime.datetime.combine(day, datetime.time.min, tzinfo=datetime.UTC)
                ), True
            moment = parse_datetime(text)
        except ValueError:  # well formed but impossible, e.g. 2026-02-30
            moment = None
        if moment is None:
            raise forms.ValidationError(
                "Enter an ISO 8601 date (2026-11-22) or datetime (2026-11-22T09:30:00Z).", code="invalid"
            )
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=datetime.UTC)
        return _in_utc_within_range(moment), False


# Years a moment may fall in once in UTC: one day of margin on each side of Python's range,
# so that neither the UTC conversion nor a date-only end_time's "+ 1 day" can overflow.
_FIRST_YEAR, _LAST_YEAR = 2, 9998


def _in_utc_within_range(moment: datetime.datetime) -> datetime.datetime:
    """The moment in UTC (PostgreSQL refuses offsets beyond ±15:59, Python allows ±23:59)."""
    in_utc: datetime.datetime | None
    try:
        in_utc = moment.astimezone(datetime.UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not _FIRST_YEAR <= in_utc.year <= _LAST_YEAR:
        raise forms.ValidationError(
            f"Enter a moment between the years {_FIRST_YEAR} and {_LAST_YEAR} (in UTC).", code="out_of_range"
        )
    return in_utc


class TagListField(forms.Field):
    """Tags from every occurrence of the parameter, each of which may hold several separated by commas."""

    widget = RepeatableWidget

    def to_python(self, value: Any) -> list[str]:
        values = [part.strip() for item in (value or []) for part in str(item).split(",") if part.strip()]
        for item in values:
            if len(item) > 50 or any(ord(char) < 32 for char in item):
                raise forms.ValidationError("A tag has at most 50 characters and no control characters.")
        return values


class TagListFilter(django_filters.Filter):
    field_class = TagListField


class EmailAddressListFilter(django_filters.Filter):
    field_class = EmailAddressListField


class DateOrDateTimeFilter(django_filters.Filter):
    field_class = DateOrDateTimeField


# Recipient statuses that are not also email statuses: filtering on one finds the emails with
# at least one recipient in it.
RECIPIENT_ONLY_STATUS_CHOICES = [
    (value, label) for value, label in DeliveryStatus.choices if value in RECIPIENT_ONLY_STATUSES
]


class SentEmailFilter(django_filters.FilterSet):
    recipient = EmailAddressListFilter(
        method="filter_recipient", label="Recipient (several: separate them with commas)"
    )
    tag = TagListFilter(method="filter_tag", label="Tag (several: separate them with commas)")
    start_time = DateOrDateTimeFilter(method="filter_start_time", label="Sent at or after (ISO date or datetime)")
    end_time = DateOrDateTimeFilter(
        method="filter_end_time", label="Sent at or before (ISO date or datetime; a date includes the whole day)"
    )
    status = django_filters.ChoiceFilter(
        choices=[*EmailStatus.choices, *RECIPIENT_ONLY_STATUS_CHOICES],
        method="filter_status",
        label="Status: the email's, or one a recipient has (bounced, opened...)",
    )

    class Meta:
        model = SentEmail
        fields = ["recipient", "tag", "start_time", "end_time", "status"]

    def filter_recipient(self, queryset: QuerySet[SentEmail], name: str, value: list[str]) -> QuerySet[SentEmail]:
        if not value:
            return queryset
        # EXISTS rather than a join: an email sent to several of the addresses is listed once.
        sent_to = Delivery.objects.filter(sent_email=OuterRef("pk"), recipient__email__in=value)
        return queryset.filter(Exists(sent_to))

    def filter_tag(self, queryset: QuerySet[SentEmail], name: str, value: list[str]) -> QuerySet[SentEmail]:
        if not value:
            return queryset
        return queryset.filter(Exists(SentEmailTag.objects.filter(sent_email=OuterRef("pk"), tag__in=value)))

    def filter_status(self, queryset: QuerySet[SentEmail], name: str, value: str) -> QuerySet[SentEmail]:
        if not value:
            return queryset
        if value in EmailStatus.values:
            return queryset.filter(status=value)
        return queryset.filter(Exists(Delivery.objects.filter(sent_email=OuterRef("pk"), status=value)))

    def filter_start_time(
        self, queryset: QuerySet[SentEmail], name: str, value: tuple[datetime.datetime, bool] | None
    ) -> QuerySet[SentEmail]:
        return queryset if value is None else queryset.filter(created__gte=value[0])

    def filter_end_time(
        self, queryset: QuerySet[SentEmail], name: str, value: tuple[datetime.datetime, bool] | None
    ) -> QuerySet[SentEmail]:
        if value is None:
            return queryset
        moment, date_only = value
        if date_only:
            return queryset.filter(created__lt=moment + datetime.timedelta(days=1))
        return queryset.filter(created__lte=moment)

    def is_valid(self) -> bool:
        if not super().is_valid():
            return False
        start, end = self.form.cleaned_data.get("start_time"), self.form.cleaned_data.get("end_time")
        if start and end:
            end_moment, date_only = end
            empty = start[0] >= end_moment + datetime.timedelta(days=1) if date_only else start[0] > end_moment
            if empty:
                self.form.add_error("end_time", "end_time is before start_time.")
                return False
        return True
