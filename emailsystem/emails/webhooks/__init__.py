"""SendGrid's Event Webhook: signed batches of delivery events (docs/delivery/events.md)."""
