"""The HTTP API: an application factory over the operations layer.

``create_app(settings)`` builds a FastAPI app whose lifespan opens the gallery's engine
and closes it on shutdown. Every endpoint authenticates the caller's key, parses the
request, calls one operation off the event loop (:meth:`Runtime.run`) and returns its
typed result as JSON; permissions, events and errors are the operations'.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, Query, Request, Response, Security, UploadFile
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from facetrace import operations as ops
from facetrace.api import errors
from facetrace.api.runtime import (
    SESSION_COOKIE,
    Limits,
    Runtime,
    clear_session_cookie,
    client_address,
    runtime,
    set_session_cookie,
)
from facetrace.api.security import TOKEN_HEADER, BodyLimit
from facetrace.app import FaceTrace
from facetrace.config import IndexBackend, Settings
from facetrace.errors import AccessDeniedError, UsageError
from facetrace.governance import access, confirm, retention, sessions
from facetrace.governance.access import Actor
from facetrace.governance.audit import AuditHead
from facetrace.identity import people
from facetrace.operations.tasks import TaskKind
from facetrace.vision.analyzer import FaceAnalyzer
from facetrace.web import pages as web

API_KEY = APIKeyHeader(
    name=TOKEN_HEADER,
    auto_error=False,
    description="An API key (`ftk_<key id>_<secret>`), from `facetrace users add` or "
    "`facetrace keys add`.",
)


async def signed_in(request: Request, _key: str | None = Security(API_KEY)) -> Actor:
    """Dependency: the authenticated actor (401 otherwise)."""
    return await runtime(request).authenticate(request)


SignedIn = Annotated[Actor, Depends(signed_in)]
RT = Annotated[Runtime, Depends(runtime)]


async def _photo(upload: UploadFile) -> bytes:
    """An uploaded photo's bytes (the body is already capped by :class:`BodyLimit`)."""
    return await upload.read()


def _with_thumbnail_urls(result: dict[str, Any]) -> dict[str, Any]:
    """Matches link to their thumbnail on this API, never to a path on the server."""
    for face in result.get("faces", []):
        for match in face.get("matches", []):
            if match.get("thumbnail"):
                match["thumbnail"] = f"/v1/faces/{match['face_id']}/thumbnail"
    return result


# --- request bodies ---------------------------------------------------------------------


class SourceIn(BaseModel):
    name: str = Field(examples=["council-site"])
    lawful_basis: str = Field(examples=["public-interest investigation, case 12"])
    kind: str = Field(default="folder", examples=["url-list"])
    jurisdiction: str | None = Field(default=None, examples=["GB"])
    policy: dict[str, Any] | None = Field(
        default=None,
        examples=[{"allow_hosts": ["council.example"], "max_depth": 1, "rate_limit": 1}],
    )
    visibility: Literal["private", "shared"] = Field(
        default="private",
        description="private: your organisation alone sees what the source collects; "
        "shared: every organisation does.",
    )


class SourcePatch(BaseModel):
    lawful_basis: str | None = Field(default=None, examples=[None])
    jurisdiction: str | None = Field(default=None, examples=["GB"])
    policy: dict[str, Any] | None = Field(
        default=None,
        description="Only the policy fields to change; the others stay.",
        examples=[{"rate_limit": 0.5}],
    )


class UrlsIn(BaseModel):
    urls: list[str] = Field(
        min_length=1, max_length=10_000, examples=[["https://council.example/people/"]]
    )


class TakedownIn(BaseModel):
    source: str | None = Field(default=None, examples=["council-site"])
    host: str | None = Field(default=None, examples=[None])


class ConfirmIn(BaseModel):
    face_id: int = Field(examples=[42])
    case_id: str = Field(examples=["CASE-17"])


class UserIn(BaseModel):
    name: str = Field(examples=["bob"])
    role: str = Field(examples=["investigator"])
    expires_days: float | None = Field(default=None, examples=[90])
    org: str | None = Field(
        default=None,
        description="Organisation to add the user to (platform admins); default: yours.",
        examples=[None],
    )


class OrgIn(BaseModel):
    name: str = Field(examples=["county-police"])
    admin: str = Field(description="User name of its first admin.", examples=["cp-admin"])


class SignInIn(BaseModel):
    name: str = Field(max_length=100, examples=["alice"])
    password: str = Field(max_length=1000, examples=["correct horse battery staple"])


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1000)


