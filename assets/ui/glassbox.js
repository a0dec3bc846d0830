/* Glassbox's one browser-side script (injected once per page by app.py). It handles the export buttons under every */
/* chart and token view: PNG and SVG through the page's own Plotly (Plotly.downloadImage, no remote service), CSV */
/* from the numbers the chart holds, a token view as PNG (drawn on a canvas) or as a self-contained HTML file. */
(() => {
  if (window.__glassboxExports) return;
  window.__glassboxExports = true;

  const save = (blob, name) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 2000);
  };
  const box = (key) => document.querySelector(".st-key-" + key);
  const cell = (v) => {
    const s = v === null || v === undefined || (typeof v === "number" && isNaN(v)) ? "" : String(v);
    return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  const plain = (s) => String(s ?? "").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  const list = (a) => (a ? Array.from(a) : []);

  /* The numbers a chart draws, as rows: a heatmap as its matrix (row label, then one column per x label); other */
  /* traces as one row per point (trace name, x, y). */
  function csv(gd) {
    const rows = [];
    for (const t of gd._fullData || gd.data) {  /* _fullData: the numbers decoded from the compact typed arrays */
      if (t.type === "heatmap") {
        const z = list(t.z).map(list);
        const xs = list(t.x).length ? list(t.x) : z[0].map((_, i) => i);
        const ys = list(t.y).length ? list(t.y) : z.map((_, i) => i);
        rows.push(["", ...xs.map(plain)]);
        z.forEach((r, i) => rows.push([plain(ys[i]), ...r]));
      } else {
        if (!rows.length) rows.push(["series", "x", "y", "z"]);
        const xs = list(t.x), ys = list(t.y), zs = list(t.z);
        const n = Math.max(xs.length, ys.length);
        for (let i = 0; i < n; i++) {
          if (xs[i] === null && ys[i] === null) continue;  /* the gaps between line segments */
          rows.push([t.name || t.type, plain(xs[i]), plain(ys[i]), zs.length ? zs[i] : ""]);
        }
      }
    }
    return rows.map((r) => r.map(cell).join(",")).join("\n") + "\n";
  }

  /* A token view drawn on a canvas: each span's text on its own background colour, wrapped like the page. */
  function tokensPng(view, name) {
    const spans = Array.from(view.querySelectorAll("span[title]"));
    const scale = 2, width = 1200, pad = 12, gap = 6, lineH = 44;
    const c = document.createElement("canvas");
    const ctx = c.getContext("2d");
    ctx.font = "20px monospace";
    let x = pad, y = pad;
    const placed = spans.map((s) => {
      const label = s.firstChild ? s.firstChild.textContent : s.textContent;
      const id = s.children.length ? s.children[0].textContent : "";
      const w = Math.max(ctx.measureText(label).width, ctx.measureText(id).width * 0.7) + 12;
      if (x + w > width - pad && x > pad) { x = pad; y += lineH + (id ? 18 : 0) + gap; }
      const p = { label, id, x, y, w, bg: getComputedStyle(s).backgroundColor };
      x += w + gap;
      return p;
    });
    const rowH = lineH + (placed.some((p) => p.id) ? 18 : 0);
    c.width = width * scale;
    c.height = (y + rowH + pad) * scale;
    ctx.scale(scale, scale);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, width, y + rowH + pad);
    for (const p of placed) {
      ctx.fillStyle = p.bg;
      ctx.fillRect(p.x, p.y, p.w, rowH - 6);
      ctx.fillStyle = "#111827";
      ctx.font = "20px monospace";
      ctx.fillText(p.label, p.x + 6, p.y + 26);
      if (p.id) { ctx.fillStyle = "#475569"; ctx.font = "14px monospace"; ctx.fillText(p.id, p.x + 6, p.y + 48); }
    }
    c.toBlob((blob) => save(blob, name + ".png"), "image/png");
  }

  function tokensHtml(view, name) {
    /* Tags are written with \x3c for the less-than sign: Streamlit lifts title, meta and html tags out of a script. */
    const t = (tag) => "\x3c" + tag + ">";
    const doc = t("!doctype html") + t("html") + t("head") + t("meta charset='utf-8'") + t("title") + name +
      t("/title") + t("/head") + t("body style='font-family:sans-serif;margin:24px'") + view.innerHTML +
      t("/body") + t("/html");
    save(new Blob([doc], { type: "text/html" }), name + ".html");
  }

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest && ev.target.closest("button[data-gb-export]");
    if (!b) return;
    const fmt = b.dataset.gbExport, name = b.dataset.gbName, target = box(b.dataset.gbKey);
    if (!target) return;
    if (b.dataset.gbKind === "tokens") {
      const view = target.querySelector("div[data-gb-tokens]") || target;
      return fmt === "png" ? tokensPng(view, name) : tokensHtml(view, name);
    }
    const gd = target.querySelector(".js-plotly-plot");
    if (!gd || !window.Plotly) return;
    if (fmt === "csv") return save(new Blob([csv(gd)], { type: "text/csv" }), name + ".csv");
    const size = gd._fullLayout ? { width: gd._fullLayout.width, height: gd._fullLayout.height } : {};
    window.Plotly.downloadImage(gd, { format: fmt, filename: name, scale: fmt === "png" ? 2 : 1, ...size });
  });
})();
