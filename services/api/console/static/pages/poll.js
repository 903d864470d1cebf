// Run a refresh now and then every `ms` while the page is shown; an error shows in `note`
// and the next round tries again (a stopped API or a network blip heals by itself).

export function every(ms, refresh, note) {
  let timer = null;
  let stopped = false;
  let running = false;
  async function round() {
    if (stopped || running) return;
    running = true;
    clearTimeout(timer);
    try {
      await refresh();
      if (note && note.dataset.failing) {
        note.textContent = "";
        delete note.dataset.failing;
      }
    } catch (err) {
      if (note) {
        note.textContent = `Could not refresh: ${err.message}`;
        note.dataset.failing = "1";
      }
    } finally {
      running = false;
      if (!stopped) timer = setTimeout(round, ms);
    }
  }
  round();
  return {
    now: round,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
