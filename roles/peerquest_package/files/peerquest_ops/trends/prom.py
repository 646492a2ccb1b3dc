"""Prometheus' HTTP API, read only.

    client = Client(base_url, timeout=30)
    client.instant("up")                                  # [{"metric": {...}, "value": float}]
    client.range("up", start, end, step)                  # [{"metric": {...}, "values": [(t, float), ...]}]
    client.alerting_rules()                               # [{"name", "labels", "query"}] from /api/v1/rules

Every failure (no answer, an HTTP error, status "error" in the body) raises
PromError naming the query, never the URL's credentials.
"""

import json
import math
import urllib.parse

from peerquest_ops.core import http


class PromError(Exception):
    """Prometheus did not answer a query."""


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


class Client:
    def __init__(self, base_url, timeout=30):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path, params, what):
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}" if params else self.base_url + path
        try:
            status, text = http.request(url, timeout=self.timeout)
        except http.HttpError as exc:
            raise PromError(f"{what}: no answer from Prometheus ({exc})") from None
        try:
            body = json.loads(text)
        except ValueError:
            raise PromError(f"{what}: {http.status_text(status)}, not a JSON answer") from None
        if status != 200 or body.get("status") != "success":
            raise PromError(f"{what}: {http.status_text(status)}: {body.get('error') or body.get('status')}")
        return body["data"]

    def instant(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params, expr)
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": _number(data["result"][1])}]
        return [{"metric": r.get("metric", {}), "value": _number(r["value"][1])} for r in data.get("result", [])]

    def range(self, expr, start, end, step):
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params, expr)
        return [
            {"metric": r.get("metric", {}), "values": [(float(t), _number(v)) for t, v in r.get("values", [])]}
            for r in data.get("result", [])
        ]

    def alerting_rules(self):
        data = self._get("/api/v1/rules", {"type": "alert"}, "alerting rules")
        return [
            {"name": rule.get("name", ""), "labels": rule.get("labels", {}), "query": rule.get("query", "")}
            for group in data.get("groups", [])
            for rule in group.get("rules", [])
            if rule.get("type") == "alerting"
        ]
