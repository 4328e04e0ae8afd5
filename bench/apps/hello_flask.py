# The same answer through Flask (Debian's python3-flask): routing, request
# and response objects on top of the server's WSGI layer (bench/run wsgi).
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, world!\n", 200, {"Content-Type": "text/plain"}
