"""Alert history: what became of every alert, who answered it, and the reviews read from it.

store      history.jsonl: one record per line, appended by several programs at once; rotated copies read too
incidents  records folded into incidents (an alert from first record to resolution) with their marks
review     the figures per key and severity against the success targets, and threshold suggestions
cli        peerquest-history: list alerts, acknowledge, mark a false positive, resolve by hand
"""
