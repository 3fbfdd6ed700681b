// The roster page: follows a roster being built, and a large download being prepared, by polling the API
// (no long-lived connection); the page is then loaded again, rendered by the server with what is new.
// Shows the paper size only for PDF downloads.
"use strict";

(function () {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const percent = (value) => `${Math.round((value || 0) * 100)} %`;

  async function followBuild(section) {
    const status = document.getElementById("roster-status");
    const bar = document.getElementById("build-progress");
    const detail = document.getElementById("build-detail");
    const { rosterId, jobId } = section.dataset;
    for (;;) {
      try {
        const roster = await Sagip.api(`/rosters/${rosterId}`);
        if (roster.status === "succeeded" || roster.status === "failed") {
          Sagip.announce(status, `${roster.status}: loading the roster…`);
          window.location.reload();
          return;
        }
        let text = `${roster.status}: a worker is building it; this page follows it`;
        if (jobId) {
          const job = await Sagip.api(`/jobs/${jobId}`);
          bar.value = job.progress || 0;
          detail.textContent = percent(job.progress);
          text += ` (${percent(job.progress)})`;
        }
        Sagip.announce(status, text);
      } catch (error) {
        if (error.message === "signed out") return;
        Sagip.announce(status, `Could not read the roster's status (${error.message}); trying again.`);
      }
      await sleep(1000);
    }
  }

  async function followExport(box) {
    const status = document.getElementById("export-status");
    const bar = document.getElementById("export-progress");
    try {
      await Sagip.pollJob(box.dataset.exportJob, (job) => {
        bar.value = job.progress || 0;
        Sagip.announce(status, `A worker is building the file (${job.status}, ${percent(job.progress)}).`);
      });
      window.location.reload();
    } catch (error) {
      if (error.message !== "signed out") Sagip.announce(status, `Could not follow the file (${error.message}); reload the page.`);
    }
  }

  function paperOnlyForPdf() {
    const format = document.getElementById("format");
    const paper = document.querySelector("[data-pdf-only]");
    if (!format || !paper) return;
    const update = () => { paper.hidden = format.value !== "pdf"; };
    format.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const build = document.querySelector("[data-roster-build]");
    if (build) followBuild(build);
    const exporting = document.querySelector("[data-export-job]");
    if (exporting) followExport(exporting);
    paperOnlyForPdf();
  });
})();
