"""The HTTP API: FastAPI routers over the store, and the app that owns its resources."""
