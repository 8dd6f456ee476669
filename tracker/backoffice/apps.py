from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class BackofficeConfig(AppConfig):
    name = "tracker.backoffice"
    label = "backoffice"


class BackofficeAdminConfig(admin_apps.AdminConfig):
    """Django's admin app with `tracker.backoffice.site.BackofficeSite` as `admin.site`.

    Listed in INSTALLED_APPS in place of "django.contrib.admin"; not this package's default
    config, which is `BackofficeConfig`.
    """

    default = False
    default_site = "tracker.backoffice.site.BackofficeSite"
