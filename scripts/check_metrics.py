"""Reads `serve`'s /metrics with the Prometheus project's own parser (prometheus_client) and
prints the request counts it finds, as JSON: {"ROUTE STATUS": count}. Run by the serve crate's
tests, which compare them with the requests they sent.

Usage: python check_metrics.py HOST:PORT
"""

import json
import sys
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

with urllib.request.urlopen(f"http://{sys.argv[1]}/metrics") as response:
    text = response.read().decode()

counts = {}
for family in text_string_to_metric_families(text):
    if family.name == "http_requests":
        for sample in family.samples:
            if sample.name == "http_requests_total":
                key = f"{sample.labels['route']} {sample.labels['status']}"
                counts[key] = sample.value
print(json.dumps(counts))
