"""The pages: each authenticates the session, calls one operation and renders its result.

Permissions, events and errors are the operations'; a page only decides which links
and forms to show (from :func:`~facetrace.governance.access.allowed_actions`, which
audits nothing), and an error becomes a page with the API's status and message.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from PIL import Image

from facetrace import operations as ops
from facetrace.api.errors import error_body
from facetrace.api.runtime import (
    SESSION_COOKIE,
    Runtime,
    clear_session_cookie,
    client_address,
    runtime,
    set_session_cookie,
)
from facetrace.app import SOURCE_KINDS
from facetrace.errors import AccessDeniedError
from facetrace.governance import access, confirm, sessions
from facetrace.governance.access import USER_ROLES, Actor
from facetrace.operations.tasks import TaskKind
from facetrace.vision.imaging import decode_image

PREFIX = "/ui"
HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
TEMPLATES.env.filters["pathpart"] = lambda value: quote(str(value), safe="")
PREVIEW_PIXELS = 640  # the longer side of the probe preview drawn under the face boxes

Photo = Annotated[UploadFile, File()]
Csrf = Annotated[str, Form()]

# What a redirect may tell the next page; fixed strings, so a link cannot put words there.
NOTES = {
    "proposed": "Proposed as an identification: a second user must confirm it.",
    "confirmed": "Confirmed: two people have agreed on this identification.",
    "blocked": "Source blocked: nothing more is collected from it.",
    "added": "Source registered.",
    "password": "Password set; the user's other sessions have ended.",
    "revoked": "Revoked.",
}


def install(app: FastAPI) -> None:
    """Serve the pages under ``/ui`` and their stylesheet under ``/ui/static``."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.include_router(_router())


def error_page(request: Request, status: int, code: str, message: str) -> Response | None:
    """An error on a page as a page (a missing session: the sign-in page); None for the
    API's own requests, which are answered in JSON."""
    path = request.url.path
    if not path.startswith(f"{PREFIX}/"):
        return None
    if status == 401:
        return _redirect(f"{PREFIX}/signin?next={quote(path)}")
    message = error_body(code, message)["error"]["message"]
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {"title": f"Error {status}", "status": status, "message": message, "page": _bare()},
        status_code=status,
    )


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _bare() -> dict[str, Any]:
    """The layout's view of a visitor who is not signed in."""
    return {"actor": None, "csrf": "", "can": frozenset(), "note": None}


async def _signed_in(rt: Runtime, request: Request, csrf: str | None = None) -> dict[str, Any]:
    """The session's actor (401 becomes the sign-in page), what they may do and the CSRF
    token their forms send; a form's ``csrf`` is checked on every change."""
    actor, token = await rt.identify(request, csrf=csrf)
    note = NOTES.get(request.query_params.get("note", ""))
    return {"actor": actor, "csrf": token, "can": _can(actor), "note": note}


def _can(actor: Actor) -> frozenset[str]:
    can = {a.value for a in access.allowed_actions(actor)}
    if not actor.bootstrap and actor.scopes is None:
        can.add("keys.own")
    return frozenset(can)


def _render(request: Request, name: str, page: dict[str, Any], **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, {"page": page, **context})


def _preview(rt: Runtime, data: bytes) -> dict[str, Any]:
    """The probe as a small JPEG data URL with its size, to draw the face boxes on (the
    photo already passed the probe's decoder and its limits; it is never stored)."""
    settings = rt.settings
    image = decode_image(
        data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels
    )
    picture = Image.fromarray(image.pixels)
    width, height = picture.size
    picture.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
    out = io.BytesIO()
    picture.convert("RGB").save(out, "JPEG", quality=80)
    url = "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")
    return {"url": url, "width": width, "height": height}


