"""A Bottle app (Debian's python3-bottle) for tests/integration/test_wsgi.py."""
import bottle

app = bottle.Bottle()


@app.get("/hello/<name>")
def hello(name):
    return f"Hello from bottle, {name}!"


@app.post("/echo")
def echo():
    bottle.response.content_type = "application/octet-stream"
    return bottle.request.body.read()


@app.get("/json")
def as_json():
    return {"framework": "bottle", "q": bottle.request.query.get("q")}
