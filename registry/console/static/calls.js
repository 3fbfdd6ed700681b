/* The hotline's call list by keyboard: a number key picks how the call went, a letter the welfare status,
   Enter saves and claims the next person. Typing in the note or a list box is left alone. Without this
   script the form still posts, and the access keys pick the same choices. */
(function () {
  "use strict";
  var form = document.getElementById("call-form");
  if (!form) {
    return;
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey || event.isComposing) {
      return;
    }
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "SELECT" ||
      (target.tagName === "INPUT" && target.type !== "radio" && target.type !== "checkbox"));
    if (event.key === "Enter") {
      if (target && (target.tagName === "TEXTAREA" || target.tagName === "BUTTON" || target.tagName === "A")) {
        return;
      }
      if (!target || !form.contains(target) || target.type === "radio" || target === document.body) {
        event.preventDefault();
        if (form.requestSubmit) {
          form.requestSubmit();
        } else {
          form.submit();
        }
      }
      return;
    }
    if (typing || event.key.length !== 1) {
      return;
    }
    var key = event.key.toLowerCase();
    var inputs = form.querySelectorAll("input[type=radio][data-key]");
    for (var i = 0; i < inputs.length; i += 1) {
      if (inputs[i].getAttribute("data-key") === key) {
        event.preventDefault();
        inputs[i].checked = true;
        inputs[i].focus();
        return;
      }
    }
  });
}());
