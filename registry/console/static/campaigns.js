/* The message composer: a dry run, then Send (confirmed) and the campaign's progress, through /api/v1.
   One Idempotency-Key per composition: a double click, or a retry after a lost answer, sends once. */
(function () {
  "use strict";
  var form = document.getElementById("composer");
  if (!form) {
    return;
  }
  var crisis = form.getAttribute("data-crisis");
  var purpose = "?purpose=" + encodeURIComponent(form.getAttribute("data-purpose"));
  var status = document.getElementById("composer-status");
  var errorBox = document.getElementById("composer-error");
  var key = null;
  var following = null;

  function newKey() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function ticked(name) {
    return Array.prototype.map.call(form.querySelectorAll("input[name=" + name + "]:checked"),
      function (input) { return input.value; });
  }

  function body(dryRun) {
    var templates = {};
    form.querySelectorAll("textarea[data-language]").forEach(function (area) {
      if (area.value.trim()) {
        templates[area.getAttribute("data-language")] = area.value;
      }
    });
    var request = {
      channels: ticked("channels"), template: templates, dry_run: dryRun,
      audience: {zones: ticked("zones"), certainty: ticked("certainty"), welfare_status: ticked("welfare_status"),
                 vulnerability: ticked("vulnerability")}
    };
    var subject = form.querySelector("#subject").value.trim();
    if (subject) {
      request.subject = subject;
    }
    return request;
  }

  function clearErrors() {
    errorBox.hidden = true;
    form.querySelectorAll(".field-error").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function showProblem(error) {
    var problem = error.problem || {};
    errorBox.textContent = problem.detail || error.message;
    errorBox.hidden = false;
    var fields = problem.errors || {};
    Object.keys(fields).forEach(function (field) {
      var id = field === "template" ? "template-en" : field.replace(".", "-");
      var messages = fields[field];
      var box = document.getElementById(id + "-error");
      if (box) {
        box.textContent = Array.isArray(messages) ? messages.join(" ") : JSON.stringify(messages);
        box.hidden = false;
      }
      var input = document.getElementById(id);
      if (input) {
        input.setAttribute("aria-invalid", "true");
      }
    });
    Sagip.announce(status, "");
  }

  function skipped(channels) {
    var parts = [];
    Object.keys(channels).forEach(function (channel) {
      var reasons = channels[channel].skipped || {};
      Object.keys(reasons).forEach(function (reason) {
        parts.push(channel + ": " + reasons[reason] + " " + reason.replace(/_/g, " "));
      });
    });
    return parts.join(", ") || "none";
  }

  function text(id, value) {
    document.getElementById(id).textContent = value;
  }

  form.addEventListener("input", function () { key = null; });
  form.addEventListener("change", function () { key = null; });

  document.getElementById("dry-run").addEventListener("click", async function () {
    clearErrors();
    Sagip.announce(status, "Counting…");
    try {
      var answer = await Sagip.api("/crises/" + crisis + "/messages" + purpose, {method: "POST", json: body(true)});
      var sms = answer.channels.sms;
      var email = answer.channels.email;
      text("dry-recipients", answer.recipients);
      text("dry-sms", sms ? sms.recipients + (sms.available ? "" : " (the SMS channel is off)") : "not chosen");
      text("dry-parts", sms ? sms.parts + " (" + Object.keys(sms.messages_by_encoding).map(function (enc) {
        return sms.messages_by_encoding[enc] + " in " + enc; }).join(", ") + ")" : "–");
      text("dry-email", email ? email.recipients + (email.available ? "" : " (the email channel is off)") : "not chosen");
      text("dry-skipped", skipped(answer.channels));
      document.getElementById("dry-run-result").hidden = false;
      Sagip.announce(status, "Dry run: " + answer.recipients + " people would be messaged.");
    } catch (error) {
      showProblem(error);
    }
  });

  document.getElementById("send").addEventListener("click", async function () {
    clearErrors();
    var request = body(false);
    if (!window.confirm("Send this message to the people of " + form.getAttribute("data-purpose").replace(
      "crisis response: ", "") + " now?")) {
      return;
    }
    key = key || newKey();
    Sagip.announce(status, "Sending…");
    try {
      var answer = await Sagip.api("/crises/" + crisis + "/messages" + purpose,
        {method: "POST", json: request, headers: {"Idempotency-Key": key}});
      follow(answer.id);
    } catch (error) {
      showProblem(error);
    }
  });

  document.getElementById("cancel").addEventListener("click", async function () {
    if (!following || !window.confirm("Cancel the messages not sent yet?")) {
      return;
    }
    try {
      show(await Sagip.api("/messages/" + following + "/cancel" + purpose, {method: "POST"}));
    } catch (error) {
      showProblem(error);
    }
  });

  function show(campaign) {
    var c = campaign.counts;
    var done = c.total - c.queued - c.in_flight;
    document.getElementById("progress").hidden = false;
    document.getElementById("progress-bar").value = c.total ? done / c.total : 0;
    text("progress-status", campaign.status);
    text("progress-queued", c.queued + c.in_flight);
    text("progress-sent", c.sent + c.delivered);
    text("progress-delivered", c.delivered);
    text("progress-failed", c.failed);
    text("progress-skipped", c.skipped);
    text("progress-replied", c.replied);
    document.getElementById("cancel").hidden = !(campaign.status === "queued" || campaign.status === "sending");
    return campaign.status === "queued" || campaign.status === "sending";
  }

  async function follow(id) {
    following = id;
    for (;;) {
      var campaign = await Sagip.api("/messages/" + id + purpose);
      if (!show(campaign)) {
        Sagip.announce(status, "The campaign is " + campaign.status + ": " + (campaign.counts.sent +
          campaign.counts.delivered) + " sent, " + campaign.counts.delivered + " delivered.");
        return;
      }
      Sagip.announce(status, "Sending: " + (campaign.counts.total - campaign.counts.queued -
        campaign.counts.in_flight) + " of " + campaign.counts.total + " done.");
      await new Promise(function (resolve) { setTimeout(resolve, 1000); });
    }
  }
}());
