// The operations screen, live: one EventSource on /operations/stream (no build step, no inline script).
//
// The page is drawn by the server; this keeps it current. Each event carries the HTML of one row, rendered and
// escaped by the server's own templates: "access" puts an entry at the top of the feed (at most data-cap rows),
// "door" replaces a door's row on the board, "alarm" adds, updates or removes an alarm in the inbox. New rows are
// highlighted; a new alarm or a forced or held door also beeps (Web Audio, no sound file) unless the guard has
// turned the sound off (remembered in localStorage). The browser reconnects by itself after a cut or a server
// restart and sends the last event id, so the server replays what was missed; the status line says so meanwhile.
(function () {
  "use strict";

  var MUTE_KEY = "gatehouse.operations.muted";
  var HIGHLIGHT_MS = 6000;
  var BEEP_GAP_MS = 1500;
  var RECONNECT_QUIET_MS = 4000;  // the stream's own reconnects (every few minutes) take about two seconds  // a forced door sends its alarm and its new state together: one beep for both

  function fragment(html) {
    var holder = document.createElement("tbody");
    if (html.indexOf("<li") === 0) { holder = document.createElement("ul"); }
    holder.innerHTML = html;
    return holder.firstElementChild;
  }

  function highlight(el) {
    el.classList.add("ops-new");
    setTimeout(function () { el.classList.remove("ops-new"); }, HIGHLIGHT_MS);
  }

  function Sound(button, root) {
    var audio = null;
    var muted = false;
    var lastBeep = 0;
    try { muted = window.localStorage.getItem(MUTE_KEY) === "1"; } catch (e) { muted = false; }

    function show() {
      // Sound on but not yet allowed by the browser (no click on this page yet): say what makes it work.
      var blocked = !muted && !audio && navigator.userActivation && !navigator.userActivation.hasBeenActive;
      var text = muted ? "data-text-sound-off" : (blocked ? "data-text-sound-blocked" : "data-text-sound-on");
      button.setAttribute("aria-pressed", muted ? "false" : "true");
      button.querySelector("span").textContent = root.getAttribute(text);
      button.classList.toggle("ops-muted", muted);
      button.classList.toggle("ops-blocked", Boolean(blocked));
    }

    function context() {
      // Browsers let a page make sound only after the user has interacted with it.
      var active = !navigator.userActivation || navigator.userActivation.hasBeenActive;
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!audio && Ctx && active) { audio = new Ctx(); }
      return audio;
    }

    this.beep = function () {
      if (muted || Date.now() - lastBeep < BEEP_GAP_MS) { return; }
      lastBeep = Date.now();
      var ctx = context();
      if (!ctx) { show(); return; }
      if (ctx.state === "suspended") { ctx.resume(); }
      [0, 0.25].forEach(function (offset) {
        var osc = ctx.createOscillator();
        var gain = ctx.createGain();
        var start = ctx.currentTime + offset;
        osc.type = "sine";
        osc.frequency.value = 880;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.18);
        osc.connect(gain);
        gain.connect(ctx.destination);
        osc.start(start);
        osc.stop(start + 0.2);
      });
    };

    // Any click on the page allows sound from then on.
    document.addEventListener("click", function () { if (!muted) { context(); show(); } });
    button.addEventListener("click", function () {
      if (button.classList.contains("ops-blocked")) { context(); show(); return; }
      muted = !muted;
      try { window.localStorage.setItem(MUTE_KEY, muted ? "1" : "0"); } catch (e) { /* private mode: not kept */ }
      show();
      if (!muted) { context(); }
    });
    button.hidden = false;
    show();
  }

  function Screen(root) {
    var cap = parseInt(root.getAttribute("data-cap") || "200", 10);
    var feed = document.getElementById("feed-rows");
    var feedEmpty = document.getElementById("feed-empty");
    var alarms = document.getElementById("alarm-list");
    var alarmEmpty = document.getElementById("alarm-empty");
    var count = document.getElementById("alarm-count");
    var doors = document.getElementById("door-rows");
    var status = document.getElementById("ops-live");
    var sound = new Sound(document.getElementById("ops-sound"), root);

    function setStatus(state) {
      status.setAttribute("data-state", state);
      status.querySelector("span").textContent = root.getAttribute("data-text-" + state);
    }

    function countAlarms() {
      var n = alarms.querySelectorAll("li[data-alarm]").length;
      alarmEmpty.hidden = n > 0;
      count.setAttribute("data-count", String(n));
      count.textContent = count.textContent.replace(/\d+/, String(n));
    }

    function onAccess(data, id) {
      if (!feed || feed.querySelector('tr[data-feed="' + id + '"]')) { return; }
      var row = fragment(data.html);
      feed.insertBefore(row, feed.firstElementChild);
      highlight(row);
      while (feed.children.length > cap) { feed.removeChild(feed.lastElementChild); }
      if (feedEmpty) { feedEmpty.hidden = true; }
    }

    function onAlarm(data) {
      var old = alarms.querySelector('li[data-alarm="' + data.alarm + '"]');
      if (!data.open) {
        if (old) { old.parentNode.removeChild(old); }
      } else {
        // Keep what the guard is typing in an alarm's comment box when the alarm is updated.
        if (old && old.contains(document.activeElement)) { return countAlarms(); }
        var item = fragment(data.html);
        if (old) { alarms.replaceChild(item, old); } else { alarms.insertBefore(item, alarms.firstElementChild); }
        if (data.cue) { highlight(item); sound.beep(); }
      }
      countAlarms();
    }

    function onDoor(data) {
      if (!doors) { return; }
      var old = doors.querySelector('tr[data-door="' + data.door + '"]');
      if (!old) { return; }
      var row = fragment(data.html);
      doors.replaceChild(row, old);
      highlight(row);
      if (data.cue) { sound.beep(); }
    }

    function listen(kind, handle) {
      source.addEventListener(kind, function (ev) {
        var data;
        try { data = JSON.parse(ev.data); } catch (e) { return; }
        handle(data, ev.lastEventId);
      });
    }

    setStatus("connecting");
    var source = new EventSource(root.getAttribute("data-stream"));
    var pending = null;
    source.addEventListener("open", function () {
      clearTimeout(pending);
      pending = null;
      setStatus("live");
    });
    source.addEventListener("error", function () {
      // CLOSED: the server refused (logged out). Otherwise the browser is already reconnecting: the server ends
      // each stream after a few minutes and it reconnects at once, so say so only if that takes a while.
      if (source.readyState === EventSource.CLOSED) { setStatus("stopped"); return; }
      if (pending === null) {
        pending = setTimeout(function () {
          pending = null;
          if (source.readyState !== EventSource.OPEN) { setStatus("reconnecting"); }
        }, RECONNECT_QUIET_MS);
      }
    });
    listen("access", onAccess);
    listen("alarm", onAlarm);
    listen("door", onDoor);
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("ops");
    if (root && window.EventSource) { new Screen(root); }
  });
})();
