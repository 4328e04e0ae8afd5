"""Starlette (Debian's python3-starlette) on tutti's asgi module."""
import contextlib
import hashlib
import os

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute

STATE = os.environ.get("ASGI_TEST_STATE", "/tmp")


@contextlib.asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from lifespan"}


async def home(request):
    return JSONResponse({"hello": "world", "path": request.url.path,
                         "greeting": request.state.greeting})


async def stream(request):
    async def gen():
        for i in range(5):
            yield ("line %d\n" % i).encode()
    return StreamingResponse(gen(), media_type="text/plain")


async def upload(request):
    h, n = hashlib.sha256(), 0
    async for chunk in request.stream():
        h.update(chunk)
        n += len(chunk)
    return JSONResponse({"sha256": h.hexdigest(), "len": n})


def later(token):
    with open(os.path.join(STATE, "background"), "a") as f:
        f.write(token + "\n")


async def background(request):
    token = request.query_params["t"]
    return PlainTextResponse("queued", background=BackgroundTask(later, token))


async def echo(ws):
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text("star:" + text)


app = Starlette(routes=[Route("/", home), Route("/stream", stream),
                        Route("/upload", upload, methods=["POST"]),
                        Route("/background", background), WebSocketRoute("/ws", echo)],
                lifespan=lifespan)
