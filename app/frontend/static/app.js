// imagehost frontend: uploads with progress (XHR), and a gallery that polls the API and shows
// every size of every image as soon as it exists. No dependencies, no build step.
"use strict";

const API = "/api/images";
const FAST_POLL_MS = 1500;   // while something is uploading or being resized
const SLOW_POLL_MS = 10000;  // otherwise
const GALLERY_LIMIT = 40;

const uploads = document.getElementById("uploads");
const gallery = document.getElementById("gallery");
const galleryStatus = document.getElementById("gallery-status");
const cards = new Map();  // image id -> card element
let inFlight = 0;
let busy = false;         // some image still processing
let pollTimer = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function errorText(xhrOrResponse, body) {
  try {
    const detail = JSON.parse(body).detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg).join("; ");
  } catch (e) { /* not JSON */ }
  return `HTTP ${xhrOrResponse.status}`;
}

function uploadFile(file) {
  const progress = el("progress", { max: "100", value: "0", "data-testid": "upload-progress" });
  const status = el("span", { class: "upload-status", "data-testid": "upload-status", text: "uploading…" });
  const item = el("li", { "data-testid": "upload", "data-state": "uploading" },
    el("span", { class: "upload-name", text: file.name }), progress, status);
  uploads.prepend(item);

  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", API);
  xhr.responseType = "text";
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) {
      const percent = Math.round((event.loaded / event.total) * 100);
      progress.value = percent;
      status.textContent = `uploading… ${percent}%`;
    }
  });
  const finish = (state, text) => {
    inFlight -= 1;
    item.dataset.state = state;
    status.textContent = text;
    schedulePoll(0);
  };
  xhr.addEventListener("load", () => {
    if (xhr.status === 201) {
      const body = JSON.parse(xhr.responseText);
      progress.value = 100;
      item.dataset.imageId = body.id;
      finish("done", `uploaded (${body.width}×${body.height}); resizing…`);
    } else {
      finish("error", `refused: ${errorText(xhr, xhr.responseText)}`);
    }
  });
  xhr.addEventListener("error", () => finish("error", "network error"));
  xhr.addEventListener("abort", () => finish("error", "aborted"));
  inFlight += 1;
  xhr.send(form);
}

function sizeFigure(image, size) {
  const figure = el("figure", { "data-testid": "size", "data-size": String(size.size), "data-ready": "false" });
  figure.append(el("div", { class: "placeholder", text: "…" }), el("figcaption", { text: `${size.size} px` }));
  return figure;
}

function showSize(figure, image, size) {
  if (figure.dataset.ready === "true") return;
  figure.dataset.ready = "true";
  const img = el("img", { src: size.url, alt: `image ${image.id} at ${size.size} px`, loading: "lazy" });
  img.addEventListener("load", () => {
    figure.dataset.loaded = "true";
    figure.querySelector("figcaption").textContent = `${size.size} px · ${img.naturalWidth}×${img.naturalHeight}`;
  });
  const link = el("a", { href: size.url, target: "_blank", rel: "noopener" }, img);
  figure.querySelector(".placeholder").replaceWith(link);
}

function renderCard(image) {
  let card = cards.get(image.id);
  if (!card) {
    card = el("li", { class: "card", "data-testid": "image-card", "data-image-id": image.id },
      el("div", { class: "card-head" },
        el("span", { class: "badge" }),
        el("time", { datetime: image.created_at, text: new Date(image.created_at).toLocaleString() }),
        image.original_url ? el("a", { href: image.original_url, target: "_blank", rel: "noopener", text: "original" }) : ""),
      el("div", { class: "sizes" }));
    cards.set(image.id, card);
  }
  card.dataset.status = image.status;
  const item = uploads.querySelector(`[data-testid=upload][data-image-id="${image.id}"]`);
  if (item && image.status !== "processing") {
    item.querySelector(".upload-status").textContent =
      image.status === "done" ? "uploaded; every size is ready" : `uploaded; resizing failed: ${image.error || ""}`;
  }
  const badge = card.querySelector(".badge");
  badge.textContent = image.status === "failed" ? `failed: ${image.error || "cannot be resized"}` : image.status;
  badge.className = `badge ${image.status}`;
  const sizes = card.querySelector(".sizes");
  for (const size of image.sizes) {
    let figure = sizes.querySelector(`figure[data-size="${size.size}"]`);
    if (!figure) {
      figure = sizeFigure(image, size);
      sizes.append(figure);
    }
    if (size.ready) showSize(figure, image, size);
  }
  return card;
}

async function refresh() {
  const response = await fetch(`${API}?limit=${GALLERY_LIMIT}`, { cache: "no-store" });
  const text = await response.text();
  if (!response.ok) throw new Error(errorText(response, text));
  const { images } = JSON.parse(text);
  const seen = new Set();
  let previous = null;
  for (const image of images) {
    seen.add(image.id);
    const card = renderCard(image);
    // Newest first; only move nodes that are out of place so loaded images never reload.
    const expectedPosition = previous ? previous.nextSibling : gallery.firstChild;
    if (card !== expectedPosition) gallery.insertBefore(card, expectedPosition);
    previous = card;
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) { card.remove(); cards.delete(id); }
  }
  busy = images.some((image) => image.status === "processing");
  galleryStatus.textContent = images.length ? `${images.length} most recent images` : "No images yet.";
}

function schedulePoll(delay) {
  clearTimeout(pollTimer);
  pollTimer = setTimeout(poll, delay);
}

async function poll() {
  try {
    if (!document.hidden || inFlight > 0) await refresh();
  } catch (error) {
    galleryStatus.textContent = `Cannot load the gallery: ${error.message}. Retrying…`;
  }
  schedulePoll(inFlight > 0 || busy ? FAST_POLL_MS : SLOW_POLL_MS);
}

function uploadAll(files) {
  for (const file of files) uploadFile(file);
}

const input = document.getElementById("file-input");
input.addEventListener("change", () => { uploadAll(input.files); input.value = ""; });
const dropZone = document.getElementById("drop-zone");
dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("over"); });
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("over");
  uploadAll(event.dataTransfer.files);
});
document.addEventListener("visibilitychange", () => { if (!document.hidden) schedulePoll(0); });
schedulePoll(0);
