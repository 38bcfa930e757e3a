"""A Flask app (Debian's python3-flask) for tests/integration/test_flask.py:
routes with converters, a form POST, JSON in and out, an error handler,
a streamed response, a redirect with url_for."""
import threading
import time

import _xxsubinterpreters
from flask import Flask, Response, abort, jsonify, redirect, request, stream_with_context, url_for

app = Flask(__name__)


class Teapot(Exception):
    pass


@app.route("/")
def index():
    return "flask says hello"


@app.route("/user/<name>/<int:n>")
def user(name, n):
    return jsonify(name=name, n=n, double=2 * n, script_root=request.script_root,
                   path=request.path, url=url_for("user", name=name, n=n))


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "GET":
        return '<form method="post"><input name="title"><input name="tags"></form>'
    return jsonify(title=request.form["title"], tags=request.form.getlist("tags"),
                   files=sorted(request.files))


@app.route("/api/sum", methods=["POST"])
def api_sum():
    data = request.get_json()
    if not isinstance(data, dict) or not isinstance(data.get("numbers"), list):
        abort(400, "expected {\"numbers\": [...]}")
    return jsonify(sum=sum(data["numbers"]), count=len(data["numbers"])), 201


@app.route("/teapot")
def teapot():
    raise Teapot("short and stout")


@app.errorhandler(Teapot)
def handle_teapot(e):
    return jsonify(error="teapot", detail=str(e)), 418


@app.errorhandler(404)
def not_found(e):
    return jsonify(error="not found", path=request.path), 404


@app.route("/crash")
def crash():
    raise RuntimeError("flask crash marker")


@app.route("/stream")
def stream():
    n = int(request.args.get("n", "3"))

    @stream_with_context
    def gen():
        for i in range(n):
            yield "line %d of %s\n" % (i, request.args.get("tag", "-"))
            time.sleep(0.01)
    return Response(gen(), mimetype="text/plain")


@app.route("/go")
def go():
    return redirect(url_for("user", name="redirected", n=7))


@app.route("/interp")
def interp():
    return jsonify(interp=int(_xxsubinterpreters.get_current()),
                   thread=threading.get_ident())
