// The imports page: follows a queued or running import job by polling (Sagip.pollJob), showing its progress,
// then loads the page again, which shows the counts and the rejected rows. Without JavaScript the page
// offers a link to load it again.
"use strict";

(function () {
  async function follow(box) {
    const status = document.getElementById("import-status");
    const bar = document.getElementById("import-progress");
    try {
      await Sagip.pollJob(box.dataset.job, (job) => {
        const percent = Math.round((job.progress || 0) * 100);
        bar.value = job.progress || 0;
        bar.textContent = `${percent} %`;
        Sagip.announce(status, `A worker is reading the file (${job.status}, ${percent} %).`);
      });
      window.location.reload();
    } catch (error) {
      if (error.message !== "signed out") {
        Sagip.announce(status, `Could not follow the import (${error.message}); load the page again.`);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.querySelector("#import-job[data-job]");
    if (box) follow(box);
  });
})();
