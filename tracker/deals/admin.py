from __future__ import annotations

from django.contrib import admin

from .models import Organisation


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "short_name", "kind", "country", "parent")
    list_filter = ("kind", "country")
    search_fields = ("name", "short_name")
    autocomplete_fields = ("parent",)
    readonly_fields = ("id",)
    fields = ("id", "name", "short_name", "kind", "country", "parent")
