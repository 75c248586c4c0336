// Gatehouse console: the few live parts, in plain JavaScript (no build step, no inline scripts).
//
// data-autosubmit on a <select>: submit its form when the choice changes.
// data-poll="URL" on an element: every data-poll-every ms (default 1500), replace its contents with the
//   HTML fragment at URL, until the fragment's root carries data-final. The element should be an
//   aria-live region so screen readers hear the change.
// data-confirm="question" on a <form>: ask before submitting (revoke, withdraw, move out).
// .toasts .flash (success and notices): a close button, and they go by themselves after 8 s unless the
//   pointer or the keyboard is on them. Errors (role=alert) stay in the page until the next one.
(function () {
  "use strict";

  function poll(el) {
    var url = el.getAttribute("data-poll");
    var every = parseInt(el.getAttribute("data-poll-every") || "1500", 10);
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          el.innerHTML = html;
          if (!el.querySelector("[data-final]")) { setTimeout(tick, every); }
          else { el.removeAttribute("data-poll"); }
        })
        .catch(function () { setTimeout(tick, every * 2); });
    }
    setTimeout(tick, every);
  }

  function toast(el) {
    var close = document.createElement("button");
    close.type = "button";
    close.className = "dismiss";
    close.setAttribute("aria-label", document.documentElement.lang.indexOf("zh") === 0 ? "关闭" : "Dismiss");
    close.textContent = "\u00d7";
    close.addEventListener("click", function () { el.classList.add("hidden"); });
    el.appendChild(close);
    var held = false;
    el.addEventListener("mouseenter", function () { held = true; });
    el.addEventListener("focusin", function () { held = true; });
    setTimeout(function () { if (!held) { el.classList.add("hidden"); } }, 8000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    // After a refused form, put the keyboard on the first field that needs attention.
    var bad = document.querySelector('main [aria-invalid="true"]');
    if (bad) { bad.focus(); }
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll(".toasts .flash:not(.error)").forEach(toast);
    // On a phone the menu is a sideways-scrolling bar: bring the current page's entry into view.
    var current = document.querySelector(".main-nav [aria-current='page']");
    var bar = document.querySelector(".main-nav");
    if (current && bar && bar.scrollWidth > bar.clientWidth) {
      bar.scrollLeft = current.offsetLeft - (bar.clientWidth - current.offsetWidth) / 2;
    }
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  });
})();