class KeyIn(BaseModel):
    user: str = Field(examples=["bob"])
    scopes: list[str] = Field(default_factory=list, examples=[["search"]])
    expires_days: float | None = Field(default=None, examples=[7])


# --- the app ----------------------------------------------------------------------------


def create_app(
    settings: Settings | None = None,
    *,
    analyzer: FaceAnalyzer | None = None,
) -> FastAPI:
    """The API for the gallery in ``settings.home`` (default: settings from the
    environment). ``analyzer`` lets tests share one loaded model."""
    settings = settings if settings is not None else Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = FaceTrace.open(settings, analyzer=analyzer)
        rt = Runtime(engine, settings, Limits.from_settings(settings, engine.store.engine))
        app.state.runtime = rt
        rt.start_tasks()
        try:
            yield
        finally:
            rt.stop_tasks()
            with rt.lock:
                engine.close()

    app = FastAPI(
        title="facetrace",
        version="0.1.0",
        description="Face search with provenance. Every search needs a case ID and a "
        "reason and is audited; matches are investigative leads with a stated "
        "false-match rate, not identifications.",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_upload_bytes)
    errors.install(app, pages=web.error_page)
    _routes(app)
    web.install(app)
    return app


SETTINGS_VARIABLE = "_FACETRACE_SERVE_SETTINGS"
"""How ``facetrace serve --workers N`` hands its settings to each worker process."""


def check_shared(settings: Settings) -> None:
    """Several API processes must share what they read and write: the metadata in
    PostgreSQL and the vectors in Milvus (an embedded index lives in one process's
    memory, and SQLite allows one writer)."""
    if (
        settings.index_backend is not IndexBackend.MILVUS
        or not settings.resolved_database_url.startswith("postgresql")
    ):
        raise UsageError(
            "several API processes need a shared database and index: set "
            "FACETRACE_DATABASE_URL=postgresql+psycopg://... and FACETRACE_INDEX_BACKEND=milvus "
            "(see docs/deploy.md), or serve with one worker"
        )


def from_environment() -> FastAPI:
    """The app of one worker process of ``facetrace serve --workers N`` (a uvicorn
    factory): the settings its parent checked, passed in the environment."""
    settings = Settings.model_validate_json(os.environ[SETTINGS_VARIABLE])
    check_shared(settings)
    return create_app(settings)


