"""The admin dashboard page (staff only): sends, outcomes, recipient domains and queue depths.

Mounted at /admin/dashboard/ through `admin.site.admin_view`, which sends anyone who is not
active staff to the admin login. Staff also need the view permissions of the records it
summarises (DASHBOARD_PERMISSIONS), as the admin's own lists of them do. The reads are in
dashboard.py; this only shapes them for the template and renders the charts.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from emailsystem.core.charts import Series, series_for, stacked_bars
from emailsystem.emails import dashboard, dashboard_providers

# Hourly bars: name one hour in 24 (midnight UTC) under the axis.
HOURS_PER_TICK = 24
# Every user's sends and deliveries, summarised: the permissions to see them in the admin.
DASHBOARD_PERMISSIONS = ("emails.view_sentemail", "emails.view_delivery")


def dashboard_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perms(DASHBOARD_PERMISSIONS):
        raise PermissionDenied
    hours = dashboard.sends_per_hour()
    days, outcomes = dashboard.outcomes_per_day()
    sends_chart = stacked_bars(
        title="Emails accepted per hour, last 7 days (UTC)",
        labels=[
            row["hour"].strftime("%a %d %H:00") if row["hour"].hour else row["hour"].strftime("%a %d") for row in hours
        ],
        series=[Series("emails", [row["emails"] for row in hours], "#417690")],
        tick_every=HOURS_PER_TICK,
    )
    outcomes_chart = stacked_bars(
        title="Recipients by delivery status, by day sent, last 7 days (UTC)",
        labels=[day.strftime("%a %d %b") for day in days],
        series=series_for(outcomes),
    )
    context = {
        **admin.site.each_context(request),
        "title": "Delivery dashboard",
        "sends_chart": sends_chart,
        "outcomes_chart": outcomes_chart,
        "emails_week": sum(row["emails"] for row in hours),
        "recipients_week": sum(row["recipients"] for row in hours),
        "failing_domains": dashboard.domains_most_failing(),
        "slowest_domains": dashboard.domains_slowest(),
        "queues": dashboard.queue_depths(),
        "sent_per_provider": dashboard_providers.sent_per_provider(),
        "breakers": dashboard_providers.breaker_states(),
        "domain_window_hours": int(dashboard.DOMAIN_WINDOW.total_seconds() // 3600),
    }
    return TemplateResponse(request, "admin/emails/dashboard.html", context)
