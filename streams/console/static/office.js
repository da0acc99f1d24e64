// A street office's page: the call list fetched as JSON and drawn, again whenever the server says
// (server-sent events) that this office's list changed; the actions post follow-ups. Every value
// is put in the page as text (textContent), never as markup.
(function () {
  "use strict";
  const root = document.getElementById("office");
  const t = JSON.parse(document.getElementById("labels").textContent);
  const csrf = document.querySelector('meta[name="csrf"]').content;
  const base = "/office/" + encodeURIComponent(root.dataset.code);
  const canAct = root.dataset.canAct === "yes";
  const general = document.getElementById("general");
  const COLUMNS = ["person_id", "level", "case_ids", "first_alert", "due_by", "overdue", "color", "followup",
    "observation_until"];
  const KPIS = ["alerted", "reached_2h", "reached_12h", "reached_24h", "median_hours_to_reach", "overdue",
    "quarantined", "released", "unreachable"];
  const ACTIONS = ["reached", "quarantined", "unreachable", "released"];
  let now = null;
  let fetching = false;
  let again = false;

  function short(iso) {
    return iso ? iso.slice(5, 16).replace("T", " ") : "";
  }

  function shown(name, value) {
    if (value === null || value === undefined) return "";
    if (name === "level" || name === "color") return t[value] || value;
    if (name === "overdue") return value ? t.overdue : "";
    if (name === "case_ids") return value.join(" ");
    if (name === "followup") {
      return (t[value.outcome] || value.outcome) + " " + short(value.at) + (value.note ? " · " + value.note : "");
    }
    if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return short(value);
    return String(value);
  }

  function add(parent, tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    parent.appendChild(node);
    return node;
  }

  function setLive(on) {
    const live = document.getElementById("live");
    live.textContent = on ? t.live : t.offline;
    live.className = on ? "live on" : "live off";
  }

  function drawKpis(kpis) {
    const table = document.getElementById("kpis");
    table.replaceChildren();
    const head = add(table, "tr");
    const body = add(table, "tr");
    for (const name of KPIS) {
      add(head, "th", t[name] || name);
      add(body, "td", kpis[name] === null ? "-" : String(kpis[name]));
    }
  }

  function drawRows(rows) {
    const table = document.getElementById("rows");
    const head = table.tHead;
    head.replaceChildren();
    const names = add(head, "tr");
    for (const name of COLUMNS) add(names, "th", t[name] || name);
    if (canAct) add(names, "th", t.actions);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const row of rows) {
      const line = add(body, "tr", undefined, row.level + (row.overdue ? " overdue" : ""));
      line.dataset.person = row.person_id;
      for (const name of COLUMNS) add(line, "td", shown(name, row[name]), name === "color" ? name + " " + row.color : name);
      if (canAct) {
        const cell = add(line, "td", undefined, "actions");
        for (const outcome of ACTIONS) {
          const button = add(cell, "button", t[outcome]);
          button.type = "button";
          button.addEventListener("click", () => openAction(row.person_id, outcome));
        }
      }
    }
    document.getElementById("empty").hidden = rows.length > 0;
  }

  async function refresh() {
    if (fetching) {
      again = true;
      return;
    }
    fetching = true;
    try {
      const response = await fetch(base + "/rows" + (general.checked ? "?general=1" : ""),
        {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!response.ok) throw new Error(String(response.status));
      const data = await response.json();
      now = data.now;
      document.getElementById("now").textContent = data.now || "-";
      drawKpis(data.kpis);
      drawRows(data.rows);
    } catch (error) {
      setLive(false);
    } finally {
      fetching = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  function openAction(person, outcome) {
    const dialog = document.getElementById("act");
    const form = document.getElementById("act-form");
    form.elements.person_id.value = person;
    form.elements.outcome.value = outcome;
    form.elements.at.value = now ? now.slice(0, 16) : "";  // the time it opened: a second click sends the same
    form.elements.note.value = "";
    document.getElementById("act-person").textContent = person;
    document.getElementById("act-outcome").textContent = t[outcome];
    document.getElementById("act-message").textContent = "";
    dialog.showModal();
  }

  async function send(event) {
    event.preventDefault();
    const form = event.target;
    const message = document.getElementById("act-message");
    const button = document.getElementById("act-send");
    button.disabled = true;
    try {
      const response = await fetch(base + "/followups", {
        method: "POST", credentials: "same-origin",
        headers: {"X-CSRF-Token": csrf, Accept: "application/json"},
        body: new URLSearchParams(new FormData(form)),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        message.textContent = answer.error || String(response.status);
        return;
      }
      message.textContent = answer.written ? t.recorded : t.already_recorded;
      setTimeout(() => document.getElementById("act").close(), 800);
    } finally {
      button.disabled = false;
    }
  }

  general.addEventListener("change", () => {
    const query = general.checked ? "?general=1" : "";
    document.getElementById("csv").href = base + "/calllist.csv" + query;
    document.getElementById("xlsx").href = base + "/calllist.xlsx" + query;
    refresh();
  });
  if (canAct) {
    document.getElementById("act-form").addEventListener("submit", send);
    document.getElementById("act-cancel").addEventListener("click", () => document.getElementById("act").close());
  }
  const events = new EventSource(base + "/events");
  events.addEventListener("changed", refresh);
  events.addEventListener("open", () => {
    setLive(true);
    refresh();  // what changed while the stream was down
  });
  events.addEventListener("error", () => setLive(false));
  setInterval(refresh, 60000);  // overdue rows turn with event time even when nothing is written
})();
