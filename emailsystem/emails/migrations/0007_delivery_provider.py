from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("emails", "0006_sent_email_history"),
    ]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="provider",
            field=models.CharField(blank=True, db_default="", default="", max_length=20),
        ),
    ]
