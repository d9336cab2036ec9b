"""SendGrid's Event Webhook: signed batches of delivery events (README, "Delivery events")."""
