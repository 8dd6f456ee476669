"""The message storage is made only for requests that use it; messages still reach the page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.messages.storage.fallback import FallbackStorage
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.functional import empty

from config.middleware import LazyMessageMiddleware


def run(view):
    request = RequestFactory().get("/")
    request.session = {}  # what SessionMiddleware would have set
    response = LazyMessageMiddleware(lambda r: view(r))(request)
    return request, response


def test_a_request_that_shows_no_message_makes_no_storage():
    request, response = run(lambda r: HttpResponse("ok"))
    assert request._messages._wrapped is empty
    assert "messages" not in response.cookies


def test_a_message_added_is_stored_for_the_next_page():
    request, response = run(lambda r: messages.info(r, "Deal opened.") or HttpResponse("ok"))
    assert isinstance(request._messages._wrapped, FallbackStorage)
    following = RequestFactory().get("/")
    following.COOKIES["messages"] = response.cookies["messages"].value
    assert [m.message for m in CookieStorage(following)] == ["Deal opened."]
