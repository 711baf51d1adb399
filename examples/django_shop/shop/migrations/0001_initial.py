from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("sku", models.CharField(max_length=32, unique=True)),
                ("name", models.CharField(max_length=200)),
                ("stock", models.PositiveIntegerField(default=0)),
                ("labels_printed", models.PositiveIntegerField(default=0)),
                ("restocked_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={"ordering": ("sku",)},
        ),
    ]
