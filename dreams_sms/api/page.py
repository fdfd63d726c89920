"""The dashboard page, rendered on the server from an `Overview`.

Plain HTML with every value escaped here: the page reads well without
JavaScript, and `static/dashboard.js` rebuilds the same markup from
`data.json` (same ids, classes and data attributes) to refresh it in place.
No template engine: `string.Template` fills the shell in `templates/`.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from html import escape
from importlib import resources
from string import Template
from zoneinfo import ZoneInfo

from dreams_sms.api.overview import STATES, CampaignView, HeldView, Overview, SenderView


def h(tag: str, text: str | int | float = "", *, raw: str = "", **attrs: str | int) -> str:
    """One element, its text and attribute values escaped (`raw`: markup already made)."""
    names = " ".join(f'{k.rstrip("_").replace("_", "-")}="{escape(str(v))}"'
                     for k, v in attrs.items())
    return f"<{tag}{' ' + names if names else ''}>{escape(str(text))}{raw}</{tag}>"


@cache
def _shell() -> Template:
    text = resources.files("dreams_sms.api").joinpath("templates/dashboard.html")
    return Template(text.read_text("utf-8"))


def percent(c: CampaignView) -> int:
    """Whole percent, rounded down: a bar says 100 only when the campaign is done."""
    return 100 if c.finished else min(int(c.progress * 100), 99)


def local_time(ts: float, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, tz).strftime("%H:%M:%S")


def meta(ov: Overview) -> str:
    tz = ZoneInfo(ov.timezone)
    day = f"{ov.day[:4]}-{ov.day[4:6]}-{ov.day[6:]}"
    parts = [f"as of {local_time(ov.now, tz)} {ov.timezone}", f"quota day {day}"]
    if ov.balance is not None:
        parts.append(f"balance {ov.balance:g}")
    return escape(" · ".join(parts))


def alerts(ov: Overview) -> str:
    if not ov.alerts:
        return h("li", "No alerts: every sender may send.", class_="none")
    return "".join(
        h("li", class_=f"alert {a.level}", data_kind=a.kind,
          raw=h("span", a.level, class_="level") + " " + escape(a.text)
          + (h("code", a.hint, class_="hint") if a.hint else ""))
        for a in ov.alerts)


def campaign_row(c: CampaignView) -> str:
    pct = percent(c)
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(c.failures.items()))
    name = h("td", c.id, class_="id",
             raw=h("div", f"failed {codes}", class_="codes") if codes else "")
    bar = h("td", class_="bar", raw=h("progress", f"{pct}%", data_campaign=c.id,
                                      value=c.settled if c.total else 1, max=max(c.total, 1))
            + " " + h("span", f"{pct}%", class_="pct"))
    cells = "".join(h("td", c.counts[s], class_="n", data_state=s) for s in STATES)
    return h("tr", data_campaign=c.id, class_="finished" if c.finished else "running",
             raw=name + h("td", c.sender) + bar + h("td", c.total, class_="n") + cells)


def campaigns(ov: Overview) -> str:
    if not ov.campaigns:
        return h("tr", class_="none", raw=h("td", "No campaigns yet.", colspan=12))
    return "".join(campaign_row(c) for c in ov.campaigns)


STATE_LABELS = {"closed": "closed for today", "paused": "paused", "sending": "sending",
                "idle": "idle"}


def sender_row(s: SenderView) -> str:
    state = h("td", raw=h("span", STATE_LABELS[s.state], class_=f"state {s.state}",
                          data_state=s.state)
              + (h("div", s.closed_reason, class_="why") if s.closed else ""))
    paused = ", ".join(p.reason + ("" if p.scope == "all" else " (this sender)")
                       + (f" {p.code}" if p.code else "") for p in s.pauses)
    return h("tr", data_sender=s.name, raw=h("td", s.name, class_="id") + state
             + h("td", s.high, class_="n") + h("td", s.normal, class_="n")
             + h("td", s.deferred, class_="n") + h("td", s.used_today, class_="n used")
             + h("td", "none" if s.limit is None else s.limit, class_="n limit")
             + h("td", paused or "-", class_="paused"))


def senders(ov: Overview) -> str:
    if not ov.senders:
        return h("tr", class_="none", raw=h("td", "No senders yet.", colspan=8))
    return "".join(sender_row(s) for s in ov.senders)


def held(v: HeldView) -> str:
    count = h("p", raw=h("strong", v.count, id="held-count") + " held message(s): a call "
              "timed out after sending, so the provider may or may not have taken them.")
    if not v.count:
        return count
    ids = h("ul", id="held-ids", raw="".join(
        h("li", raw=h("code", m.id) + " " + escape(m.sender)) for m in v.newest))
    steps = h("p", "Check them in the provider's portal, then settle them from a shell:")
    return count + ids + steps + h("pre", "\n".join(v.steps), class_="steps")


def render(ov: Overview, *, css: str, js: str, data: str, every_ms: int) -> str:
    """The whole page; `css`, `js` and `data` are the URLs of the assets and the JSON."""
    return _shell().substitute(
        css=escape(css), js=escape(js), data=escape(data), every=every_ms, meta=meta(ov),
        alerts=alerts(ov), campaigns=campaigns(ov), senders=senders(ov), held=held(ov.held))
