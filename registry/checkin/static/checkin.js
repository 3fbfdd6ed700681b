// Fills the location fields from the phone (the only thing on these pages that needs JavaScript).
(function () {
  "use strict";
  var button = document.getElementById("share-location");
  if (!button || !("geolocation" in navigator)) { return; }
  var status = document.getElementById("location-status");
  function field(id) { return document.getElementById(id); }
  button.hidden = false;
  button.addEventListener("click", function () {
    status.textContent = button.dataset.locating;
    button.disabled = true;
    navigator.geolocation.getCurrentPosition(function (position) {
      var c = position.coords;
      field("lat").value = c.latitude.toFixed(6);
      field("lon").value = c.longitude.toFixed(6);
      field("accuracy_m").value = Math.round(c.accuracy);
      status.textContent = button.dataset.located.replace("{m}", Math.round(c.accuracy));
      button.disabled = false;
    }, function () {
      status.textContent = button.dataset.failed;
      button.disabled = false;
    }, {enableHighAccuracy: true, timeout: 20000, maximumAge: 60000});
  });
}());
