# The rows the filters of GET /deals/ read: search text (with its GIN index on PostgreSQL),
# contracts, delivery years and external ids.

import django.contrib.postgres.search
import django.db.models.deletion
from django.db import migrations, models

import tracker.projections.models


def project_again(apps, schema_editor):
    """Send every projected deal back behind its stream, state kept, so that the sweep (or the
    next read in embedded mode) re-projects it and writes its new rows; until then the list
    serves it as before. The projector trusts no stored row of a deal at version 0."""
    DealState = apps.get_model("projections", "DealState")
    DealState.objects.using(schema_editor.connection.alias).update(version=0)


class Migration(migrations.Migration):
    dependencies = [
        ("deals", "0001_initial"),
        ("projections", "0002_deal_verbose_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="DealText",
            fields=[
                (
                    "deal",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="text_row",
                        serialize=False,
                        to="projections.dealstate",
                    ),
                ),
                ("search_text", models.TextField()),
            ],
            options={
                "indexes": [
                    tracker.projections.models.PostgresGinIndex(
                        django.contrib.postgres.search.SearchVector(
                            "search_text", config="english"
                        ),
                        name="dealtext_search_idx",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="DealContract",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "deal",
                        "position",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "deal",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="contract_rows",
                        to="projections.dealstate",
                    ),
                ),
                ("position", models.PositiveSmallIntegerField()),
                (
                    "buyer",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="deals.organisation",
                    ),
                ),
                (
                    "supplier",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="deals.organisation",
                    ),
                ),
                ("category", models.TextField(blank=True)),
                ("order_year", models.PositiveSmallIntegerField(null=True)),
                (
                    "value_amount",
                    models.DecimalField(decimal_places=20, max_digits=50, null=True),
                ),
                ("value_currency", models.CharField(blank=True, max_length=3)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["order_year"], name="dealcontract_year_idx"),
                    models.Index(
                        condition=models.Q(("value_amount__isnull", False)),
                        fields=["value_currency", "value_amount"],
                        name="dealcontract_value_idx",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="DealDelivery",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "deal",
                        "year",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "deal",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="delivery_rows",
                        to="projections.dealstate",
                    ),
                ),
                ("year", models.PositiveSmallIntegerField()),
            ],
            options={
                "verbose_name_plural": "deal deliveries",
                "indexes": [models.Index(fields=["year", "deal"], name="dealdelivery_year_idx")],
            },
        ),
        migrations.CreateModel(
            name="DealExternalId",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "deal",
                        "external_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "deal",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="external_id_rows",
                        to="projections.dealstate",
                    ),
                ),
                ("external_id", models.TextField()),
            ],
            options={
                "indexes": [models.Index(fields=["external_id"], name="dealexternalid_idx")],
            },
        ),
        migrations.RunPython(project_again, migrations.RunPython.noop, elidable=True),
    ]
