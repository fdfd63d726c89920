// The dashboard's live refresh: poll data.json and rebuild the sections in place,
// with the markup api/page.py renders (same ids, classes, data attributes).
// Text goes in through textContent only: nothing from Redis is parsed as HTML.
"use strict";

(function () {
  const STATES = ["queued", "sending", "sent", "deferred", "failed", "expired", "unknown",
                  "cancelled"];
  const LABELS = {closed: "closed for today", paused: "paused", sending: "sending", idle: "idle"};
  const body = document.body;
  const source = body.dataset.source;
  const every = Math.max(parseInt(body.dataset.every, 10) || 1500, 500);
  const live = document.getElementById("live");

  function h(tag, text, attrs, children) {
    const el = document.createElement(tag);
    if (text !== undefined && text !== null && text !== "") el.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    for (const child of children || []) {
      el.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return el;
  }

  function percent(c) {
    return c.finished ? 100 : Math.min(Math.floor(c.progress * 100), 99);
  }

  function meta(d) {
    const time = new Intl.DateTimeFormat("en-GB", {timeZone: d.timezone, hour: "2-digit",
      minute: "2-digit", second: "2-digit", hourCycle: "h23"}).format(new Date(d.now * 1000));
    const day = `${d.day.slice(0, 4)}-${d.day.slice(4, 6)}-${d.day.slice(6)}`;
    const parts = [`as of ${time} ${d.timezone}`, `quota day ${day}`];
    if (d.balance !== null) parts.push(`balance ${d.balance}`);
    return parts.join(" · ");
  }

  function alerts(d) {
    if (!d.alerts.length) return [h("li", "No alerts: every sender may send.", {class: "none"})];
    return d.alerts.map((a) => h("li", null, {class: `alert ${a.level}`, "data-kind": a.kind}, [
      h("span", a.level, {class: "level"}), " " + a.text,
      ...(a.hint ? [h("code", a.hint, {class: "hint"})] : []),
    ]));
  }

  function campaignRow(c) {
    const pct = percent(c);
    const codes = Object.entries(c.failures).sort((x, y) => Number(x[0]) - Number(y[0]))
      .map(([code, n]) => `${code}: ${n}`).join(", ");
    const name = h("td", c.id, {class: "id"},
                   codes ? [h("div", `failed ${codes}`, {class: "codes"})] : []);
    const bar = h("td", null, {class: "bar"}, [
      h("progress", `${pct}%`, {"data-campaign": c.id, value: c.total ? c.settled : 1,
                                max: Math.max(c.total, 1)}),
      " ", h("span", `${pct}%`, {class: "pct"})]);
    const cells = STATES.map((s) => h("td", c.counts[s], {class: "n", "data-state": s}));
    return h("tr", null, {"data-campaign": c.id, class: c.finished ? "finished" : "running"},
             [name, h("td", c.sender), bar, h("td", c.total, {class: "n"}), ...cells]);
  }

  function senderRow(s) {
    const state = h("td", null, {}, [
      h("span", LABELS[s.state] || s.state, {class: `state ${s.state}`, "data-state": s.state}),
      ...(s.closed ? [h("div", s.closed_reason, {class: "why"})] : [])]);
    const paused = s.pauses.map((p) => p.reason + (p.scope === "all" ? "" : " (this sender)")
                                + (p.code ? ` ${p.code}` : "")).join(", ");
    return h("tr", null, {"data-sender": s.name}, [
      h("td", s.name, {class: "id"}), state,
      h("td", s.high, {class: "n"}), h("td", s.normal, {class: "n"}),
      h("td", s.deferred, {class: "n"}), h("td", s.used_today, {class: "n used"}),
      h("td", s.limit === null ? "none" : s.limit, {class: "n limit"}),
      h("td", paused || "-", {class: "paused"})]);
  }

  function rows(list, make, empty, span) {
    if (!list.length) return [h("tr", null, {class: "none"}, [h("td", empty, {colspan: span})])];
    return list.map(make);
  }

  function held(v) {
    const out = [h("p", null, {}, [h("strong", v.count, {id: "held-count"}),
      " held message(s): a call timed out after sending, so the provider may or may not " +
      "have taken them."])];
    if (!v.count) return out;
    out.push(h("ul", null, {id: "held-ids"}, v.newest.map((m) =>
      h("li", null, {}, [h("code", m.id), " " + m.sender]))));
    out.push(h("p", "Check them in the provider's portal, then settle them from a shell:"));
    out.push(h("pre", v.steps.join("\n"), {class: "steps"}));
    return out;
  }

  function show(d) {
    document.getElementById("meta").textContent = meta(d);
    document.getElementById("alerts").replaceChildren(...alerts(d));
    document.querySelector("#campaigns tbody").replaceChildren(
      ...rows(d.campaigns, campaignRow, "No campaigns yet.", 12));
    document.querySelector("#senders tbody").replaceChildren(
      ...rows(d.senders, senderRow, "No senders yet.", 8));
    document.getElementById("held").replaceChildren(...held(d.held));
  }

  function status(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  let polls = 0;
  async function poll() {
    try {
      const answer = await fetch(source, {cache: "no-store", credentials: "same-origin",
                                          headers: {Accept: "application/json"}});
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      show(await answer.json());
      polls += 1;
      body.dataset.polls = String(polls);
      status("live", `live: refreshed every ${every / 1000} s`);
    } catch (err) {
      status("stale", `not refreshed (${err.message}): showing the last figures, retrying`);
    } finally {
      setTimeout(poll, every);
    }
  }
  status("live", `live: refreshed every ${every / 1000} s`);
  setTimeout(poll, every);
})();
