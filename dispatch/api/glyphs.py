"""GET /glyphs/{fontstack}/{start}-{end}.pbf: the map labels' glyph ranges (dispatch.glyphs),
open to anyone like the page bundle, and cached by the browser for a day."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response

from dispatch.glyphs import FontMissingError, GlyphError, GlyphRanges, UnknownFontstackError

router = APIRouter(tags=["map"])


def install(app: FastAPI) -> None:
    """The route, with the app's own cache of rendered ranges."""
    app.state.glyphs = GlyphRanges()
    app.include_router(router)


@router.get(
    "/glyphs/{fontstack}/{glyph_range}.pbf", response_class=Response, include_in_schema=False
)
def glyph_range_pbf(fontstack: str, glyph_range: str, request: Request) -> Response:
    ranges: GlyphRanges = request.app.state.glyphs
    try:
        body = ranges.range_pbf(fontstack, glyph_range)
    except UnknownFontstackError as error:
        raise HTTPException(404, str(error)) from error
    except GlyphError as error:
        raise HTTPException(422, str(error)) from error
    except FontMissingError as error:
        raise HTTPException(503, str(error)) from error
    return Response(
        body,
        media_type="application/x-protobuf",
        headers={"cache-control": "public, max-age=86400"},
    )
