// SecureShare page behaviour. Served from static/ so the CSP can forbid inline scripts.
"use strict";

const IDLE_REBLUR_MS = 30000;
const HOLD_MS = 350;
const PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!";
// The page's words in its language, from <body data-words> (i18n.page_words); English when a word is missing.
let WORDS = {};

function word(english) {
  return WORDS[english] || english;
}

function announce(selector, text) {
  const region = document.querySelector(selector);
  if (region) region.textContent = text;
}

function flashButton(button, text) {
  const original = button.dataset.label || button.textContent;
  button.dataset.label = original;
  button.textContent = text;
  button.classList.add("is-done");
  window.setTimeout(() => {
    button.textContent = original;
    button.classList.remove("is-done");
  }, 2000);
}

function copyText(button, text, what) {
  navigator.clipboard.writeText(text).then(
    () => {
      flashButton(button, word("Copied"));
      announce("[data-copy-status]", word(`${what} copied to the clipboard.`));
    },
    () => announce("[data-copy-status]", word("Copying didn't work. Select the text and copy it by hand.")),
  );
}

function setUpCopyButtons() {
  document.querySelectorAll("[data-copy-target]").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.getElementById(button.dataset.copyTarget);
      const what = target.id === "secret-content" ? "Secret" : "Text";
      copyText(button, "value" in target ? target.value : target.textContent, what);
    });
  });
  document.querySelectorAll("[data-copy-text]").forEach((button) => {
    button.addEventListener("click", () => copyText(button, button.dataset.copyText, button.dataset.copyWhat || "Link"));
  });
}

function setUpPasswordToggles() {
  document.querySelectorAll("[data-toggle-password]").forEach((button) => {
    const input = document.getElementById(button.dataset.togglePassword);
    button.addEventListener("click", () => {
      const show = input.type === "password";
      input.type = show ? "text" : "password";
      button.textContent = word(show ? "Hide" : "Show");
      button.setAttribute("aria-pressed", String(show));
      button.setAttribute("aria-label", word(show ? "Hide password" : "Show password"));
    });
  });
}

function strongPassword(length = 20) {
  // Rejection sampling keeps every character equally likely.
  const limit = 256 - (256 % PASSWORD_ALPHABET.length);
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      if (byte < limit && out.length < length) out += PASSWORD_ALPHABET[byte % PASSWORD_ALPHABET.length];
    }
  }
  return out;
}

function setUpPasswordGenerators() {
  document.querySelectorAll("[data-generate-password]").forEach((button) => {
    button.addEventListener("click", () => {
      const input = document.getElementById(button.dataset.generatePassword);
      const confirm = document.getElementById(button.dataset.confirmField);
      const password = strongPassword();
      input.value = password;
      if (confirm) confirm.value = password;
      input.type = "text";
      const toggle = document.querySelector(`[data-toggle-password="${input.id}"]`);
      if (toggle) {
        toggle.textContent = word("Hide");
        toggle.setAttribute("aria-pressed", "true");
      }
      const status = button.parentElement.querySelector("[data-generate-status]");
      if (status) status.textContent = word("A strong password is filled in. Note it now: you'll send it to the recipient yourself.");
      input.focus();
      input.select();
    });
  });
}

function setUpExpiryChoice() {
  const select = document.querySelector("[data-expiration-select]");
  const custom = document.querySelector("[data-custom-expiry]");
  if (!select || !custom) return;
  const sync = () => { custom.hidden = select.value !== "custom"; };
  select.addEventListener("change", sync);
  sync();
}

function setUpBlurPreview() {
  const input = document.querySelector("[data-blur-input]");
  if (!input) return;
  const output = document.querySelector("[data-blur-output]");
  const preview = document.querySelector("[data-blur-preview]");
  const sync = () => {
    output.textContent = `${input.value} px`;
    preview.style.setProperty("--blur", `${input.value}px`);
  };
  input.addEventListener("input", sync);
  sync();
}

