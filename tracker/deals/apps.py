from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "tracker.deals"
    label = "deals"
