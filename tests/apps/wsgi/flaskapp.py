"""A Flask app (Debian's python3-flask) for tests/integration/test_wsgi.py,
mounted with script_name, so url_for() and redirects must include it."""
import hashlib

from flask import Flask, Response, jsonify, redirect, request, url_for

app = Flask(__name__)


@app.get("/json")
def json_view():
    return jsonify(framework="flask", args=request.args.to_dict(),
                   script_root=request.script_root, path=request.path)


@app.post("/form")
def form():
    return jsonify(form=request.form.to_dict(flat=False))


@app.post("/upload")
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(filename=f.filename, size=len(data),
                   sha256=hashlib.sha256(data).hexdigest(),
                   note=request.form.get("note"))


@app.post("/raw")
def raw():
    data = request.get_data()
    return jsonify(size=len(data), sha256=hashlib.sha256(data).hexdigest())


@app.get("/stream")
def stream():
    def lines():
        for i in range(100):
            yield f"line {i}\n"
    return Response(lines(), mimetype="text/plain")


@app.get("/cookie/set")
def cookie_set():
    resp = redirect(url_for("cookie_get"))
    resp.set_cookie("flavour", "oatmeal")
    resp.set_cookie("count", "3")
    return resp


@app.get("/cookie/get")
def cookie_get():
    return jsonify(cookies=request.cookies.to_dict())


@app.get("/redirect")
def go():
    return redirect(url_for("json_view", came="redirect"))


@app.get("/fail")
def fail():
    raise RuntimeError("flask view failed")
