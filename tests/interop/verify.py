"""PyJWT on Latchkey's tokens, unmodified: the JWKS read with PyJWKSet (as
PyJWKClient does after fetching it), the key chosen by the token's kid, then
jwt.decode with the issuer, audience and ES256 only. Called by
tests/tests/interop.rs as `python tests/interop/verify.py DIR` (DIR as for
verify.mjs); prints {"pyjwt": {name: "ok" | error}, "versions": {"pyjwt": ...}}."""

import json
import sys
from pathlib import Path

import jwt

directory = Path(sys.argv[1])
jwks = jwt.PyJWKSet.from_dict(json.loads((directory / "jwks.json").read_text()))
params = json.loads((directory / "params.json").read_text())
tokens = json.loads((directory / "tokens.json").read_text())

results = {}
for name, token in tokens.items():
    try:
        key = jwks[jwt.get_unverified_header(token)["kid"]]
        jwt.decode(
            token,
            key.key,
            algorithms=["ES256"],
            audience=params["audience"],
            issuer=params["issuer"],
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
        )
        results[name] = "ok"
    except Exception as error:  # every refusal is reported, not raised
        results[name] = f"{type(error).__name__}: {error}"
print(json.dumps({"pyjwt": results, "versions": {"pyjwt": jwt.__version__}}))
