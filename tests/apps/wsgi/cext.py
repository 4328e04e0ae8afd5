"""An app that needs CPython's C extension modules, which are shared objects
not linked against libpython: they load only if the embedding made
libpython's symbols global (else "undefined symbol: Py...")."""
import _decimal
import _hashlib
import _json
import _sqlite3
import _ssl
import decimal
import hashlib
import json
import sqlite3
import ssl

import markupsafe   # its _speedups is a C extension too (python3-markupsafe)


def application(environ, start_response):
    db = sqlite3.connect(":memory:")
    (two,) = db.execute("select 1 + 1").fetchone()
    db.close()
    out = {
        "files": {m.__name__: m.__file__ for m in (_decimal, _hashlib, _json, _sqlite3, _ssl)},
        "decimal": str(decimal.Decimal("1.10") + decimal.Decimal("2.20")),
        "decimal_is_c": decimal.Decimal is _decimal.Decimal,
        "json_c_encoder": json.encoder.c_make_encoder is not None,
        "sha256": hashlib.sha256(b"abc").hexdigest(),
        "openssl": ssl.OPENSSL_VERSION,
        "sqlite": two,
        "markupsafe": str(markupsafe.escape("<a>")),
    }
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