def _router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("/")
    async def home() -> Response:
        return _redirect(f"{PREFIX}/search")

    # --- signing in and out ---------------------------------------------------------

    @router.get("/signin")
    async def signin_form(request: Request, next: str = f"{PREFIX}/search") -> Response:
        return _render(request, "signin.html", _bare(), next=_local(next), failed=False)

    @router.post("/signin")
    async def signin(
        request: Request,
        name: Annotated[str, Form(max_length=100)],
        password: Annotated[str, Form(max_length=1000)],
        next: Annotated[str, Form()] = f"{PREFIX}/search",
    ) -> Response:
        rt = runtime(request)
        address = client_address(request)
        rt.limits.signin_per_address.check(address)
        rt.limits.signin_per_name.check(name.strip().lower())
        try:
            session = await rt.run(
                sessions.sign_in, name, password, address=address, hours=rt.settings.session_hours
            )
        except AccessDeniedError:
            return _render(
                request, "signin.html", _bare(), next=_local(next), failed=True, status_code=401
            )
        response = _redirect(_local(next))
        set_session_cookie(response, request, session.token, rt.settings.session_hours)
        return response

    @router.post("/signout")
    async def signout(request: Request, csrf: Csrf) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        await rt.run(sessions.sign_out, page["actor"], request.cookies[SESSION_COOKIE])
        response = _redirect(f"{PREFIX}/signin")
        clear_session_cookie(response)
        return response

    # --- search -----------------------------------------------------------------------

    @router.get("/search")
    async def search_form(request: Request) -> Response:
        page = await _signed_in(runtime(request), request)
        return _render(request, "search.html", page, result=None, form={})

    @router.post("/search")
    async def search(
        request: Request,
        csrf: Csrf,
        photo: Photo,
        case_id: Annotated[str, Form(max_length=200)],
        reason: Annotated[str, Form(max_length=2000)],
        top_k: Annotated[int, Form(ge=1, le=100)] = 10,
    ) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        actor = page["actor"]
        rt.limits.search_per_address.check(client_address(request))
        rt.limits.search_per_key.check(actor.key_id or actor.name)
        data = await photo.read()
        probe = await rt.analyse(data)
        result = await rt.run(
            ops.gallery.search, actor, probe, case_id=case_id, reason=reason, top_k=top_k
        )
        form = {"case_id": case_id, "reason": reason, "top_k": top_k}
        return _render(
            request,
            "search.html",
            page,
            result=result.to_dict(),
            preview=_preview(rt, data),
            form=form,
        )

    # --- cases --------------------------------------------------------------------------

    @router.get("/cases")
    async def cases_list(request: Request) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request)
        found = await rt.run(ops.cases.list_cases, page["actor"])
        return _render(request, "cases.html", page, cases=[c.to_dict() for c in found])

    @router.get("/cases/{case_id}")
    async def case_show(request: Request, case_id: str) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request)
        record = await rt.run(ops.cases.show, page["actor"], case_id)
        return _render(request, "case.html", page, case=record.to_dict())

    @router.post("/cases/{case_id}/confirm")
    async def case_confirm(
        request: Request, case_id: str, csrf: Csrf, face_id: Annotated[int, Form()]
    ) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        result = await rt.run(confirm.confirm_match, page["actor"], face_id, case_id)
        return _redirect(f"{PREFIX}/cases/{quote(case_id, safe='')}?note={result.status.value}")

    # --- sources, takedowns and opt-outs -------------------------------------------------

    @router.get("/sources")
    async def sources_list(request: Request) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request)
        return await _sources_page(rt, request, page, None)

    @router.post("/sources")
    async def sources_add(
        request: Request,
        csrf: Csrf,
        name: Annotated[str, Form(max_length=200)],
        lawful_basis: Annotated[str, Form(max_length=2000)],
        kind: Annotated[str, Form()] = "folder",
        jurisdiction: Annotated[str, Form(max_length=20)] = "",
        visibility: Annotated[str, Form()] = "private",
    ) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        await rt.run(
            ops.sources.add,
            page["actor"],
            name,
            lawful_basis=lawful_basis,
            kind=kind,
            jurisdiction=jurisdiction or None,
            visibility=visibility,
        )
        return _redirect(f"{PREFIX}/sources?note=added")

    @router.post("/sources/{name}/block")
    async def sources_block(request: Request, name: str, csrf: Csrf) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        await rt.run(ops.sources.block, page["actor"], name)
        return _redirect(f"{PREFIX}/sources?note=blocked")

    @router.post("/sources/{name}/takedown")
    async def sources_takedown(request: Request, name: str, csrf: Csrf) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        task = await rt.submit(page["actor"], TaskKind.TAKEDOWN_SOURCE, {"source": name})
        return _redirect(f"{PREFIX}/tasks/{task.id}")

    @router.post("/sources/{name}/photos")
    async def sources_upload(
        request: Request, name: str, csrf: Csrf, photos: Annotated[list[UploadFile], File()]
    ) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        files = [(p.filename or f"photo-{n}", await p.read()) for n, p in enumerate(photos)]
        summary = await rt.run(ops.ingest.upload, page["actor"], name, files)
        return await _sources_page(rt, request, page, {"source": name, **summary.to_dict()})

    @router.get("/tasks/{task_id}")
    async def task_show(request: Request, task_id: int) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request)
        task = await rt.run(ops.tasks.show, page["actor"], task_id)
        return _render(request, "task.html", page, task=task.to_dict())

    @router.get("/optout")
    async def optout_form(request: Request) -> Response:
        page = await _signed_in(runtime(request), request)
        return _render(request, "optout.html", page)

    @router.post("/optout")
    async def optout(request: Request, csrf: Csrf, photo: Photo) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        rt.limits.optout_per_address.check(client_address(request))
        task = await rt.submit(page["actor"], TaskKind.OPTOUT, {}, await photo.read())
        return _redirect(f"{PREFIX}/tasks/{task.id}")

    @router.get("/public/optout")
    async def public_optout_form(request: Request) -> Response:
        return _render(request, "public_optout.html", _bare(), receipt=None)

    @router.post("/public/optout")
    async def public_optout(request: Request, photo: Photo) -> Response:
        rt = runtime(request)
        receipt = await rt.public_optout(client_address(request), await photo.read())
        return _render(request, "public_optout.html", _bare(), receipt=receipt.to_dict())

    # --- audit ----------------------------------------------------------------------------

    @router.get("/audit")
    async def audit(request: Request, verify: bool = False, case_id: str = "") -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request)
        actor = page["actor"]
        head = await rt.run(ops.audit.head, actor)
        report = await rt.run(ops.audit.verify, actor) if verify else None
        export = await rt.run(ops.audit.export, actor, case_id) if case_id else None
        return _render(
            request,
            "audit.html",
            page,
            head=head.to_dict(),
            report=report.to_dict() if report else None,
            export=export.to_dict() if export else None,
            case_id=case_id,
        )

    # --- users, keys and organisations ------------------------------------------------

    @router.get("/admin")
    async def admin(request: Request) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request)
        actor, can = page["actor"], page["can"]
        users = await rt.run(access.list_users, actor) if "users.manage" in can else []
        mine = None if "keys.manage" in can else actor.name
        keys = await rt.run(access.list_keys, actor, mine) if "keys.own" in can else []
        orgs = await rt.run(ops.orgs.list_orgs, actor) if "orgs.manage" in can else []
        return _render(
            request,
            "admin.html",
            page,
            users=[u.to_dict() for u in users],
            keys=[k.to_dict() for k in keys],
            orgs=[o.to_dict() for o in orgs],
            roles=[r.value for r in USER_ROLES],
        )

    @router.post("/admin/users")
    async def admin_user_add(
        request: Request,
        csrf: Csrf,
        name: Annotated[str, Form(max_length=100)],
        role: Annotated[str, Form()],
    ) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        issued = await rt.run(access.add_user, page["actor"], name, role)
        return _render(request, "issued.html", page, issued=issued.to_dict(), what="user")

    @router.post("/admin/users/{name}/password")
    async def admin_password(
        request: Request, name: str, csrf: Csrf, password: Annotated[str, Form(max_length=1000)]
    ) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        await rt.run(sessions.set_password, page["actor"], name, password)
        return _redirect(f"{PREFIX}/admin?note=password")

    @router.post("/admin/users/{name}/revoke")
    async def admin_user_revoke(request: Request, name: str, csrf: Csrf) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        await rt.run(access.revoke_user, page["actor"], name)
        return _redirect(f"{PREFIX}/admin?note=revoked")

    @router.post("/admin/keys")
    async def admin_key_add(
        request: Request, csrf: Csrf, user: Annotated[str, Form(max_length=100)]
    ) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        issued = await rt.run(access.issue_key, page["actor"], user)
        return _render(request, "issued.html", page, issued=issued.to_dict(), what="key")

    @router.post("/admin/keys/{key_id}/revoke")
    async def admin_key_revoke(request: Request, key_id: str, csrf: Csrf) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        await rt.run(access.revoke_key, page["actor"], key_id)
        return _redirect(f"{PREFIX}/admin?note=revoked")

    @router.post("/admin/orgs")
    async def admin_org_add(
        request: Request,
        csrf: Csrf,
        name: Annotated[str, Form(max_length=100)],
        admin: Annotated[str, Form(max_length=100)],
    ) -> Response:
        rt = runtime(request)
        page = await _signed_in(rt, request, csrf)
        issued = await rt.run(ops.orgs.add, page["actor"], name, admin=admin)
        return _render(request, "issued.html", page, issued=issued.to_dict(), what="organisation")

    return router


async def _sources_page(
    rt: Runtime, request: Request, page: dict[str, Any], summary: dict[str, Any] | None
) -> HTMLResponse:
    found = await rt.run(ops.sources.list_sources, page["actor"])
    sources = [s.to_dict() for s in found]
    return _render(
        request, "sources.html", page, sources=sources, summary=summary, kinds=SOURCE_KINDS
    )


def _local(url: str) -> str:
    """Where to go after signing in: a page of this UI, never another site."""
    if url.startswith(f"{PREFIX}/") and not url.startswith("//") and "\\" not in url:
        return url
    return f"{PREFIX}/search"
