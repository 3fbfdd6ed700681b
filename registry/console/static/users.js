// The users pages: the one-time invitation link is selected when focused, and a button copies it.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  const link = document.getElementById("invitation-link");
  if (!link) return;
  link.addEventListener("focus", function () { link.select(); });
  if (!navigator.clipboard) return;
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "secondary copy";
  copy.textContent = "Copy link";
  copy.addEventListener("click", async function () {
    try {
      await navigator.clipboard.writeText(link.value);
      copy.textContent = "Copied";
    } catch (error) {
      link.focus();
    }
  });
  link.parentElement.after(copy);
});
