"""The server-side SVG charts' colours: every delivery status readable apart from the others."""

from emailsystem.core.charts import series_for
from emailsystem.emails.models import DeliveryStatus


def test_every_delivery_status_gets_its_own_colour():
    series = series_for({status: [1] for status in DeliveryStatus.values})

    colours = [item.colour for item in series]
    assert len(set(colours)) == len(DeliveryStatus.values)


def test_a_status_unknown_to_the_chart_takes_a_spare_colour():
    [known, unknown] = series_for({"sent": [1], "some_future_status": [2]})

    assert unknown.colour != known.colour and unknown.colour != "#000000"
