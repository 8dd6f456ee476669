from django.apps import AppConfig


class EventstoreConfig(AppConfig):
    name = "tracker.eventstore"
    label = "eventstore"
    verbose_name = "Event store"
