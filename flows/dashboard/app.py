"""The dashboard web app: read-only pages over the database, rendered on the server.

Binds to 127.0.0.1 by default; on any other address an access token is required (``?token=`` once,
then a cookie, or ``Authorization: Bearer``). It never writes: SQLite connections are query_only and
PostgreSQL sessions read-only.
"""

from __future__ import annotations

import contextlib
import hmac
import math
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from flows.dashboard.charts import scatter, stacked_bars
from storage import dashboard as q
from storage import make_engine

HERE = Path(__file__).parent
VERIFICATIONS = ("asserted", "hedged", "unverified", "denied")


def highlight(text: str, claims: list, focus: int | None) -> Markup:
    """The article text, escaped, with each claim's sentence marked (offsets into the stored text)."""
    out, pos = [], 0
    for claim in sorted(claims, key=lambda c: c.start_char):
        if claim.start_char < pos:
            continue
        out.append(escape(text[pos : claim.start_char]))
        cls = "claim focus" if claim.id == focus else "claim"
        who = escape(claim.claimant or "the outlet")
        out.append(
            Markup(
                f'<mark class="{cls} v-{escape(claim.verification)}" id="claim-{claim.id}" '
                f'title="{who} · {escape(claim.verification)}">'
            )
        )
        out.append(escape(text[claim.start_char : claim.end_char]))
        out.append(Markup("</mark>"))
        pos = claim.end_char
    out.append(escape(text[pos:]))
    return Markup("").join(out)


class TokenGate(BaseHTTPMiddleware):
    def __init__(self, app, token: str | None):
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next):
        if not self.token:
            return await call_next(request)
        offered = (
            request.query_params.get("token")
            or request.cookies.get("claimwire_token")
            or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        )
        if not offered or not hmac.compare_digest(offered, self.token):
            return PlainTextResponse("access token required", status_code=401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie("claimwire_token", self.token, httponly=True, samesite="strict")
        return response


def create_app(db: str | None = None, token: str | None = None) -> Starlette:
    engine = make_engine(db, read_only=True)
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))

    def qs(request: Request, **changes) -> str:
        params = dict(request.query_params)
        params.pop("token", None)
        params.update({k: v for k, v in changes.items() if v is not None})
        for k, v in changes.items():
            if v is None:
                params.pop(k, None)
        return "?" + urlencode(params)

    env.globals.update(qs=qs, verifications=VERIFICATIONS)

    def render(name: str, request: Request, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(request=request, **context))

    async def overview(request: Request) -> Response:
        period = "day" if request.query_params.get("period") == "day" else "week"
        with engine.connect() as conn:
            return render(
                "overview.html",
                request,
                period=period,
                totals=q.totals(conn),
                chart=stacked_bars(q.claims_over_time(conn, period)),
                undated=q.undated_claims(conn),
                claimants=q.top_claimants(conn),
                groups=q.counted_groups(conn),
                health=q.health(conn),
            )

    async def claims(request: Request) -> Response:
        params = request.query_params
        flt = q.ClaimFilter(
            q=params.get("q") or None,
            claimant=params.get("claimant") or None,
            verification=params.get("verification") if params.get("verification") in VERIFICATIONS else None,
            outlet=params.get("outlet") or None,
            origin=params.get("origin") if params.get("origin") in ("seed", "feed", "backfill") else None,
        )
        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        with engine.connect() as conn:
            rows, total = q.claims_page(conn, flt, page)
            return render(
                "claims.html",
                request,
                rows=rows,
                total=total,
                page=page,
                flt=flt,
                pages=max(1, math.ceil(total / q.PAGE_SIZE)),
                outlets=q.outlets(conn),
                claimants=q.top_claimants(conn, 200),
            )

    async def article(request: Request) -> Response:
        try:
            article_id = int(request.path_params["article_id"])
        except ValueError:
            return PlainTextResponse("not found", status_code=404)
        focus = request.query_params.get("claim")
        with engine.connect() as conn:
            row = q.article(conn, article_id)
            if row is None:
                return PlainTextResponse("not found", status_code=404)
            claims_ = q.article_claims(conn, article_id)
            quantities = q.claim_quantities(conn, [c.id for c in claims_])
            original = q.article(conn, row.duplicate_of) if row.duplicate_of else None
        body = highlight(row.text, claims_, int(focus) if focus and focus.isdigit() else None)
        return render(
            "article.html", request, article=row, claims=claims_, body=body, quantities=quantities, original=original
        )

    async def quantities(request: Request) -> Response:
        with engine.connect() as conn:
            groups = q.counted_groups(conn, 30)
            counted = request.query_params.get("counted") or (groups[0][0] if groups else None)
            rows = q.quantities_for(conn, counted) if counted else []
        points = [
            {"date": r.published_at, "value": r.value, "claimant": r.claimant, "text": r.quantity_text} for r in rows
        ]
        return render("quantities.html", request, groups=groups, counted=counted, rows=rows, chart=scatter(points))

    async def health(request: Request) -> Response:
        with engine.connect() as conn:
            return render("health.html", request, health=q.health(conn))

    routes = [
        Route("/", overview),
        Route("/claims", claims),
        Route("/articles/{article_id}", article),
        Route("/quantities", quantities),
        Route("/health", health),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        engine.dispose()  # the server's pooled connections close with it, not at interpreter exit

    app = Starlette(routes=routes, middleware=[Middleware(TokenGate, token=token)], lifespan=lifespan)
    app.state.engine = engine
    return app
