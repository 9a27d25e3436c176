"""Serves the browser UI: the static `frontend/` folder at `/` and Plotly.js from the installed `plotly` package.

No Node build step: the UI is plain ES modules, and Plotly.js comes from the Python package that bundles it.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
PLOTLY_URL = "/vendor/plotly.min.js"


def plotly_js_path() -> Path:
    """The plotly.min.js bundled with the `plotly` Python package (a server extra in pyproject.toml)."""
    try:
        import plotly
    except ImportError:
        raise RuntimeError("the UI needs the `plotly` package: pip install -e '.[server]'") from None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: reinstall the `plotly` package (it bundles plotly.min.js)")
    return path


class _NoStoreStatic(StaticFiles):
    # The UI is a handful of small modules: always revalidate, so an upgraded server never mixes old and new modules.
    async def get_response(self, path, scope):
        response = await super().get_response(path, scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response


def mount_frontend(app: FastAPI, directory: str | Path | None = None) -> None:
    """Add `/vendor/plotly.min.js` and the static UI at `/`; call it after the API routers (the mount at `/` is
    a catch-all, so it must come last)."""
    root = Path(directory) if directory else FRONTEND_DIR
    if not (root / "index.html").is_file():
        raise RuntimeError(f"{root}/index.html not found: set NASFORGE_FRONTEND_DIR to the UI folder (frontend/ in the repo)")
    plotly_path = plotly_js_path()

    @app.get(PLOTLY_URL, include_in_schema=False)
    def plotly_js() -> FileResponse:
        if not plotly_path.is_file():
            raise HTTPException(404, f"{plotly_path} disappeared; reinstall the `plotly` package")
        # The file changes only with the package version, so browsers may keep it for a day.
        return FileResponse(plotly_path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/", _NoStoreStatic(directory=root, html=True), name="frontend")
