"""The live server of the browser tests (a real app under uvicorn), for the websocket faults."""

from tests.e2e.conftest import live_server as live_server
