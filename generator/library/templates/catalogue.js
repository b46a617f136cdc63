// The catalogue's behaviour: filter, sort, search, one player at a time, click-to-seek waveforms, and
// graphics drawn only for cards near the screen. It reads data-* attributes and the data files'
// numbers only: no string from a sidecar is ever parsed as HTML, so a title like "<script>" stays text.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const main = $("cards");
  const LEVELS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";  // catalogue_data.WAVE_LEVELS
  const UNKNOWN_KEY = 99;  // catalogue.UNKNOWN_KEY_ORDER
  const list = (text) => (text ? text.split("|") : []);
  const tracks = Array.from(main.querySelectorAll("article.card"), (el, index) => {
    const d = el.dataset, title = el.querySelector(".title").textContent, bpm = d.bpm === "" ? null : parseFloat(d.bpm);
    // Search covers title, genre, key, BPM (as written and rounded), instruments, moods and tags.
    const words = [title, d.genre, d.musicKey, bpm === null ? "" : d.bpm + " " + Math.round(bpm) + " bpm",
      d.instruments, d.moods, ...Array.from(el.querySelectorAll(".tags li"), (li) => li.textContent)];
    return {
      el, index, key: d.key, title: title.toLowerCase(), genre: d.genre, duration: parseFloat(d.duration),
      bpm, keyOrder: parseInt(d.keyOrder, 10), musicKey: d.musicKey,
      instruments: list(d.instruments), moods: list(d.moods), search: words.join(" ").toLowerCase(),
      audio: el.querySelector("audio"), wave: el.querySelector(".wave"), roll: el.querySelector("canvas.roll"),
      sections: Array.from(el.querySelectorAll(".sections button"), (b) => ({ name: b.dataset.name, start: parseFloat(b.dataset.start) })),
      data: null, requested: false, pending: null,
    };
  });
  const byKey = new Map(tracks.map((t) => [t.key, t]));
  const byElement = new Map(tracks.map((t) => [t.el, t]));
  const byAudio = new Map(tracks.filter((t) => t.audio).map((t) => [t.audio, t]));

  // ---- filters and sort ----
  const form = $("filters"), search = $("search"), sort = $("sort"), count = $("count"), toggle = $("filters-toggle");
  const choices = { genre: $("genre-filter"), musicKey: $("key-filter"), instruments: $("instrument-filter"), moods: $("mood-filter") };
  const ranges = { bpm: [$("min-bpm"), $("max-bpm")], duration: [$("min-duration"), $("max-duration")] };
  const filters = [...Object.values(choices), ...ranges.bpm, ...ranges.duration].filter(Boolean);

  function limit(input) {
    const value = parseFloat(input.value);
    return isNaN(value) ? null : value;
  }

  function within(value, [low, high]) {
    const lo = limit(low), hi = limit(high);
    if (lo === null && hi === null) { return true; }
    return value !== null && (lo === null || value >= lo) && (hi === null || value <= hi);
  }

  function chosen(t) {
    return Object.entries(choices).every(([field, select]) => {
      if (!select || !select.value) { return true; }
      const have = t[field];
      return Array.isArray(have) ? have.includes(select.value) : have === select.value;
    });
  }

  function apply() {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    tracks.forEach((t) => {
      const ok = chosen(t) && within(t.bpm, ranges.bpm) && within(t.duration, ranges.duration) &&
        words.every((w) => t.search.includes(w));
      t.el.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + tracks.length + " tracks";
    $("no-match").hidden = shown !== 0;
    const active = filters.filter((c) => c.value).length;
    toggle.textContent = active ? "Filters (" + active + ")" : "Filters";
  }

  const sortKeys = {
    title: (t) => t.title, duration: (t) => t.duration, bpm: (t) => t.bpm,
    key: (t) => (t.keyOrder === UNKNOWN_KEY ? null : t.keyOrder),
  };

  function compare(a, b) {
    const descending = sort.value.startsWith("-"), key = sortKeys[sort.value.replace("-", "")];
    if (key) {
      const x = key(a), y = key(b);
      if (x === null || y === null) {  // unknown values last, either way round
        if (x !== y) { return x === null ? 1 : -1; }
      } else {
        const c = typeof x === "string" ? x.localeCompare(y) : x - y;
        if (c) { return descending ? -c : c; }
      }
    }
    return a.index - b.index;
  }

  function arrange() {
    const order = document.createDocumentFragment();
    tracks.slice().sort(compare).forEach((t) => order.appendChild(t.el));
    main.appendChild(order);
  }

  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  sort.addEventListener("change", arrange);
  // Links save rather than open; set on click so that 1,000 cards' HTML carries no `download` attributes.
  main.addEventListener("click", (e) => {
    const link = e.target.closest(".downloads a");
    if (link) { link.download = ""; }
  });
  form.addEventListener("reset", () => setTimeout(() => { apply(); arrange(); }, 0));
  toggle.addEventListener("click", () => {
    const open = form.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });

  // ---- players: one at a time; the waveform seeks ----
  function total(t) {
    const d = t.audio ? t.audio.duration : NaN;
    return isFinite(d) && d > 0 ? d : t.duration;
  }

  function now(t) {
    return t.pending !== null ? t.pending : t.audio.currentTime;
  }

  function clock(seconds) {
    const whole = Math.round(seconds);
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function progress(t, seconds) {
    if (t.wave && t.wave.getAttribute("role") === "slider") {
      t.wave.setAttribute("aria-valuenow", seconds.toFixed(1));
      t.wave.setAttribute("aria-valuetext", clock(seconds) + " of " + clock(total(t)));
    }
    drawWave(t);
  }

  function seek(t, seconds) {
    const a = t.audio, to = Math.max(0, Math.min(seconds, total(t)));
    if (a.readyState >= 1) {
      a.currentTime = to;
    } else {  // not loaded yet (preload="none"): load, then move
      t.pending = to;
      a.preload = "auto";
      a.addEventListener("loadedmetadata", () => {
        if (t.pending !== null) { a.currentTime = t.pending; t.pending = null; }
      }, { once: true });
      if (a.networkState !== HTMLMediaElement.NETWORK_LOADING) { a.load(); }
    }
    progress(t, to);
  }

  document.addEventListener("play", (e) => {
    byAudio.forEach((t, audio) => { if (audio !== e.target && !audio.paused) { audio.pause(); } });
  }, true);
  ["timeupdate", "seeked", "loadedmetadata"].forEach((type) => document.addEventListener(type, (e) => {
    const t = byAudio.get(e.target);
    if (t && t.pending === null) { progress(t, t.audio.currentTime); }
  }, true));

  const STEPS = { ArrowRight: 5, ArrowUp: 5, ArrowLeft: -5, ArrowDown: -5, PageUp: 30, PageDown: -30 };
  byAudio.forEach((t) => {
    t.wave.addEventListener("click", (e) => {
      const box = t.wave.getBoundingClientRect();
      seek(t, (e.clientX - box.left) / box.width * total(t));
    });
    t.wave.addEventListener("keydown", (e) => {
      let to = null;
      if (e.key in STEPS) { to = now(t) + STEPS[e.key]; }
      if (e.key === "Home") { to = 0; }
      if (e.key === "End") { to = total(t); }
      if (e.key === " " || e.key === "Enter") {
        e.preventDefault();
        if (t.audio.paused) { t.audio.play().catch(() => {}); } else { t.audio.pause(); }
      }
      if (to !== null) { e.preventDefault(); seek(t, to); }
    });
    t.el.querySelectorAll(".sections button").forEach((button) => button.addEventListener("click", () => {
      seek(t, parseFloat(button.dataset.start));
      t.audio.play().catch(() => {});
    }));
  });

  // ---- graphics: each card's data file is loaded, and drawn, when the card comes near the screen ----
  window.genCatalogueTrack = (key, data) => {
    const t = byKey.get(key);
    if (!t) { return; }
    t.data = data;
    const facts = t.el.querySelector("details dl");
    (data.facts || []).forEach(([label, text]) => {
      facts.appendChild(document.createElement("dt")).textContent = label;
      facts.appendChild(document.createElement("dd")).textContent = text;
    });
    draw(t);
  };

  function request(t) {
    if (t.requested) { return; }
    t.requested = true;
    const script = document.createElement("script");
    script.src = main.dataset.folder + "/" + t.key + ".js";
    script.onload = script.onerror = () => script.remove();
    document.head.appendChild(script);
  }

  function canvasContext(canvas) {
    const box = canvas.getBoundingClientRect(), ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(box.width * ratio)), h = Math.max(1, Math.round(box.height * ratio));
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, box.width, box.height);
    return [ctx, box.width, box.height];
  }

  function drawRoll(t) {
    const roll = t.data.roll;
    if (!roll || !t.roll) { return; }
    const [ctx, w, h] = canvasContext(t.roll);
    const rowH = h / (roll.high - roll.low + 1), colW = w / roll.cols;
    roll.parts.forEach(([colour, runs]) => {
      ctx.fillStyle = colour;
      let x = 0;
      for (let i = 0; i < runs.length; i += 3) {  // [pitch, dx, width] per run
        x += runs[i + 1];
        ctx.fillRect(x * colW, (roll.high - runs[i]) * rowH, Math.max(runs[i + 2] * colW, 1), Math.max(rowH, 1));
      }
    });
  }

  function wavePath(wave, w, h) {
    const n = wave.hi.length, step = w / Math.max(n - 1, 1), top = LEVELS.length - 1, path = new Path2D();
    const y = (c) => h - LEVELS.indexOf(c) / top * h;
    for (let i = 0; i < n; i += 1) { path.lineTo(i * step, y(wave.hi[i])); }
    for (let i = n - 1; i >= 0; i -= 1) { path.lineTo(i * step, y(wave.lo[i])); }
    path.closePath();
    return path;
  }

  function drawWave(t) {
    const canvas = t.wave && t.wave.querySelector("canvas");
    if (!canvas || !t.data) { return; }
    const [ctx, w, h] = canvasContext(canvas);
    const length = Math.max(total(t), 1e-3), played = t.audio ? now(t) / length * w : 0;
    ctx.fillStyle = "#dadce0";
    ctx.fillRect(0, h / 2 - 0.5, w, 1);
    if (t.data.wave) {
      const path = wavePath(t.data.wave, w, h);
      ctx.fillStyle = "#5f6368";
      ctx.fill(path);
      ctx.save();
      ctx.beginPath();
      ctx.rect(0, 0, played, h);
      ctx.clip();
      ctx.fillStyle = "#0072B2";
      ctx.fill(path);
      ctx.restore();
    }
    ctx.font = "11px system-ui, sans-serif";
    t.sections.forEach((s) => {  // a line at each section's start, its name on a white tab
      const x = s.start / length * w, label = ctx.measureText(s.name).width + 6;
      ctx.fillStyle = "#b3261e";
      ctx.fillRect(x, 0, 2, h);
      ctx.fillRect(x, 0, label, 14);
      ctx.fillStyle = "#fff";
      ctx.fillText(s.name, x + 3, 11);
    });
    if (played > 0) { ctx.fillStyle = "#1d1d1f"; ctx.fillRect(played - 1, 0, 2, h); }
  }

  function draw(t) {
    if (t.data) { drawRoll(t); drawWave(t); }
  }

  const near = new Set();
  const observer = new IntersectionObserver((entries) => entries.forEach((entry) => {
    const t = byElement.get(entry.target);
    if (!entry.isIntersecting) { near.delete(t); return; }
    near.add(t);
    request(t);
    if (t.audio && t.audio.preload === "none") { t.audio.preload = "metadata"; }
    draw(t);
  }), { rootMargin: "400px 0px" });
  tracks.forEach((t) => observer.observe(t.el));
  let redraw = 0;
  window.addEventListener("resize", () => {
    clearTimeout(redraw);
    redraw = setTimeout(() => near.forEach(draw), 150);
  });

  apply();
  window.catalogueReady = performance.now();  // when the list is interactive; read by the tests and bench
})();
