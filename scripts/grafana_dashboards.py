#!/usr/bin/env python3
"""Writes dashboards/llmtap-prometheus.json and dashboards/llmtap-api.json (Grafana).

The panels are written here once, as data, rather than edited in Grafana's JSON by hand;
`DashboardsTests` checks that every metric and API path they use exists.
"""
import json
import os

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dashboards")

def ts_panel(id, title, exprs, unit, x, y, w=12, h=8, legend="{{model}}", stack=False):
    return {"id": id, "type": "timeseries", "title": title, "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit, "custom": {"stacking": {"mode": "normal" if stack else "none"}, "fillOpacity": 20 if stack else 0}}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
            "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": l} for i, (e, l) in enumerate(exprs)]}
def stat(id, title, expr, unit, x, y, w=6, h=4):
    return {"id": id, "type": "stat", "title": title, "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"x": x, "y": y, "w": w, "h": h}, "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"},
            "targets": [{"refId": "A", "expr": expr}]}
r = "[$__rate_interval]"
panels = [
    stat(1, "Calls/s", f"sum(rate(llmtap_calls_total{r}))", "reqps", 0, 0),
    stat(2, "Error ratio", f"sum(rate(llmtap_calls_total{{outcome!=\"ok\"}}{r})) / sum(rate(llmtap_calls_total{r}))", "percentunit", 6, 0),
    stat(3, "Spend in range", "sum(increase(llmtap_cost_usd_total[$__range]))", "currencyUSD", 12, 0),
    stat(4, "Unpriced calls in range", "sum(increase(llmtap_unpriced_calls_total[$__range]))", "short", 18, 0),
    ts_panel(5, "Calls/s by model and outcome", [(f"sum by (model, outcome) (rate(llmtap_calls_total{r}))", "{{model}} {{outcome}}")], "reqps", 0, 4),
    ts_panel(6, "Spend rate by model ($/hour)", [(f"sum by (model) (rate(llmtap_cost_usd_total{r})) * 3600", "{{model}}")], "currencyUSD", 12, 4, stack=True),
    ts_panel(7, "Latency p50 / p95 by model", [
        (f"histogram_quantile(0.5, sum by (le, model) (rate(llmtap_call_latency_seconds_bucket{r})))", "p50 {{model}}"),
        (f"histogram_quantile(0.95, sum by (le, model) (rate(llmtap_call_latency_seconds_bucket{r})))", "p95 {{model}}")], "s", 0, 12),
    ts_panel(8, "Time to first token p50 / p95 by model", [
        (f"histogram_quantile(0.5, sum by (le, model) (rate(llmtap_time_to_first_token_seconds_bucket{r})))", "p50 {{model}}"),
        (f"histogram_quantile(0.95, sum by (le, model) (rate(llmtap_time_to_first_token_seconds_bucket{r})))", "p95 {{model}}")], "s", 12, 12),
    ts_panel(9, "Tokens/s by model and direction", [(f"sum by (model, direction) (rate(llmtap_tokens_total{r}))", "{{model}} {{direction}}")], "short", 0, 20),
    ts_panel(10, "Mean latency by model", [(f"sum by (model) (rate(llmtap_call_latency_seconds_sum{r})) / sum by (model) (rate(llmtap_call_latency_seconds_count{r}))", "{{model}}")], "s", 12, 20),
    ts_panel(11, "Recorder: queue, spool, dropped, failed writes", [
        ("llmtap_recorder_queue_depth", "queued"), ("llmtap_recorder_spooled_calls", "spooled"),
        ("llmtap_recorder_dropped_calls", "dropped"), ("llmtap_recorder_failed_writes", "failed writes")], "short", 0, 28),
    ts_panel(12, "Recorder: written calls/s and database health", [
        (f"rate(llmtap_recorder_written_calls{r})", "written/s"), ("llmtap_database_healthy", "database healthy (1 = yes)")], "short", 12, 28),
    ts_panel(13, "Inter-token latency p50 / p95 by model", [
        (f"histogram_quantile(0.5, sum by (le, model) (rate(llmtap_inter_token_latency_seconds_bucket{r})))", "p50 {{model}}"),
        (f"histogram_quantile(0.95, sum by (le, model) (rate(llmtap_inter_token_latency_seconds_bucket{r})))", "p95 {{model}}")], "s", 0, 36),
    ts_panel(14, "What llmtap adds: proxy overhead p50 / p99, upstream calls in flight", [
        (f"histogram_quantile(0.5, sum by (le) (rate(llmtap_proxy_overhead_seconds_bucket{r})))", "overhead p50"),
        (f"histogram_quantile(0.99, sum by (le) (rate(llmtap_proxy_overhead_seconds_bucket{r})))", "overhead p99"),
        ("llmtap_upstream_requests_in_flight", "upstream calls in flight"), ("llmtap_recorder_mean_batch_size", "mean recorder batch")], "short", 12, 36),
]
prom = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
    "title": "llmtap — traffic, latency, spend (Prometheus)", "uid": "llmtap-prometheus", "schemaVersion": 39, "version": 1,
    "tags": ["llmtap"], "time": {"from": "now-6h", "to": "now"}, "refresh": "30s", "editable": True,
    "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus", "current": {}}]},
    "panels": panels,
}
json.dump(prom, open(os.path.join(HERE, "llmtap-prometheus.json"), "w"), indent=2)

