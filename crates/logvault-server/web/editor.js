// The KQL editor's completion: a listbox under the caret offering the names that start with the
// word being typed (tables, columns, functions, keywords), opened by typing or Ctrl+Space, moved
// with the arrows, taken with Tab or Enter, closed with Escape; Ctrl+Enter runs the query.
"use strict";

const LvEditor = (() => {
  // `textarea` gets completion from `options.candidates()` ([{name, kind}]) in `list` (a
  // listbox); Ctrl+Enter calls `options.run()`. Returns `{ hide }`.
  function attach(textarea, list, options) {
    const completion = { items: [], index: 0, start: 0 };

    function wordBefore(q) {
      const upto = q.value.slice(0, q.selectionStart);
      const m = /[A-Za-z_][A-Za-z0-9_-]*$/.exec(upto);
      return m ? { word: m[0], start: upto.length - m[0].length } : { word: "", start: upto.length };
    }

    function showCompletions(force) {
      const q = textarea;
      const { word, start } = wordBefore(q);
      if (!force && word.length < 1) { hideCompletions(); return; }
      const lower = word.toLowerCase();
      const items = options.candidates()
        .filter((c) => c.name.toLowerCase().startsWith(lower) && c.name !== word)
        .slice(0, 30);
      if (items.length === 0) { hideCompletions(); return; }
      completion.items = items;
      completion.index = 0;
      completion.start = start;
      list.replaceChildren(...items.map((c, i) => {
        const li = document.createElement("li");
        li.id = `completion-${i}`;
        li.setAttribute("role", "option");
        const name = document.createElement("span");
        name.textContent = c.name;
        const kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = c.kind;
        li.append(name, kind);
        li.addEventListener("mousedown", (ev) => { ev.preventDefault(); completion.index = i; accept(); });
        return li;
      }));
      // Under the caret's line, roughly.
      const lineNo = q.value.slice(0, q.selectionStart).split("\n").length;
      const lineHeight = parseFloat(getComputedStyle(q).lineHeight) || 20;
      list.style.top = `${q.offsetTop + Math.min(q.clientHeight, lineNo * lineHeight) + 8 - q.scrollTop}px`;
      list.style.left = `${q.offsetLeft + 8}px`;
      list.hidden = false;
      q.setAttribute("aria-expanded", "true");
      highlight();
    }

    function highlight() {
      [...list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === completion.index)));
      const active = list.children[completion.index];
      if (active) {
        textarea.setAttribute("aria-activedescendant", active.id);
        active.scrollIntoView({ block: "nearest" });
      }
    }

    function hideCompletions() {
      list.hidden = true;
      textarea.setAttribute("aria-expanded", "false");
      textarea.removeAttribute("aria-activedescendant");
      completion.items = [];
    }

    function accept() {
      const item = completion.items[completion.index];
      if (!item) return;
      const q = textarea;
      const end = q.selectionStart;
      q.setRangeText(item.name, completion.start, end, "end");
      hideCompletions();
      q.focus();
    }

    textarea.addEventListener("keydown", (ev) => {
      const open = !list.hidden;
      if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") {
        ev.preventDefault();
        options.run();
        return;
      }
      if (ev.ctrlKey && (ev.key === " " || ev.code === "Space")) {
        ev.preventDefault();
        showCompletions(true);
        return;
      }
      if (!open) return;
      if (ev.key === "ArrowDown") {
        ev.preventDefault();
        completion.index = (completion.index + 1) % completion.items.length;
        highlight();
      } else if (ev.key === "ArrowUp") {
        ev.preventDefault();
        completion.index = (completion.index - 1 + completion.items.length) % completion.items.length;
        highlight();
      } else if (ev.key === "Tab" || ev.key === "Enter") {
        ev.preventDefault();
        accept();
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        hideCompletions();
      }
    });
    textarea.addEventListener("input", (ev) => {
      if (ev.inputType && ev.inputType.startsWith("insert") && ev.data && /[A-Za-z0-9_]/.test(ev.data)) {
        showCompletions(false);
      } else {
        hideCompletions();
      }
    });
    // Closed when the focus leaves the editor (later, so that a click on an option counts), unless
    // it came back meanwhile.
    textarea.addEventListener("blur", () => setTimeout(() => {
      if (document.activeElement !== textarea) hideCompletions();
    }, 150));

    return { hide: hideCompletions };
  }

  return { attach };
})();
