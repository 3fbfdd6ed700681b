// Sagip console: what every page shares. No inline scripts (the CSP forbids them): pages mark their
// elements with data-* attributes and their own script file finds them.
"use strict";

window.Sagip = Object.assign(window.Sagip || {}, (function () {
  const csrf = () => document.body.dataset.csrf;

  // Calls /api/v1 with the session cookie; writes carry the session's CSRF token.
  async function api(path, options = {}) {
    const headers = Object.assign({ Accept: "application/json" }, options.headers || {});
    const init = Object.assign({ credentials: "same-origin" }, options, { headers });
    if (init.method && !["GET", "HEAD"].includes(init.method.toUpperCase())) {
      headers["X-CSRF-Token"] = csrf();
    }
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
      delete init.json;
    }
    const response = await fetch("/api/v1" + path, init);
    if (response.status === 401) {
      window.location.assign("/console/login?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("signed out");
    }
    const type = response.headers.get("Content-Type") || "";
    const body = type.includes("json") ? await response.json() : null;
    if (!response.ok) {
      const error = new Error((body && body.detail) || response.statusText);
      error.status = response.status;
      error.problem = body;
      throw error;
    }
    return body;
  }

  // Polls a job until it ends; onProgress(job) after each answer. Resolves with the ended job.
  async function pollJob(jobId, onProgress, intervalMs = 1000) {
    for (;;) {
      const job = await api("/jobs/" + jobId);
      onProgress(job);
      if (job.status === "succeeded" || job.status === "failed") return job;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }

  function announce(element, text) {
    if (element) element.textContent = text;
  }

  return { api, pollJob, announce, csrf };
})());