def infinity(id, title, kind, path, root, columns, x, y, w=12, h=8, options=None):
    url = "${llmtap_api}" + path
    return {"id": id, "type": kind, "title": title, "datasource": {"type": "yesoreyeram-infinity-datasource", "uid": "${datasource}"},
            "gridPos": {"x": x, "y": y, "w": w, "h": h}, "options": options or {}, "fieldConfig": {"defaults": {}, "overrides": []},
            "targets": [{"refId": "A", "type": "json", "source": "url", "format": "table", "url": url, "root_selector": root,
                         "url_options": {"method": "GET", "headers": [{"key": "Authorization", "value": "Bearer ${llmtap_token}"}]},
                         "columns": [{"selector": s, "text": t, "type": ty} for s, t, ty in columns]}]}
rng = "from=${__from:date:seconds}&to=${__to:date:seconds}"
cost_cols = lambda key: [("key", key, "string"), ("cost_usd", "cost (USD)", "number"), ("requests", "calls", "number"),
                         ("input_tokens", "tokens in", "number"), ("output_tokens", "tokens out", "number"), ("unpriced_requests", "unpriced calls", "number")]
api_panels = [
    infinity(1, "Spend in range (USD)", "stat", f"/api/cost?group_by=model&{rng}", "", [("total_cost_usd", "spend", "number")], 0, 0, 6, 4),
    infinity(2, "Calls in range", "stat", f"/api/cost?group_by=model&{rng}", "", [("requests", "calls", "number")], 6, 0, 6, 4),
    infinity(3, "Unpriced calls in range", "stat", f"/api/cost?group_by=model&{rng}", "", [("unpriced_requests", "unpriced", "number")], 12, 0, 6, 4),
    infinity(4, "Cost by model", "barchart", f"/api/cost?group_by=model&{rng}", "groups", cost_cols("model"), 0, 4),
    infinity(5, "Cost per day", "barchart", f"/api/cost?group_by=day&{rng}", "groups", cost_cols("day"), 12, 4),
    infinity(6, "Cost by key (fingerprint)", "table", f"/api/cost?group_by=api_key&{rng}", "groups", cost_cols("key"), 0, 12),
    infinity(7, "Cost by provider", "table", f"/api/cost?group_by=provider&{rng}", "groups", cost_cols("provider"), 12, 12),
    infinity(8, "Unpriced models (never counted as free)", "table", f"/api/cost?group_by=model&{rng}", "unpriced",
             [("model", "model @ provider", "string"), ("requests", "calls", "number"), ("input_tokens", "tokens in", "number"), ("output_tokens", "tokens out", "number")], 0, 20),
    infinity(9, "Latency, TTFT, tokens/s per model (p50 / p90 / p99)", "table", f"/api/stats?{rng}", "models",
             [("model", "model", "string"), ("requests", "calls", "number"), ("latency_s.p50", "latency p50 (s)", "number"), ("latency_s.p99", "latency p99 (s)", "number"),
              ("ttft_s.p50", "TTFT p50 (s)", "number"), ("ttft_s.p99", "TTFT p99 (s)", "number"), ("tokens_per_second.p50", "tokens/s p50", "number")], 12, 20),
    infinity(10, "Sessions, most recently active", "table", f"/api/sessions?limit=100&{rng}", "sessions",
             [("id", "session", "string"), ("last_at", "last active", "timestamp_epoch_s"), ("requests", "calls", "number"), ("input_tokens", "tokens in", "number"),
              ("output_tokens", "tokens out", "number"), ("cost_usd", "cost (USD)", "number"), ("models", "models", "string")], 0, 28, 24, 10),
]
api = {
    "__inputs": [{"name": "DS_INFINITY", "label": "Infinity", "type": "datasource", "pluginId": "yesoreyeram-infinity-datasource", "pluginName": "Infinity"}],
    "title": "llmtap — cost and sessions (JSON API)", "uid": "llmtap-api", "schemaVersion": 39, "version": 1,
    "tags": ["llmtap"], "time": {"from": "now-30d", "to": "now"}, "refresh": "5m", "editable": True,
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "yesoreyeram-infinity-datasource", "label": "Infinity", "current": {}},
        {"name": "llmtap_api", "type": "textbox", "label": "llmtap API base URL", "query": "http://127.0.0.1:8081", "current": {"value": "http://127.0.0.1:8081", "text": "http://127.0.0.1:8081"}},
        {"name": "llmtap_token", "type": "textbox", "label": "API token (if --api-token)", "query": "", "current": {"value": "", "text": ""}},
    ]},
    "panels": api_panels,
}
json.dump(api, open(os.path.join(HERE, "llmtap-api.json"), "w"), indent=2)
