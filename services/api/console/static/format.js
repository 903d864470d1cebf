// How numbers, times and durations read in the console.

const integer = new Intl.NumberFormat("en");

export function count(n) {
  return n === null || n === undefined ? "–" : integer.format(n);
}

export function percent(p) {
  return `${(Number(p) || 0).toFixed(1)}%`;
}

export function rate(perSecond) {
  return `${integer.format(Math.round((Number(perSecond) || 0) * 10) / 10)}/s`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  let s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h ? `${h} h ${m} min` : `${m} min ${s} s`;
}

export function when(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return date.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" });
}

export function clock(iso) {
  return new Date(iso).toLocaleTimeString("en-GB");
}

// <input type="datetime-local"> value for a Date, in the browser's zone.
export function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

// The datetime-local value as an ISO 8601 instant with its offset (the API wants aware times).
export function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : undefined;
}
