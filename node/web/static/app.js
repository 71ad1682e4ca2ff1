// media-node web: the page. Plain JavaScript, no build step, nothing fetched from
// elsewhere. It talks WebRTC only to the media-node on this machine (which relays to the
// camera over the overlay), and calls the node's small HTTP API (docs/web.md).
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (token) options.headers["X-Media-Node-Token"] = token;
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error((data.error && data.error.message) || response.statusText);
    err.code = data.error && data.error.code;
    throw err;
  }
  return data;
}

function hasH264() {
  const caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities("video");
  return !!caps && caps.codecs.some((c) => c.mimeType.toLowerCase() === "video/h264");
}

const NO_H264 =
  "This browser cannot decode H.264, the camera's video codec, so only the sound plays. " +
  "Firefox decodes H.264 once it has downloaded its OpenH264 plugin (Settings → Extensions " +
  "& Themes → Plugins → OpenH264, needs the internet once); Chromium and Chrome decode it " +
  "out of the box.";

function waitForGathering(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 5000); // whatever was gathered by then
  });
}

// --- one live view -----------------------------------------------------------------

const state = { pc: null, session: null, peer: null, mic: null, talkSender: null, talk: null, error: null,
  lastStats: null, stats: {} };

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

// An offer that asks for video (H.264 when the browser has it) and audio, and may send
// audio back (push-to-talk: the microphone track is only added while the button is held).
async function makePeerConnection() {
  const pc = new RTCPeerConnection({ iceServers: [] });
  const stream = new MediaStream();
  pc.addTransceiver("video", { direction: "recvonly" });
  state.talkSender = pc.addTransceiver("audio", { direction: "sendrecv" }).sender;
  pc.ontrack = (event) => {
    stream.addTrack(event.track);
    const video = $("video");
    if (video.srcObject !== stream) video.srcObject = stream;
    video.play().catch(() => {
      // autoplay with sound needs a gesture: play muted, the Mute button unmutes
      video.muted = true;
      $("mute").textContent = "Unmute";
      video.play().catch(() => {});
    });
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") showMessage("The connection to this machine's media-node failed.");
  };
  return pc;
}

async function openView(name, offerFor) {
  await closeView();
  state.peer = name;
  state.error = null;
  $("live").hidden = false;
  $("live-title").textContent = name;
  showMessage(hasH264() ? "Connecting…" : NO_H264);
  const pc = (state.pc = await makePeerConnection());
  await pc.setLocalDescription(await pc.createOffer());
  await waitForGathering(pc);
  try {
    const reply = await offerFor(pc.localDescription.sdp);
    state.session = reply.session;
    state.talk = reply.talk;
    await pc.setRemoteDescription({ type: "answer", sdp: reply.answer });
    showMessage(reply.no_h264 ? NO_H264 : "");
    updateTalk();
    history.replaceState(null, "", `?token=${encodeURIComponent(token)}&view=${encodeURIComponent(name)}`);
  } catch (e) {
    state.error = { code: e.code, message: e.message };
    showMessage(`Cannot open ${name}: ${e.message}`);
    pc.close();
    state.pc = null;
  }
}

function viewPeer(name) {
  return openView(name, (offer) => api("POST", "/api/sessions", { peer: name, offer, talk: true }));
}

async function closeView() {
  stopTalking();
  if (state.session) {
    const id = state.session;
    state.session = null;
    await api("DELETE", `/api/sessions/${id}`).catch(() => {});
  }
  if (state.pc) state.pc.close();
  state.pc = null;
  if (state.mic) state.mic.getTracks().forEach((t) => t.stop());
  state.mic = null;
  $("video").srcObject = null;
}

function updateTalk() {
  const talk = state.talk || {};
  $("talk").disabled = !talk.granted;
  $("talk-note").textContent = talk.granted
    ? "Hold the button to talk through the camera's speaker."
    : talk.refused
      ? `Talk: ${talk.refused.message}`
      : "";
}

async function startTalking() {
  if (!state.session || !(state.talk && state.talk.granted)) return;
  try {
    if (!state.mic) state.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    const track = state.mic.getAudioTracks()[0];
    track.enabled = true;
    await state.talkSender.replaceTrack(track);
    await api("POST", `/api/sessions/${state.session}/talk`, { on: true });
    $("talk").classList.add("active");
  } catch (e) {
    $("talk-note").textContent = `Talk: ${e.message}`;
  }
}

function stopTalking() {
  if (!$("talk").classList.contains("active")) return;
  $("talk").classList.remove("active");
  if (state.mic) state.mic.getAudioTracks().forEach((t) => (t.enabled = false));
  if (state.session) api("POST", `/api/sessions/${state.session}/talk`, { on: false }).catch(() => {});
}

function snapshot() {
  const video = $("video");
  if (!video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  const url = canvas.toDataURL("image/png");
  const a = document.createElement("a");
  a.href = url;
  a.download = `${state.peer}-${new Date().toISOString().replace(/[:.]/g, "-")}.png`;
  a.click();
  return url;
}

// --- live stats (the browser's own getStats, plus the camera leg from the node) -----

async function collectStats() {
  const pc = state.pc;
  if (!pc) return null;
  const report = await pc.getStats();
  const out = { video: null, audio: null, rtt_ms: null };
  const codecs = {};
  report.forEach((s) => { if (s.type === "codec") codecs[s.id] = s.mimeType; });
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && (s.kind === "video" || s.kind === "audio")) {
      out[s.kind] = {
        codec: codecs[s.codecId] || null,
        bytes: s.bytesReceived,
        packets: s.packetsReceived,
        lost: s.packetsLost,
        width: s.frameWidth,
        height: s.frameHeight,
        fps: s.framesPerSecond,
        decoded: s.framesDecoded,
        samples: s.totalSamplesReceived,
        energy: s.totalAudioEnergy,
        level: s.audioLevel,
      };
    }
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
      out.rtt_ms = s.currentRoundTripTime * 1000;
    }
  });
  const now = performance.now();
  const last = state.lastStats;
  if (last && out.video && last.video) {
    out.video.kbps = ((out.video.bytes - last.video.bytes) * 8) / (now - last.at);
  }
  out.at = now;
  state.lastStats = out;
  return out;
}

