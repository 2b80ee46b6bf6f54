"""The versioned HTTP API (``/api/v1``): a thin FastAPI layer over camsight's library.

:func:`camsight.api.app.create_app` builds the application; :func:`camsight.api.app.serve`
runs it with uvicorn (what ``camsight run`` calls).
"""
