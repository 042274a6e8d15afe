// The recording section of an ended call's card: a player (the server audits every listen)
// and what the analysis found: who talked how much and when, silence, overlaps, clipping.
//
// The analysis runs in a background job after the call ends, so a card may ask before it is
// ready: it asks again a few times, further apart each time, then offers a button.

import { api } from "/ui/shared/api.js";
import { locale, t } from "/ui/shared/i18n.js";

const RETRY_DELAYS_MS = [2000, 4000, 8000, 16000, 32000];
const SVG = "http://www.w3.org/2000/svg";
const LANE_WIDTH = 1000; // the lane's own units; the SVG stretches to the card's width
const SIDE_ORDER = ["caller", "agent", "overall"];
// Codes after which there is no audio worth offering.
const NO_AUDIO = new Set(["missing", "bad_name", "empty", "not_wav", "unreadable"]);

function node(tag, { cls, testid, text, attrs } = {}, ...children) {
  const made = document.createElement(tag);
  if (cls) made.className = cls;
  if (testid) made.dataset.testid = testid;
  if (text !== undefined) made.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) made.setAttribute(name, value);
  made.append(...children.filter((c) => c !== null && c !== undefined));
  return made;
}

function seconds(value) {
  if (typeof value !== "number") return "—";
  const format = new Intl.NumberFormat(locale(), { maximumFractionDigits: value < 10 ? 1 : 0 });
  return t("recording.seconds", { value: format.format(value) });
}

function percent(ratio, digits = 0) {
  if (typeof ratio !== "number") return "—";
  const format = new Intl.NumberFormat(locale(), {
    style: "percent",
    maximumFractionDigits: digits,
  });
  return format.format(ratio);
}

/** One side's speech as blocks on a timeline of the whole recording. */
function lane(side, duration) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", `rec-lane rec-lane--${side.side}`);
  svg.setAttribute("viewBox", `0 0 ${LANE_WIDTH} 10`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const track = document.createElementNS(SVG, "rect");
  track.setAttribute("class", "rec-lane__track");
  track.setAttribute("width", String(LANE_WIDTH));
  track.setAttribute("height", "10");
  svg.append(track);
  if (duration > 0) {
    for (const [start, end] of side.segments) {
      const block = document.createElementNS(SVG, "rect");
      block.setAttribute("class", "rec-lane__speech");
      block.setAttribute("x", String((start / duration) * LANE_WIDTH));
      block.setAttribute("width", String(Math.max(((end - start) / duration) * LANE_WIDTH, 1)));
      block.setAttribute("height", "10");
      svg.append(block);
    }
  }
  return svg;
}

function sideRow(side, duration) {
  return node(
    "div",
    { cls: "rec-side", testid: `rec-side-${side.side}` },
    node("span", { cls: "rec-side__name", text: t(`recording.side.${side.side}`) }),
    lane(side, duration),
    node("span", {
      cls: "rec-side__ratio",
      testid: "rec-talk-ratio",
      text: percent(side.talk_ratio),
      attrs: { title: t("recording.talk_ratio_hint", { seconds: seconds(side.speech_s) }) },
    }),
  );
}

function fact(label, value, testid) {
  return node(
    "div",
    { cls: "rec-fact", testid },
    node("dt", { text: label }),
    node("dd", { text: value }),
  );
}

function facts(analysis) {
  const list = [
    fact(t("recording.duration"), seconds(analysis.duration_s), "rec-duration"),
    fact(
      t("recording.silence"),
      t("recording.silence_value", {
        total: seconds(analysis.total_silence_s),
        longest: seconds(analysis.longest_silence_s),
      }),
      "rec-silence",
    ),
    fact(t("recording.first_speech"), seconds(analysis.first_speech_delay_s), "rec-first-speech"),
  ];
  if (analysis.overlap_s !== null && analysis.overlap_s !== undefined) {
    list.push(
      fact(
        t("recording.overlap"),
        t("recording.overlap_value", {
          seconds: seconds(analysis.overlap_s),
          count: analysis.interruptions ?? 0,
        }),
        "rec-overlap",
      ),
    );
  }
  return node("dl", { cls: "rec-facts" }, ...list);
}

