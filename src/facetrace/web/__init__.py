"""The web UI: server-rendered pages over the operations layer, served by the API's app.

No JavaScript build step and no script at all: every page is a form or a link, so it
works from a phone, a keyboard or a screen reader, and nothing is checked only in the
browser. Pages sign people in with the same sessions as the API (an HttpOnly,
SameSite=Strict cookie) and send the session's CSRF token in each form.
"""

from facetrace.web.pages import install

__all__ = ["install"]
