"""peerquest-trends: the daily and weekly trend reports, from Prometheus' query API, as HTML with inline SVG charts.

prom      the HTTP API client (/api/v1/query, /api/v1/query_range, /api/v1/rules)
svg       sparklines and bar charts as inline SVG
sections  what each report asks Prometheus and how it reads the answers
report    the HTML page and its plain-text twin
store     reports kept as files, older ones pruned
mail      the multipart e-mail, sent through the alerting package's SMTP code
cli       python3 -m peerquest_ops.trends daily|weekly --config FILE
"""