function setUpReveal() {
  const box = document.querySelector("[data-reveal]");
  if (!box) return;
  const content = box.querySelector("[data-secret-content]");
  const toggle = document.querySelector("[data-reveal-toggle]");
  const blurs = Number(box.dataset.blur) > 0;
  box.style.setProperty("--blur", `${box.dataset.blur}px`);
  let idleTimer = null;
  let holdTimer = null;
  let held = false;

  const setRevealed = (revealed) => {
    if (!blurs) return;
    box.classList.toggle("is-blurred", !revealed);
    if (toggle) {
      toggle.setAttribute("aria-pressed", String(revealed));
      toggle.textContent = word(revealed ? "Hide" : "Reveal");
    }
    announce("[data-reveal-status]", word(revealed ? "Secret revealed." : "Secret hidden."));
    window.clearTimeout(idleTimer);
    if (revealed) idleTimer = window.setTimeout(() => setRevealed(false), IDLE_REBLUR_MS);
  };
  const isRevealed = () => !box.classList.contains("is-blurred");
  const stillActive = () => { if (isRevealed()) setRevealed(true); };

  if (toggle) toggle.addEventListener("click", () => setRevealed(!isRevealed()));
  box.addEventListener("pointerdown", () => {
    held = false;
    holdTimer = window.setTimeout(() => { held = true; setRevealed(true); }, HOLD_MS);
  });
  const endPress = () => {
    window.clearTimeout(holdTimer);
    if (held) setRevealed(false);
  };
  box.addEventListener("pointerup", endPress);
  box.addEventListener("pointerleave", endPress);
  box.addEventListener("pointercancel", endPress);
  box.addEventListener("click", () => { if (!held) setRevealed(!isRevealed()); held = false; });
  box.addEventListener("contextmenu", (event) => event.preventDefault());

  ["keydown", "pointermove", "scroll"].forEach((name) => document.addEventListener(name, stillActive, { passive: true }));
  document.addEventListener("visibilitychange", () => { if (document.hidden) setRevealed(false); });
  // Clear the text on leaving, so neither the back button nor a restored tab can show it again.
  window.addEventListener("pagehide", () => { content.textContent = ""; });
}

const WHITESPACE_CLASSES = { " ": "ws-space", "\t": "ws-tab", "\n": "ws-eol" };

function markWhitespace(node, text) {
  // Each space, tab and line end in its own span, keeping the very same characters, so copying is unchanged.
  node.replaceChildren(...Array.from(text, (char) => {
    if (!WHITESPACE_CLASSES[char]) return document.createTextNode(char);
    const span = document.createElement("span");
    span.className = WHITESPACE_CLASSES[char];
    span.textContent = char;
    return span;
  }));
}

function setUpWhitespaceToggle() {
  const button = document.querySelector("[data-show-whitespace]");
  if (!button) return;
  const content = document.getElementById(button.getAttribute("aria-controls"));
  button.addEventListener("click", () => {
    const show = button.getAttribute("aria-pressed") !== "true";
    const text = content.textContent;
    if (show) markWhitespace(content, text);
    else content.textContent = text;
    button.setAttribute("aria-pressed", String(show));
    button.textContent = word(show ? "Hide spaces" : "Show spaces");
  });
}

// The browser's time zone for a form that has none yet: sign-up's hidden field, the Account page's unsaved choice.
function suggestTimeZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone) return;
  document.querySelectorAll("[data-browser-time-zone]").forEach((field) => {
    if (field.tagName === "SELECT" && ![...field.options].some((option) => option.value === zone)) return;
    field.value = zone;
  });
}

function setUpSubmitOnChange() {
  document.querySelectorAll("[data-submit-on-change]").forEach((form) => {
    form.querySelectorAll("[data-hide-with-script]").forEach((node) => { node.hidden = true; });
    form.addEventListener("change", () => form.submit());
  });
}

// A row's menu (<details class="row-menu">) works alone; a script adds what a menu is expected to do: one open at a
// time, and Escape or a click elsewhere closes it.
function setUpRowMenus() {
  const menus = [...document.querySelectorAll(".row-menu")];
  if (!menus.length) return;
  const closeAll = (except) => menus.forEach((menu) => { if (menu !== except) menu.open = false; });
  menus.forEach((menu) => menu.addEventListener("toggle", () => { if (menu.open) closeAll(menu); }));
  document.addEventListener("click", (event) => closeAll(event.target.closest(".row-menu")));
  document.addEventListener("keydown", (event) => {
    const open = menus.find((menu) => menu.open);
    if (event.key !== "Escape" || !open) return;
    open.open = false;
    open.querySelector("summary").focus();
  });
}

function setUpPrint() {
  document.querySelectorAll("[data-print]").forEach((button) => button.addEventListener("click", () => window.print()));
}

document.addEventListener("DOMContentLoaded", () => {
  WORDS = JSON.parse(document.body.dataset.words || "{}");
  setUpCopyButtons();
  setUpPasswordToggles();
  setUpPasswordGenerators();
  setUpExpiryChoice();
  setUpBlurPreview();
  setUpReveal();
  setUpWhitespaceToggle();
  setUpPrint();
  setUpRowMenus();
  suggestTimeZone();
  setUpSubmitOnChange();
});