export class RecordingPanel {
  constructor(callId) {
    this.callId = callId;
    this.analysis = null;
    this.loading = false;
    this.failedToLoad = false;
    this.attempt = 0;
    this.timer = null;
    this.active = false;
    this.player = node("audio", {
      cls: "rec-player",
      testid: "rec-player",
      attrs: { controls: "", preload: "none", src: `/api/calls/${callId}/recording` },
    });
    this.el = node("section", { cls: "pop__section rec", testid: "pop-recording" });
    this.el.hidden = true;
  }

  /** Show the section for an ended, recorded call; hide it otherwise. */
  update(call, ended) {
    const wanted = Boolean(ended && call && call.recording);
    this.el.hidden = !wanted;
    if (!wanted) return;
    if (!this.active) {
      this.active = true;
      this.load();
    }
    this.render();
  }

  async load() {
    clearTimeout(this.timer);
    this.loading = true;
    this.failedToLoad = false;
    this.render();
    try {
      this.analysis = await api.get(`/api/calls/${this.callId}/analysis`);
    } catch {
      this.failedToLoad = true;
    } finally {
      this.loading = false;
    }
    const waiting = this.failedToLoad || (this.analysis && this.analysis.status === "pending");
    if (waiting && this.attempt < RETRY_DELAYS_MS.length && this.el.isConnected) {
      this.timer = setTimeout(() => this.load(), RETRY_DELAYS_MS[this.attempt]);
      this.attempt += 1;
    }
    this.render();
  }

  retryButton() {
    return node("button", {
      cls: "btn btn--ghost rec-retry",
      testid: "rec-retry",
      text: t("recording.check_again"),
      attrs: { type: "button" },
    });
  }

  render() {
    if (this.el.hidden) return;
    const analysis = this.analysis;
    const parts = [node("h3", { cls: "pop__section-title", text: t("recording.title") })];
    const code = analysis && analysis.status === "failed" ? analysis.error_code : null;
    if (!NO_AUDIO.has(code)) parts.push(this.player);
    if (!analysis) {
      parts.push(
        node("p", {
          cls: "pop__none",
          testid: "rec-state",
          text: t(this.failedToLoad ? "recording.unavailable" : "recording.loading"),
        }),
      );
    } else if (analysis.status === "pending") {
      const out = this.attempt >= RETRY_DELAYS_MS.length && !this.loading;
      const retry = out ? this.retryButton() : null;
      if (retry) {
        retry.addEventListener("click", () => {
          this.attempt = 0;
          this.load();
        });
      }
      parts.push(
        node("p", { cls: "pop__none", testid: "rec-state", text: t("recording.pending") }, retry),
      );
    } else if (analysis.status === "failed") {
      parts.push(
        node("p", {
          cls: code === "empty" ? "pop__none" : "rec-error",
          testid: "rec-error",
          text: t(`recording.error.${code}`),
          attrs: { role: "status", title: analysis.error_message || "" },
        }),
      );
    } else if (analysis.status === "done") {
      parts.push(...this.renderDone(analysis));
    }
    this.el.replaceChildren(...parts);
  }

  renderDone(analysis) {
    const sides = [...analysis.sides].sort(
      (a, b) => SIDE_ORDER.indexOf(a.side) - SIDE_ORDER.indexOf(b.side),
    );
    const out = [
      node(
        "div",
        { cls: "rec-sides" },
        ...sides.map((side) => sideRow(side, analysis.duration_s || 0)),
      ),
      facts(analysis),
    ];
    if (analysis.clipped) {
      out.push(
        node("p", {
          cls: "rec-warning",
          testid: "rec-clipped",
          text: t("recording.clipped", { share: percent(analysis.clipping_ratio, 1) }),
          attrs: { role: "status" },
        }),
      );
    }
    if (analysis.transcript) {
      out.push(
        node("p", { cls: "rec-transcript", testid: "rec-transcript", text: analysis.transcript }),
      );
    }
    return out;
  }
}
