"""Raw ASGI hello for bench/run (scenario asgi): 13 bytes with a length."""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return                      # lifespan: not supported, as in most raw apps
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, World!"})
