"""An app whose import fails: tutti must not start (exit 2), and say why."""
import not_installed_dependency_xyz  # noqa: F401


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"never"]
