"""The upload page: an editor imports one edition of a published register, and reads its report.

The page only reads the form and hands the file to `deals.registers.importer.import_register`,
the same service `manage.py import_register` calls; its report is shown as the command prints
it. Hung off the imports' list (`tracker.backoffice.admin.registers`) as
`admin:register_import_upload`, inside `admin_site.admin_view` (active staff only).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from tracker.deals.models import RegisterImport
from tracker.deals.registers.importer import ImportRefused, import_register

from .access import can_record

MAX_UPLOAD_MB = 50
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024


class RegisterUploadForm(forms.Form):
    file = forms.FileField(
        label="Register file",
        help_text=(
            "A SIPRI trade-register CSV, or the older “deals and TIVs” text export, as "
            f"downloaded (at most {MAX_UPLOAD_MB} MB)."
        ),
    )
    edition = forms.DateField(
        required=False,
        label="Edition",
        help_text="The edition's publication date. Leave blank to take the date the file gives.",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"This file is {upload.size / 1024 / 1024:.1f} MB: the limit is {MAX_UPLOAD_MB} MB."
            )
        return upload


def upload_view(request: HttpRequest, admin_site: AdminSite) -> HttpResponse:
    """GET: the form. POST: import the file, then show the report (or why it was refused)."""
    if not can_record(request.user):
        raise PermissionDenied
    context: dict[str, Any] = {
        **admin_site.each_context(request),
        "title": "Import a register edition",
        "opts": RegisterImport._meta,
        "report": None,
    }
    if request.method != "POST":
        context["form"] = RegisterUploadForm()
        return TemplateResponse(request, "admin/deals/register_upload.html", context)
    form = RegisterUploadForm(request.POST, request.FILES)
    context["form"] = form
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            report = import_register(
                upload.read(),
                actor=request.user.get_username(),
                file_name=upload.name or "",
                edition=form.cleaned_data["edition"],
            )
        except ImportRefused as refused:
            reason = str(refused).rstrip(".")  # some reasons are sentences of their own
            form.add_error("file", f"The file was refused, nothing was imported: {reason}.")
        else:
            context.update(
                report=report,
                report_lines=report.lines(),
                # Whoever may import may map names (RegisterNameAdmin.has_add_permission).
                unresolved=unresolved_links(report.register, report.unresolved, may_map=True),
                import_url=reverse("admin:deals_registerimport_change", args=[report.import_id]),
                form=RegisterUploadForm(),
            )
    return TemplateResponse(request, "admin/deals/register_upload.html", context)


def unresolved_links(register: str, names: list[str], *, may_map: bool) -> list[tuple[str, str]]:
    """Each name with the mapping's add form prefilled with it; "" for a user who may not add."""
    add = reverse("admin:deals_registername_add")
    return [
        (name, f"{add}?{urlencode({'register': register, 'name': name})}" if may_map else "")
        for name in names
    ]
