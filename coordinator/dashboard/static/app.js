// app.js: the redrain dashboard. It talks only to the admin API of the origin it was served
// from, with the admin token the operator typed, kept in sessionStorage (this tab only) and
// sent as "Authorization: Bearer": never in a URL, a cookie or storage that outlives the tab. Every error the
// API answers is shown as the API words it: its "error" word and its "message".
"use strict";

(function () {
  var TOKEN_KEY = "redrain.adminToken";
  // Every poll is an admin request, audited in the coordinator's log: a few a second at most,
  // and none while the tab is hidden.
  var LIST_EVERY = 3000;   // ms between refreshes of the rain and node lists
  var LIVE_EVERY = 1000;   // ms between report polls of a raining rain
  var IDLE_EVERY = 3000;   // ms between report polls of a rain in any other status

  var $ = function (id) { return document.getElementById(id); };
  var view = {
    gen: 0,          // bumped on log-out and on each rain selection: stale answers are dropped
    listSeq: 0,      // bumped on log-out and on each list refresh: only the latest schedules the next
    code: "",        // the selected rain
    anchor: "",      // its anchor_id, as the digits the API sent
    status: "",
    busy: false,     // an action is in flight
    last: null,      // the previous report sample {t, count}
    peak: 0,
    listTimer: 0,
    liveTimer: 0,
    chart: null
  };

  // ---- the admin API ----

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  // apiError is what a failed call rejects with: the API's own word and message, or, when
  // there was no API answer at all, a word of the dashboard's that says so.
  function apiError(status, word, message) { return { status: status, word: word, message: message }; }

  // api calls method path with the token and resolves to {status, body, text}; a non-2xx
  // answer rejects with the API's error object.
  function api(method, path, bodyText, tok) {
    var init = {
      method: method,
      headers: { "Authorization": "Bearer " + (tok === undefined ? token() : tok) },
      cache: "no-store",
      credentials: "omit",
      redirect: "error"
    };
    if (bodyText !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = bodyText;
    }
    return fetch(path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = null; }
        if (!resp.ok) {
          if (body && typeof body.error === "string") {
            throw apiError(resp.status, body.error, typeof body.message === "string" ? body.message : "");
          }
          throw apiError(resp.status, "http_" + resp.status, text.slice(0, 200));
        }
        return { status: resp.status, body: body, text: text };
      });
    }, function (e) {
      throw apiError(0, "no_answer", "the coordinator did not answer (" + e.message + ")");
    });
  }

  // ---- errors ----

  var errorSource = "";

  function showError(e, source) {
    if (e && e.status === 401) { // the token is wrong (or was changed): back to the login form
      logout();
    }
    errorSource = source || "action";
    $("error-status").textContent = e.status ? "HTTP " + e.status : "";
    $("error-word").textContent = e.word;
    $("error-message").textContent = e.message;
    $("error").hidden = false;
  }

  // clearError hides the banner if it holds an error of this source (a poll that works again
  // clears its own error, never an action's).
  function clearError(source) {
    if (!source || source === errorSource) {
      $("error").hidden = true;
      errorSource = "";
    }
  }

  // ---- formatting ----

  function fmt(n) { return typeof n === "number" ? n.toLocaleString("en-US") : "–"; }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function when(s) {
    if (!s) return "–";
    var d = new Date(s);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function clock(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function setStatus(el, status) {
    el.textContent = status;
    el.className = "status " + status;
  }

  // ---- login ----

  function showLogin() {
    $("app").hidden = true;
    $("logout").hidden = true;
    $("conn").textContent = "";
    $("login").hidden = false;
    $("token").focus();
  }

  function enterApp() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = false;
    $("conn").textContent = "coordinator " + location.host;
    refreshLists();
  }

  function logout() {
    sessionStorage.removeItem(TOKEN_KEY);
    view.gen++;
    view.listSeq++;
    clearTimeout(view.listTimer);
    clearTimeout(view.liveTimer);
    view.code = "";
    $("rain").hidden = true;
    showLogin();
  }

  function onLogin(ev) {
    ev.preventDefault();
    var tok = $("token").value;
    if (!tok) return;
    $("login-submit").disabled = true;
    api("GET", "/v1/nodes", undefined, tok).then(function () {
      sessionStorage.setItem(TOKEN_KEY, tok);
      $("token").value = "";
      clearError();
      enterApp();
    }, function (e) {
      showError(e, "login");
    }).then(function () { $("login-submit").disabled = false; });
  }

  // ---- lists ----

  function refreshLists() {
    clearTimeout(view.listTimer);
    var seq = ++view.listSeq;
    var q = "/v1/rains?limit=50";
    var st = $("status-filter").value;
    if (st) q += "&status=" + encodeURIComponent(st);
    Promise.all([api("GET", q), api("GET", "/v1/nodes")]).then(function (res) {
      if (seq !== view.listSeq) return;
      clearError("list");
      renderRains(res[0].body.rains || []);
      renderNodes(res[1].body.nodes || []);
    }, function (e) {
      if (seq === view.listSeq) showError(e, "list");
    }).then(function () {
      if (seq === view.listSeq && token() && !document.hidden) view.listTimer = setTimeout(refreshLists, LIST_EVERY);
    });
  }

  function renderRains(rains) {
    var tb = $("rains").tBodies[0];
    tb.textContent = "";
    rains.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.dataset.code = r.code;
      if (r.code === view.code) tr.className = "selected";
      var c = cell(tr, "");
      var code = document.createElement("code");
      code.textContent = r.code;
      c.appendChild(code);
      var s = cell(tr, "");
      var badge = document.createElement("span");
      setStatus(badge, r.status);
      s.appendChild(badge);
      cell(tr, String(r.anchor_id), "num");
      cell(tr, String(r.room_id), "num");
      cell(tr, fmt(r.total_amount), "num");
      cell(tr, fmt(r.total_count), "num");
      cell(tr, fmt(r.claimed_amount), "num");
      cell(tr, fmt(r.claimed_count), "num");
      cell(tr, when(r.created_at));
      tr.addEventListener("click", function () { select(r.code); });
      tb.appendChild(tr);
    });
    $("rains-empty").hidden = rains.length > 0;
  }

  function renderNodes(nodes) {
    var tb = $("nodes").tBodies[0];
    tb.textContent = "";
    nodes.forEach(function (n) {
      var tr = document.createElement("tr");
      cell(tr, n.id);
      cell(tr, n.addr);
      cell(tr, n.state, "state-" + n.state);
      cell(tr, String(n.slices), "num");
      tb.appendChild(tr);
    });
  }

  // ---- create ----

  var NUMERIC = ["anchor_id", "room_id", "total_amount", "total_count", "max_per_user", "duration_s", "min_claim_interval_ms"];

  // createBody builds the JSON text of the form. A field left empty is left out (the API's
  // default); digits are sent as a JSON number exactly as typed (no float rounding); anything
  // else is sent as a string, for the API to refuse in its own words.
  function createBody() {
    var parts = [];
    NUMERIC.forEach(function (k) {
      var v = $("f-" + k).value.trim();
      if (v === "") return;
      parts.push(JSON.stringify(k) + ":" + (/^-?[0-9]+$/.test(v) ? BigInt(v).toString() : JSON.stringify(v)));
    });
    parts.push('"algorithm":' + JSON.stringify($("f-algorithm").value));
    var remark = $("f-remark").value;
    if (remark !== "") parts.push('"remark":' + JSON.stringify(remark));
    return "{" + parts.join(",") + "}";
  }

  function onCreate(ev) {
    ev.preventDefault();
    $("create-submit").disabled = true;
    api("POST", "/v1/rains", createBody()).then(function (res) {
      clearError();
      select(res.body.code);
      refreshLists();
    }, function (e) {
      showError(e, "create");
    }).then(function () { $("create-submit").disabled = false; });
  }

  // ---- one rain ----

  // anchorOf is the rain's anchor_id as the digits of the answer's text: exact even past 2^53.
  function anchorOf(text, rain) {
    var m = /"anchor_id":([0-9]+)/.exec(text);
    return m ? m[1] : String(rain.anchor_id);
  }

  function select(code) {
    view.gen++;
    view.code = code;
    view.anchor = "";
    view.status = "";
    view.last = null;
    view.peak = 0;
    clearTimeout(view.liveTimer);
    $("rain-code").textContent = code;
    $("rain-status").textContent = "";
    $("rain-meta").textContent = "";
    $("rain").hidden = false;
    $("rate-now").textContent = "0";
    $("rate-peak").textContent = "0";
    view.chart.clear();
    Array.prototype.forEach.call($("rains").tBodies[0].rows, function (tr) {
      tr.className = tr.dataset.code === code ? "selected" : "";
    });
    renderButtons();
    poll();
  }

  function poll() {
    clearTimeout(view.liveTimer);
    var gen = view.gen, code = view.code;
    if (!code || !token()) return;
    var path = "/v1/rains/" + encodeURIComponent(code);
    Promise.all([api("GET", path), api("GET", path + "/report")]).then(function (res) {
      if (gen !== view.gen) return;
      clearError("live");
      renderRain(res[0].body, res[0].text);
      renderReport(res[1].body);
    }, function (e) {
      if (gen === view.gen) showError(e, "live");
    }).then(function () {
      if (gen === view.gen && token() && !document.hidden) {
        view.liveTimer = setTimeout(poll, view.status === "raining" ? LIVE_EVERY : IDLE_EVERY);
      }
    });
  }

  function renderRain(r, text) {
    view.anchor = anchorOf(text, r);
    if (view.status && view.status !== r.status) refreshLists(); // the list shows the new status at once
    view.status = r.status;
    setStatus($("rain-status"), r.status);
    var meta = "anchor " + r.anchor_id + " · room " + r.room_id + " · " + fmt(r.total_count) + " packets · " +
      r.algorithm + " · at most " + r.max_per_user + " per user · " + r.duration_s + " s · epoch " + r.epoch;
    if (r.started_at) meta += " · started " + when(r.started_at);
    if (r.ends_at) {
      meta += " · ends " + when(r.ends_at);
      var left = Math.round((new Date(r.ends_at) - Date.now()) / 1000);
      if (r.status === "raining" && left > 0) meta += " (in " + left + " s)";
    }
    if (r.stopped_at) meta += " · stopped " + when(r.stopped_at);
    if (r.remark) meta += " · " + r.remark;
    $("rain-meta").textContent = meta;
    renderButtons();
  }

  function renderButtons() {
    var s = view.status, ready = !view.busy && view.anchor !== "";
    $("act-prepare").disabled = !ready || s !== "waiting";
    $("act-start").disabled = !ready || s !== "prepared";
    $("act-stop").disabled = !ready || !(s === "waiting" || s === "prepared" || s === "raining");
  }

  function renderReport(rep) {
    var sum = rep.claimed_amount + rep.leftover_amount + rep.lost_amount;
    $("rep-claimed").textContent = fmt(rep.claimed_amount);
    $("rep-leftover").textContent = fmt(rep.leftover_amount);
    $("rep-lost").textContent = fmt(rep.lost_amount);
    $("rep-sum").textContent = fmt(sum);
    $("rep-total").textContent = fmt(rep.total_amount);
    var ok = sum === rep.total_amount;
    $("rep-verdict").textContent = ok ? "balanced" : "NOT balanced: off by " + fmt(sum - rep.total_amount);
    $("balance").className = "balance " + (ok ? "ok" : "bad");
    $("rep-claimed-count").textContent = fmt(rep.claimed_count);
    $("rep-total-count").textContent = fmt(rep.total_count);
    $("rep-flushed").textContent = fmt(rep.flushed_amount);
    $("rep-flushed-count").textContent = fmt(rep.flushed_count);

    var tb = $("report-nodes").tBodies[0];
    tb.textContent = "";
    (rep.nodes || []).forEach(function (n) {
      var tr = document.createElement("tr");
      tr.dataset.node = n.node;
      cell(tr, n.node);
      cell(tr, n.state, "state-" + n.state);
      // a node's share is its slice plus the stock moved to it, less the stock it gave away
      var movedIn = n.moved_in_count || 0, movedOut = n.moved_out_count || 0;
      cell(tr, fmt(n.slice_amount), "num");
      cell(tr, fmt(n.moved_in_amount || 0), "num");
      cell(tr, fmt(n.moved_out_amount || 0), "num");
      cell(tr, fmt(n.claimed_amount), "num");
      cell(tr, fmt(n.claimed_count), "num");
      cell(tr, fmt(n.slice_count + movedIn - movedOut - n.claimed_count), "num");
      cell(tr, fmt(n.leftover_amount), "num");
      cell(tr, fmt(n.lost_amount), "num");
      cell(tr, fmt(n.flushed_amount), "num");
      tb.appendChild(tr);
    });

    // claims per second: the claimed count's rise between two polls
    var now = performance.now() / 1000;
    if (view.last) {
      var dt = now - view.last.t;
      if (dt > 0) {
        var rate = Math.max(0, (rep.claimed_count - view.last.count) / dt);
        view.peak = Math.max(view.peak, rate);
        $("rate-now").textContent = fmt(Math.round(rate));
        $("rate-peak").textContent = fmt(Math.round(view.peak));
        view.chart.push(now, rate);
      }
    }
    view.last = { t: now, count: rep.claimed_count };
    $("rain-updated").textContent = "updated " + clock(new Date());
  }

  function act(op) {
    if (!view.code || view.busy) return;
    var gen = view.gen;
    view.busy = true;
    renderButtons();
    api("POST", "/v1/rains/" + encodeURIComponent(view.code) + "/" + op, '{"anchor_id":' + view.anchor + "}").then(function (res) {
      clearError();
      if (gen === view.gen) {
        renderRain(res.body, res.text);
        poll();
      }
      refreshLists();
    }, function (e) {
      showError(e, op);
    }).then(function () {
      view.busy = false;
      renderButtons();
    });
  }

  // ---- start ----

  document.addEventListener("DOMContentLoaded", function () {
    view.chart = new window.RateChart($("rate-chart"), 120);
    $("login-form").addEventListener("submit", onLogin);
    $("create-form").addEventListener("submit", onCreate);
    $("logout").addEventListener("click", function () { clearError(); logout(); });
    $("error-close").addEventListener("click", function () { clearError(); });
    $("status-filter").addEventListener("change", refreshLists);
    $("act-prepare").addEventListener("click", function () { act("prepare"); });
    $("act-start").addEventListener("click", function () { act("start"); });
    $("act-stop").addEventListener("click", function () { act("stop"); });
    document.addEventListener("visibilitychange", function () {
      if (document.hidden || !token() || $("app").hidden) return;
      refreshLists(); // polling stopped while hidden: pick it up again
      if (view.code) {
        view.last = null; // no rate across the pause
        poll();
      }
    });
    if (!token()) {
      showLogin();
      return;
    }
    api("GET", "/v1/nodes").then(enterApp, function (e) {
      showError(e, "login");
      if (e.status !== 401) enterApp(); // the token may be right: the coordinator is away
    });
  });
})();
