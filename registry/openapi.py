"""The OpenAPI 3 document, generated from the views' schemas, and a browsable page."""
from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response, current_app, jsonify

from registry.fields import field2property_hook

bp = Blueprint("openapi", __name__)

_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_PROBLEM = {"description": "Problem (RFC 9457)",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _schema_name(schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    partial = not isinstance(schema, type) and schema.partial
    return cls.__name__ + ("Patch" if partial else "")


def build_spec(app) -> dict:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title="Sagip API", version="1", openapi_version="3.0.3", plugins=[plugin],
                   info={"description": "Crisis repatriation and migrant registry. Every call but this document "
                                        "and /healthz, /readyz needs `Authorization: Bearer <token>`."})
    plugin.converter.add_attribute_function(lambda self, field, **kw: field2property_hook(field))
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", {"type": "object", "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "code": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True}}})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        meta = getattr(view, "openapi", None)
        if meta is None or not rule.rule.startswith("/api/"):
            continue
        path = _PARAM.sub(r"{\1}", rule.rule)
        parameters = [{"in": "path", "name": name, "required": True, "schema": {"type": "string", "format": "uuid"}}
                      for name in _PARAM.findall(rule.rule)]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation = {"summary": meta["summary"], "description": meta["description"],
                         "parameters": list(parameters), "responses": {}}
            if meta["query"] is not None:
                operation["parameters"].append({"in": "query", "schema": meta["query"]})
            if meta["body"] is not None:
                operation["requestBody"] = {"required": True,
                                            "content": {"application/json": {"schema": meta["body"]}}}
            ok = {"description": "OK"}
            if meta["response"] is not None:
                ok["content"] = {"application/json": {"schema": meta["response"]}}
            operation["responses"][str(meta["status"])] = ok
            for status in (401, 403) + tuple(meta["errors"]):
                operation["responses"][str(status)] = _PROBLEM
            if getattr(view, "permission", None):
                operation["security"] = [{"bearer": []}]
                operation["x-permission"] = view.permission
            spec.path(path=path, operations={method.lower(): operation})
    return spec.to_dict()


@bp.get("/openapi.json")
def openapi_document():
    cache = current_app.extensions.setdefault("sagip_openapi", build_spec(current_app))
    return jsonify(cache)


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sagip API</title>
<style>body{font:15px/1.4 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
h2{margin-top:2rem}code{background:#f3f3f3;padding:0 .2em}.op{border-left:4px solid #36c;margin:1rem 0;padding:.2rem 1rem}
.m{font-weight:bold;text-transform:uppercase;margin-right:.5em}pre{background:#f7f7f7;padding:.5rem;overflow:auto}</style>
</head><body><h1>Sagip API v1</h1><p>Generated from <a href="openapi.json">openapi.json</a>.
Works offline: no external scripts.</p><div id="ops"></div>
<script>
fetch("openapi.json").then(r => r.json()).then(spec => {
  const out = document.getElementById("ops");
  for (const [path, ops] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(ops)) {
    const div = document.createElement("div"); div.className = "op";
    const h = document.createElement("h3");
    h.innerHTML = '<span class="m"></span><code></code>';
    h.querySelector(".m").textContent = method; h.querySelector("code").textContent = path;
    const p = document.createElement("p"); p.textContent = op.summary + (op.description ? " — " + op.description : "");
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify({permission: op["x-permission"], body: op.requestBody, responses: Object.keys(op.responses)}, null, 1);
    div.append(h, p, pre); out.append(div);
  }
  const schemas = document.createElement("pre"); schemas.textContent = JSON.stringify(spec.components.schemas, null, 1);
  const h2 = document.createElement("h2"); h2.textContent = "Schemas"; out.append(h2, schemas);
});
</script></body></html>"""


@bp.get("/docs")
def docs_page():
    return Response(_DOCS_PAGE, mimetype="text/html")
