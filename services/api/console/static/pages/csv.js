// Split CSV text into its header and its records, keeping a quoted newline inside its record,
// so a file can be sent in chunks that each start with the header.

export function splitRecords(text) {
  const records = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === '"') quoted = !quoted;
    else if (ch === "\n" && !quoted) {
      records.push(text.slice(start, i).replace(/\r$/, ""));
      start = i + 1;
    }
  }
  if (start < text.length) records.push(text.slice(start).replace(/\r$/, ""));
  const nonEmpty = records.filter((r) => r.trim() !== "");
  const header = (nonEmpty.shift() || "").replace(/^\uFEFF/, "");
  return { header, records: nonEmpty };
}