function row(name, value) {
  return `<tr><td>${name}</td><td>${value === undefined || value === null ? "–" : value}</td></tr>`;
}

async function renderStats() {
  const s = await collectStats().catch(() => null);
  if (!s) return;
  let camera = null;
  if (state.session) camera = await api("GET", `/api/sessions/${state.session}`).catch(() => null);
  state.stats = { page: s, camera };
  const v = s.video || {};
  const leg = (camera && camera.camera_leg) || {};
  $("stats").tBodies[0].innerHTML = [
    row("codec", [v.codec, s.audio && s.audio.codec].filter(Boolean).join(" + ")),
    row("resolution", v.width ? `${v.width}×${v.height}` : null),
    row("fps", v.fps),
    row("bitrate", v.kbps ? `${v.kbps.toFixed(0)} kbit/s` : null),
    row("packets lost", (v.lost || 0) + ((s.audio && s.audio.lost) || 0)),
    row("RTT to the camera", leg.rtt_ms !== undefined && leg.rtt_ms !== null ? `${leg.rtt_ms} ms` : null),
    row("RTT page ↔ node", s.rtt_ms !== null ? `${s.rtt_ms.toFixed(1)} ms` : null),
    row("lost on the overlay", leg.packets_lost),
  ].join("");
}

// --- the camera list ------------------------------------------------------------------

async function loadPeers() {
  const data = await api("GET", "/api/peers");
  $("node").textContent = data.node;
  const list = $("peer-list");
  list.innerHTML = "";
  for (const p of data.peers) {
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = `dot ${p.online === true ? "online" : p.online === false ? "offline" : ""}`;
    dot.title = p.online === null ? "status unknown (no MQTT)" : p.online ? "online" : "offline";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = p.name;
    const perm = document.createElement("span");
    perm.className = "perm";
    perm.textContent = p.allow.join(", ");
    const button = document.createElement("button");
    button.textContent = "Watch";
    button.onclick = () => viewPeer(p.name);
    li.append(dot, name, perm, button);
    list.append(li);
  }
  $("peers-note").textContent = data.peers.length ? "" : "No peers yet: add one with `media-node peers add`.";
  return data.peers;
}

// --- the doorbell: calls to this node ring every open page ----------------------------

const rings = {};

function beep() {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    osc.frequency.value = 880;
    osc.connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.4);
  } catch (e) { /* no audio output */ }
}

function showRing(event) {
  rings[event.ring] = event;
  $("ring").hidden = false;
  $("ring-text").textContent = `${event.peer} is calling`;
  $("ring-answer").onclick = () => answerRing(event.ring);
  $("ring-decline").onclick = () => declineRing(event.ring);
  beep();
  if (window.Notification && Notification.permission === "granted") {
    new Notification("media-node", { body: `${event.peer} is calling` });
  }
}

function hideRing(id) {
  delete rings[id];
  if (!Object.keys(rings).length) $("ring").hidden = true;
}

function answerRing(id) {
  const event = rings[id];
  hideRing(id);
  return openView(event.peer, (offer) => api("POST", `/api/rings/${id}/answer`, { offer }));
}

function declineRing(id) {
  hideRing(id);
  return api("POST", `/api/rings/${id}/decline`, {}).catch(() => {});
}

function listen() {
  const source = new EventSource(`/api/events?token=${encodeURIComponent(token)}`);
  source.onopen = () => { state.listening = true; };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.event === "ring") showRing(event);
    else if (event.event === "ring-ended") hideRing(event.ring);
    else if (event.event === "session-ended" && event.session === state.session) {
      showMessage(`The view ended (${event.reason}).`);
      state.session = null;
    }
  };
  return source;
}

// --- wiring -----------------------------------------------------------------------------

function wire() {
  $("mute").onclick = () => {
    const video = $("video");
    video.muted = !video.muted;
    $("mute").textContent = video.muted ? "Unmute" : "Mute";
    if (!video.muted) video.play().catch(() => {});
  };
  $("fullscreen").onclick = () => $("stage").requestFullscreen().catch(() => {});
  $("snapshot").onclick = snapshot;
  $("close").onclick = async () => { await closeView(); $("live").hidden = true; };
  const talk = $("talk");
  talk.onpointerdown = startTalking;
  talk.onpointerup = talk.onpointerleave = stopTalking;
  setInterval(renderStats, 1000);
}

// For scripts and tests: the same actions the buttons do.
window.mn = { state, viewPeer, closeView, startTalking, stopTalking, snapshot, collectStats, loadPeers,
  answerRing, declineRing, rings, hasH264,
  quality() {
    const v = $("video");
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
    return { width: v.videoWidth, height: v.videoHeight, total: q.totalVideoFrames || 0,
      dropped: q.droppedVideoFrames || 0, time: v.currentTime, paused: v.paused, muted: v.muted };
  },
  message() { return $("message").hidden ? "" : $("message").textContent; },
};

wire();
listen();
loadPeers().then(() => {
  const view = params.get("view");
  if (view) viewPeer(view);
}).catch((e) => { $("peers-note").textContent = e.message; });
