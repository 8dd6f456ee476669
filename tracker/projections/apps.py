from django.apps import AppConfig


class ProjectionsConfig(AppConfig):
    name = "tracker.projections"
    label = "projections"
