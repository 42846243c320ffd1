// The page's whole client: send the picked or dropped file to POST /v1/scans, poll the job, show its report.
"use strict";

const $ = (id) => document.getElementById(id);

function token() {
  return $("token").value.trim() || sessionStorage.getItem("streamdet-token") || "";
}

function headers() {
  const t = token();
  return t ? { Authorization: "Bearer " + t } : {};
}

function say(text, error) {
  $("state").textContent = text;
  $("state").classList.toggle("error", Boolean(error));
}

async function problem(response) {
  try {
    return (await response.json()).error || response.statusText;
  } catch (_) {
    return response.statusText;
  }
}

async function scan(file) {
  if (!file) return;
  if ($("token").value.trim()) sessionStorage.setItem("streamdet-token", $("token").value.trim());
  $("report").hidden = $("verdict").hidden = true;
  $("progress").hidden = false;
  $("progress").value = 0;
  say("uploading " + file.name + " …");
  const body = new FormData();
  body.append("file", file, file.name);
  const sent = await fetch("/v1/scans", { method: "POST", body: body, headers: headers() });
  if (sent.status === 401) $("token-row").hidden = false;
  if (!sent.ok) {
    $("progress").hidden = true;
    return say(file.name + ": " + (await problem(sent)), true);
  }
  let job = await sent.json();
  while (job.status === "queued" || job.status === "running") {
    $("progress").value = job.progress && job.progress.fraction ? job.progress.fraction : 0;
    say(file.name + ": " + job.status + (job.progress && job.progress.frames_scored ? " (" + job.progress.frames_scored + " frames scored)" : ""));
    const polled = await fetch(job.links.self + "?wait=2", { headers: headers() });
    if (!polled.ok) return say(file.name + ": " + (await problem(polled)), true);
    job = await polled.json();
  }
  $("progress").value = 1;
  const input = job.result && job.result.inputs[0];
  $("verdict").hidden = !input;
  if (input) $("verdict").textContent = input.verdict ? input.verdict + " (score " + input.score.toFixed(4) + ")" : "no verdict";
  say(file.name + ": " + job.status + (job.error ? ": " + job.error : ""), job.status === "error");
  const report = await fetch(job.links.report, { headers: headers() });
  if (report.ok) {
    $("report").srcdoc = await report.text();
    $("report").hidden = false;
  }
}

function ready() {
  const drop = $("drop");
  $("file").addEventListener("change", () => scan($("file").files[0]).catch((e) => say(String(e), true)));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    scan(e.dataTransfer.files[0]).catch((err) => say(String(err), true));
  });
  fetch("/v1/scans", { headers: headers() }).then((r) => { if (r.status === 401) $("token-row").hidden = false; });
}

document.addEventListener("DOMContentLoaded", ready);
