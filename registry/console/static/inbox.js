/* The SMS inbox by keyboard: j and k move to the next and previous reply, h marks the current one handled.
   Typing in a field is left alone; without this script every form still works with Tab and Enter. */
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("article.reply"));
  if (!cards.length) {
    return;
  }
  function current() {
    var active = document.activeElement;
    for (var i = 0; i < cards.length; i += 1) {
      if (cards[i] === active || cards[i].contains(active)) {
        return i;
      }
    }
    return -1;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey || event.isComposing) {
      return;
    }
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA")) {
      return;
    }
    var at = current();
    if (event.key === "j" || event.key === "k") {
      event.preventDefault();
      var next = event.key === "j" ? Math.min(at + 1, cards.length - 1) : Math.max(at - 1, 0);
      cards[next].focus();
      cards[next].scrollIntoView({block: "nearest"});
    } else if (event.key === "h" && at >= 0) {
      var button = cards[at].querySelector("button.mark-handled");
      if (button) {
        event.preventDefault();
        button.click();
      }
    }
  });
}());
