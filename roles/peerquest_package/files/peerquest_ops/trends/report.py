"""A report's HTML page (inline CSS and SVG only, as mail clients show it) and its plain-text twin."""

import time
from html import escape

STYLE = (
    "body{font-family:sans-serif;font-size:14px;color:#222}"
    "table{border-collapse:collapse;margin:4px 0 12px}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    "th{background:#f0f0f0}h2{border-bottom:1px solid #ccc;margin-top:24px}"
    ".note{color:#a60}.chart{display:inline-block;margin:4px 16px 8px 0;vertical-align:top}"
)


def title(name, period, end):
    return f"{name} {period} report, {time.strftime('%Y-%m-%d', time.gmtime(end))}"


def html_page(heading, sections, end, period, links=()):
    out = [
        "<!doctype html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(heading)}</title>',
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(heading)}</h1>",
        f"<p>The {escape(period)} period ending {escape(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(end)))}.</p>",
    ]
    if links:
        out.append(
            "<p>"
            + " | ".join(f'<a href="{escape(url, quote=True)}">{escape(text)}</a>' for text, url in links)
            + "</p>"
        )
    for section in sections:
        anchor = section["title"].lower().replace(" ", "-")
        out.append(f'<h2 id="{escape(anchor, quote=True)}">{escape(section["title"])}</h2>')
        for caption, svg in section["charts"]:
            # svg is built by trends.svg with every text escaped.
            out.append(f'<div class="chart"><div>{escape(caption)}</div>{svg}</div>')
        for caption, headers, rows in section["tables"]:
            out.append(f"<h3>{escape(caption)}</h3>")
            if not rows:
                out.append("<p>no data</p>")
                continue
            out.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows]
            out.append("</table>")
        out += [f'<p class="note">{escape(note)}</p>' for note in section["notes"]]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def text_page(heading, sections, end, period, links=()):
    out = [
        heading,
        "=" * len(heading),
        f"The {period} period ending {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(end))}.",
        "",
    ]
    out += [f"{text}: {url}" for text, url in links]
    for section in sections:
        out += ["", section["title"], "-" * len(section["title"])]
        for caption, headers, rows in section["tables"]:
            out.append(f"{caption}:")
            if not rows:
                out.append("  no data")
            widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)] if rows else []
            for row in [headers, *rows] if rows else []:
                out.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        out += [f"* {note}" for note in section["notes"]]
    return "\n".join(out) + "\n"
