from django.apps import AppConfig


class ProjectionsConfig(AppConfig):
    name = "tracker.projections"
    label = "projections"

    def ready(self) -> None:
        from tracker.deals.signals import events_recorded

        from .dispatch import dispatch_after_commit

        events_recorded.connect(dispatch_after_commit, dispatch_uid="projections.dispatch")
