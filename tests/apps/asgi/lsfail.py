"""Apps whose lifespan fails, for the start-up failure tests."""


async def raises(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("database unreachable")


async def refuses(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no config found"})


async def nolifespan(scope, receive, send):
    if scope["type"] == "lifespan":
        raise TypeError("only http here")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"fine"})
