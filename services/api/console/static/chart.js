// Deliveries over time as an SVG bar chart: one bar per bucket, in messages per second.

import { h, svg } from "./dom.js";
import { clock, count } from "./format.js";

const WIDTH = 720;
const HEIGHT = 200;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

export function deliveriesChart(points, bucketS) {
  if (!points.length || !bucketS) return h("p", { class: "muted" }, "Nothing sent yet.");
  points.sort((a, b) => a[0] - b[0]);
  const first = points[0][0];
  const last = points[points.length - 1][0] + bucketS * 1000;
  const span = Math.max(last - first, bucketS * 1000);
  const peak = Math.max(...points.map(([, sent]) => sent / bucketS));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const barW = Math.max(1, (plotW * bucketS * 1000) / span - 1);
  const bars = points.map(([at, sent]) => {
    const perSecond = sent / bucketS;
    const height = peak ? (plotH * perSecond) / peak : 0;
    const x = PAD.left + (plotW * (at - first)) / span;
    return svg("rect", { x: x.toFixed(1), y: (PAD.top + plotH - height).toFixed(1), width: barW.toFixed(1), height: height.toFixed(1), class: "bar-rect" }, svg("title", {}, `${clock(new Date(at).toISOString())}: ${count(sent)} sent (${count(Math.round(perSecond))}/s)`));
  });
  const axis = [
    svg("line", { x1: PAD.left, y1: PAD.top + plotH, x2: WIDTH - PAD.right, y2: PAD.top + plotH, class: "axis" }),
    svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: PAD.top + plotH, class: "axis" }),
    svg("text", { x: PAD.left - 6, y: PAD.top + 10, "text-anchor": "end", class: "label" }, `${count(Math.round(peak))}/s`),
    svg("text", { x: PAD.left - 6, y: PAD.top + plotH, "text-anchor": "end", class: "label" }, "0"),
    svg("text", { x: PAD.left, y: HEIGHT - 8, class: "label" }, clock(new Date(first).toISOString())),
    svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 8, "text-anchor": "end", class: "label" }, clock(new Date(last).toISOString())),
  ];
  const total = points.reduce((sum, [, sent]) => sum + sent, 0);
  return h(
    "figure",
    {},
    svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": `Deliveries over time: ${total} sent` }, axis, bars),
    h("figcaption", { class: "muted" }, `${count(total)} sent, ${bucketS} s per bar, peak ${count(Math.round(peak))}/s`),
  );
}
