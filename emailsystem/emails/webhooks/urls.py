from django.urls import path

from emailsystem.emails.webhooks.views import sendgrid_webhook

app_name = "webhooks"

urlpatterns = [path("sendgrid/", sendgrid_webhook, name="sendgrid")]