def _routes(app: FastAPI) -> None:
    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers (no key needed, nothing about the gallery)."""
        return {"status": "ok"}

    # --- search ---------------------------------------------------------------------

    @app.post("/v1/search", tags=["search"])
    async def search(
        request: Request,
        rt: RT,
        actor: SignedIn,
        photo: Annotated[UploadFile, File(description="The probe photo.")],
        case_id: Annotated[str, Form(min_length=1, examples=["CASE-17"])],
        reason: Annotated[str, Form(min_length=1, examples=["identify the speaker"])],
        top_k: Annotated[int | None, Form(ge=1, le=1000)] = None,
    ) -> dict[str, Any]:
        """Search every face of a photo; matches ranked nearest first, with calibrated
        false-match rates and provenance. Recorded in the audit log before it returns."""
        rt.limits.search_per_address.check(client_address(request))
        rt.limits.search_per_key.check(actor.key_id or actor.name)
        probe = await rt.analyse(await _photo(photo))
        result = await rt.run(
            ops.gallery.search, actor, probe, case_id=case_id, reason=reason, top_k=top_k
        )
        return _with_thumbnail_urls(result.to_dict())

    @app.post("/v1/verify", tags=["search"])
    async def verify(
        request: Request,
        rt: RT,
        actor: SignedIn,
        photo_a: Annotated[UploadFile, File()],
        photo_b: Annotated[UploadFile, File()],
    ) -> dict[str, Any]:
        """Compare the largest face of two photos (1:1)."""
        rt.limits.search_per_address.check(client_address(request))
        rt.limits.search_per_key.check(actor.key_id or actor.name)
        a, b = await _photo(photo_a), await _photo(photo_b)
        return (await rt.run(ops.gallery.verify, actor, a, b)).to_dict()

    @app.get("/v1/faces/{face_id}/thumbnail", tags=["search"], response_class=Response)
    async def face_thumbnail(face_id: int, rt: RT, actor: SignedIn) -> Response:
        """A face's thumbnail (JPEG)."""
        data = await rt.run(ops.gallery.thumbnail, actor, face_id)
        return Response(data, media_type="image/jpeg")

    @app.get("/v1/stats", tags=["gallery"])
    async def stats(rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Counts of sources, photos, faces and indexed vectors."""
        return (await rt.run(ops.gallery.stats, actor)).to_dict()

    @app.get("/v1/people", tags=["gallery"])
    async def people_list(
        rt: RT, actor: SignedIn, limit: Annotated[int, Query(ge=1, le=1000)] = 50
    ) -> list[dict[str, Any]]:
        """The people faces are grouped into, largest first."""
        return [p.to_dict() for p in await rt.run(people.list_people, actor, limit)]

    @app.get("/v1/people/{person_id}", tags=["gallery"])
    async def people_show(person_id: int, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """One person: faces, photos and sources."""
        return (await rt.run(people.show, actor, person_id)).to_dict()

    # --- sources and ingest -------------------------------------------------------------

    @app.get("/v1/sources", tags=["sources"])
    async def sources_list(rt: RT, actor: SignedIn) -> list[dict[str, Any]]:
        """The sources your organisation sees: its own and the shared ones."""
        return [s.to_dict() for s in await rt.run(ops.sources.list_sources, actor)]

    @app.post("/v1/sources", tags=["sources"], status_code=201)
    async def sources_add(body: SourceIn, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Register a source with its lawful basis and collection policy."""
        record = await rt.run(
            ops.sources.add,
            actor,
            body.name,
            lawful_basis=body.lawful_basis,
            kind=body.kind,
            jurisdiction=body.jurisdiction,
            policy=body.policy,
            visibility=body.visibility,
        )
        return record.to_dict()

    @app.get("/v1/sources/{name}", tags=["sources"])
    async def sources_show(name: str, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """One source, with its policy."""
        return (await rt.run(ops.sources.show, actor, name)).to_dict()

    @app.patch("/v1/sources/{name}", tags=["sources"])
    async def sources_update(
        name: str, body: SourcePatch, rt: RT, actor: SignedIn
    ) -> dict[str, Any]:
        """Change some of a source's settings; the others stay. Audited."""
        record = await rt.run(
            ops.sources.update,
            actor,
            name,
            lawful_basis=body.lawful_basis,
            jurisdiction=body.jurisdiction,
            policy_changes=body.policy,
        )
        return record.to_dict()

    @app.post("/v1/sources/{name}/block", tags=["sources"])
    async def sources_block(name: str, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Stop collecting from a source (what it yielded stays until a takedown)."""
        return (await rt.run(ops.sources.block, actor, name)).to_dict()

    @app.post("/v1/sources/{name}/photos", tags=["sources"])
    async def sources_upload(
        name: str,
        rt: RT,
        actor: SignedIn,
        photos: Annotated[list[UploadFile], File(description="Photos to ingest.")],
    ) -> dict[str, Any]:
        """Ingest uploaded photos into a source; per-photo errors are in the summary."""
        files = [(p.filename or f"photo-{n}", await _photo(p)) for n, p in enumerate(photos)]
        return (await rt.run(ops.ingest.upload, actor, name, files)).to_dict()

    @app.post("/v1/sources/{name}/urls", tags=["sources"], status_code=202)
    async def sources_urls(name: str, body: UrlsIn, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Start fetching image and page URLs into a source (within its policy, obeying
        robots.txt), as an ingest job; poll the task for its summary."""
        task = await rt.submit(actor, TaskKind.INGEST_URLS, {"source": name, "urls": body.urls})
        return task.to_dict()

    @app.get("/v1/jobs", tags=["sources"])
    async def jobs_list(rt: RT, actor: SignedIn) -> list[dict[str, Any]]:
        """The most recent ingest jobs."""
        return [j.to_dict() for j in await rt.run(ops.ingest.jobs, actor)]

    @app.get("/v1/jobs/{job_id}", tags=["sources"])
    async def jobs_show(job_id: int, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """One ingest job with every item's error."""
        return (await rt.run(ops.ingest.job, actor, job_id)).to_dict()

    # --- governance -------------------------------------------------------------------

    @app.post("/v1/takedowns", tags=["governance"], status_code=202)
    async def takedowns(body: TakedownIn, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Start a takedown: delete everything derived only from a source or host and
        block it for good. Poll the task for the deletion receipt."""
        if (body.source is None) == (body.host is None):
            raise UsageError("give exactly one of source or host")
        if body.source is not None:
            task = await rt.submit(actor, TaskKind.TAKEDOWN_SOURCE, {"source": body.source})
        else:
            task = await rt.submit(actor, TaskKind.TAKEDOWN_HOST, {"host": body.host})
        return task.to_dict()

    @app.post("/v1/optout", tags=["governance"], status_code=202)
    async def optout_request(
        request: Request,
        rt: RT,
        actor: SignedIn,
        photo: Annotated[UploadFile, File(description="A photo of the person.")],
    ) -> dict[str, Any]:
        """Start an opt-out: delete a person's faces and keep them out of future ingests
        and searches. Poll the task for the receipt (the same shape whatever matched)."""
        rt.limits.optout_per_address.check(client_address(request))
        data = await _photo(photo)
        return (await rt.submit(actor, TaskKind.OPTOUT, {}, data)).to_dict()

    @app.get("/v1/tasks/{task_id}", tags=["governance"])
    async def task_show(task_id: int, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """A task's status, and its receipt, summary or error once it has run."""
        return (await rt.run(ops.tasks.show, actor, task_id)).to_dict()

    @app.post("/v1/confirmations", tags=["governance"])
    async def confirmations(body: ConfirmIn, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Propose, or (as a second user) confirm, a match as an identification."""
        return (await rt.run(confirm.confirm_match, actor, body.face_id, body.case_id)).to_dict()

    @app.post("/v1/retention/run", tags=["governance"])
    async def retention_run(rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Delete every sighting older than its source's retention period."""
        return (await rt.run(retention.run_retention, actor)).to_dict()

    @app.get("/v1/audit/head", tags=["audit"])
    async def audit_head(rt: RT, actor: SignedIn) -> dict[str, Any]:
        """The log's head (count and hash): keep it outside the system."""
        return (await rt.run(ops.audit.head, actor)).to_dict()

    @app.get("/v1/audit/verify", tags=["audit"])
    async def audit_verify(
        rt: RT,
        actor: SignedIn,
        anchor_count: Annotated[int | None, Query(ge=0)] = None,
        anchor_hash: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        """Check the chain, and that it passes through a head saved earlier if given."""
        anchor = None
        if anchor_count is not None and anchor_hash:
            anchor = AuditHead.from_dict({"count": anchor_count, "hash": anchor_hash})
        return (await rt.run(ops.audit.verify, actor, anchor)).to_dict()

    @app.get("/v1/audit/export", tags=["audit"])
    async def audit_export(
        rt: RT, actor: SignedIn, case_id: Annotated[str, Query(min_length=1)]
    ) -> dict[str, Any]:
        """One case's entries with their hashes; the export is audited."""
        return (await rt.run(ops.audit.export, actor, case_id)).to_dict()

    @app.get("/v1/cases", tags=["cases"])
    async def cases_list(rt: RT, actor: SignedIn) -> list[dict[str, Any]]:
        """Your organisation's cases with a search or a confirmation, latest first."""
        return [c.to_dict() for c in await rt.run(ops.cases.list_cases, actor)]

    @app.get("/v1/cases/{case_id}", tags=["cases"])
    async def cases_show(case_id: str, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """One case: its searches (who, when, why, the probe's SHA-256) with their
        matches' provenance and calibrated false-match rates, its confirmations, and
        the audit chain's head and check."""
        return (await rt.run(ops.cases.show, actor, case_id)).to_dict()

    @app.get("/v1/cases/{case_id}/report", tags=["cases"], response_class=Response)
    async def cases_report(case_id: str, rt: RT, actor: SignedIn) -> Response:
        """The case report (PDF), with the audit chain's head and how to check it;
        making it is audited."""
        pdf = await rt.run(ops.cases.report, actor, case_id)
        name = ops.cases.report_filename(case_id)
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # --- users and keys -----------------------------------------------------------------

    @app.get("/v1/users", tags=["access"])
    async def users_list(rt: RT, actor: SignedIn) -> list[dict[str, Any]]:
        """Users and their roles."""
        return [u.to_dict() for u in await rt.run(access.list_users, actor)]

    @app.post("/v1/users", tags=["access"], status_code=201)
    async def users_add(body: UserIn, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Create a user; the response holds their first key, shown once."""
        issued = await rt.run(
            access.add_user,
            actor,
            body.name,
            body.role,
            expires_days=body.expires_days,
            org=body.org,
        )
        return issued.to_dict()

    @app.get("/v1/orgs", tags=["access"])
    async def orgs_list(rt: RT, actor: SignedIn) -> list[dict[str, Any]]:
        """Organisations (platform admins)."""
        return [o.to_dict() for o in await rt.run(ops.orgs.list_orgs, actor)]

    @app.post("/v1/orgs", tags=["access"], status_code=201)
    async def orgs_add(body: OrgIn, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Create an organisation and its first admin (platform admins); the response
        holds the admin's first key, shown once."""
        issued = await rt.run(ops.orgs.add, actor, body.name, admin=body.admin)
        return issued.to_dict()

    @app.delete("/v1/users/{name}", tags=["access"], status_code=204)
    async def users_revoke(name: str, rt: RT, actor: SignedIn) -> Response:
        """Revoke a user and all their keys at once."""
        await rt.run(access.revoke_user, actor, name)
        return Response(status_code=204)

    @app.get("/v1/keys", tags=["access"])
    async def keys_list(
        rt: RT, actor: SignedIn, user: Annotated[str | None, Query()] = None
    ) -> list[dict[str, Any]]:
        """Keys (never their secrets): everyone's for key managers, else one's own."""
        return [k.to_dict() for k in await rt.run(access.list_keys, actor, user)]

    @app.post("/v1/keys", tags=["access"], status_code=201)
    async def keys_add(body: KeyIn, rt: RT, actor: SignedIn) -> dict[str, Any]:
        """Issue a key (users may issue their own); the token is shown once."""
        issued = await rt.run(
            access.issue_key, actor, body.user, scopes=body.scopes, expires_days=body.expires_days
        )
        return issued.to_dict()

    @app.delete("/v1/keys/{key_id}", tags=["access"], status_code=204)
    async def keys_revoke(key_id: str, rt: RT, actor: SignedIn) -> Response:
        """Revoke a key, effective on its next use."""
        await rt.run(access.revoke_key, actor, key_id)
        return Response(status_code=204)

    # --- people sign in ------------------------------------------------------------------

    @app.post("/v1/session", tags=["access"])
    async def sign_in(
        body: SignInIn, request: Request, response: Response, rt: RT
    ) -> dict[str, Any]:
        """Sign in with a name and password: sets an HttpOnly session cookie and returns
        the CSRF token that every state-changing request with the cookie must send in
        the X-CSRF-Token header."""
        address = client_address(request)
        rt.limits.signin_per_address.check(address)
        rt.limits.signin_per_name.check(body.name.strip().lower())
        try:
            session = await rt.run(
                sessions.sign_in,
                body.name,
                body.password,
                address=address,
                hours=rt.settings.session_hours,
            )
        except AccessDeniedError as exc:
            raise errors.Unauthenticated(str(exc).removeprefix("access denied: ")) from None
        set_session_cookie(response, request, session.token, rt.settings.session_hours)
        return session.to_dict()

    @app.delete("/v1/session", tags=["access"], status_code=204)
    async def sign_out(request: Request, rt: RT, actor: SignedIn) -> Response:
        """End this session and clear its cookie."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await rt.run(sessions.sign_out, actor, token)
        response = Response(status_code=204)
        clear_session_cookie(response)
        return response

    @app.put("/v1/users/{name}/password", tags=["access"], status_code=204)
    async def users_password(name: str, body: PasswordIn, rt: RT, actor: SignedIn) -> Response:
        """Set a user's password (admins; anyone their own). Ends their sessions."""
        await rt.run(sessions.set_password, actor, name, body.password)
        return Response(status_code=204)

    # --- the public ---------------------------------------------------------------------

    @app.post("/v1/public/optout", tags=["public"])
    async def public_optout(
        request: Request,
        rt: RT,
        photo: Annotated[UploadFile, File(description="A clear photo of your face.")],
    ) -> dict[str, Any]:
        """Ask to be removed, without an account: your faces are deleted and future
        photos of you are neither stored nor returned by searches. The answer has the
        same shape, and comes after the same time, whether or not you were found."""
        return (await rt.public_optout(client_address(request), await _photo(photo))).to_dict()

    @app.get("/v1/index", tags=["gallery"])
    async def index_stats(rt: RT, actor: SignedIn) -> dict[str, Any]:
        """The vector index: backend, structure, counts and sizes."""
        return await rt.run(ops.index.stats, actor)
