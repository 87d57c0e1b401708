// SegTruth's page logic: one ordered stream of the person's actions, strokes drawn at once, shortcuts.
//
// Every action (stroke, segment picked, slice step, window/level, Preview, Apply, Save, ...) goes through
// segtruth.send(kind, args): it gets this tab's next sequence number and the values typed but not yet sent,
// and the server applies the actions strictly in that order (web/actions.py). A stroke is drawn here on the
// view's overlay at once and stays until the server says it applied it (st_applied[tab] >= its number).
(function () {
  "use strict";
  const st = {
    client: Date.now().toString(36) + Math.random().toString(36).slice(2, 8),
    seq: 0,
    pending: new Map(), // seq -> {kind, sent}
    strokes: [], // {seq, view, points, color, widthPx, erase}
    activeView: "axial",
    drawing: null,
    wl: null,
    hover: null,
    latency: [], // {kind, seq, ms, sent, applied}: sent until the server applied it (read by the benchmark)
    visible: [], // ms from a pointer event of a stroke to the frame that shows it drawn on the overlay
    frames: {}, // view -> times the server's images arrived
    frameCount: {}, // view -> images arrived so far
    marks: [], // {key, t}: when watched state changed (a preview recomputed)
  };
  window.segtruth = st;

  const trame = () => window.trame;
  // The segment and the tool the person picked last, before the server has applied the pick: a stroke drawn
  // right after a pick is drawn (and its pointer events taken) as the pick says. The server paints each stroke
  // into the segment selected when it applies it, which is the same one, since it applies actions in order.
  const picked = {}; // state key -> {value, seq}
  const PICKS = { select: ["st_selected", "segment"], tool: ["st_tool", "tool"] };
  const get = (key) => {
    const pick = picked[key];
    return pick ? pick.value : trame().state.get(key);
  };

  function updateSync() {
    const el = document.querySelector('[data-testid="sync"]');
    if (el) {
      el.dataset.pending = String(st.pending.size);
      el.dataset.sent = String(st.seq);
      el.textContent = st.pending.size ? `${st.pending.size} action(s) on the way` : "";
    }
  }

  st.send = function (kind, args) {
    const t = trame();
    const dirty = {};
    // Values typed or picked that trame has not sent yet (it holds them while a call is in flight).
    if (t.state.dirtyKeys) {
      for (const key of t.state.dirtyKeys) {
        if (!key.startsWith("trame__")) dirty[key] = t.state.get(key);
      }
    }
    st.seq += 1;
    const seq = st.seq;
    st.pending.set(seq, { kind, sent: performance.now(), args: args || {} });
    if (PICKS[kind]) picked[PICKS[kind][0]] = { value: (args || {})[PICKS[kind][1]], seq };
    updateSync();
    t.trigger("st_action", [st.client, seq, kind, args || {}, dirty]);
    return seq;
  };

  function onApplied(applied) {
    const done = (applied || {})[st.client] || 0;
    const now = performance.now();
    for (const key of Object.keys(picked)) if (picked[key].seq <= done) delete picked[key];
    for (const [seq, item] of st.pending) {
      if (seq <= done) {
        st.latency.push({ kind: item.kind, seq, ms: now - item.sent, sent: item.sent, applied: now });
        if (st.latency.length > 2000) st.latency.shift();
        st.pending.delete(seq);
      }
    }
    updateSync();
    if (st.strokes.some((s) => s.seq <= done)) {
      // Keep the drawn stroke until the server's frame with it has had time to arrive.
      setTimeout(() => {
        st.strokes = st.strokes.filter((s) => s.seq > done);
        redrawAll();
      }, 250);
    }
  }

  // -- views --------------------------------------------------------------------------------------------
  function overlays() {
    return Array.from(document.querySelectorAll("canvas[data-st-view]"));
  }

  function viewAt(event) {
    const target = event.target;
    // The controls drawn over a view (slider, gutter buttons) keep their own clicks.
    if (target && target.closest && target.closest(".st-ui, .view-gutter, button, input, .v-slider, .v-overlay")) return null;
    for (const canvas of overlays()) {
      const box = canvas.parentElement;
      if (!box || !box.contains(event.target)) continue;
      const rect = canvas.getBoundingClientRect();
      if (rect.width < 2) continue;
      const x = event.clientX - rect.left;
      const y = event.clientY - rect.top;
      if (x < 0 || y < 0 || x > rect.width || y > rect.height) continue;
      return { name: canvas.dataset.stView, canvas, rect, x, y };
    }
    return null;
  }

  function geometry(view) {
    return (get("st_views") || {})[view] || null;
  }

  function mmPerCssPixel(view, rect) {
    const g = geometry(view);
    if (!g) return 1;
    const m = g.xy_to_ras;
    const mmPerPixel = Math.hypot(m[0], m[4], m[8]);
    return mmPerPixel * (g.width / rect.width);
  }

  function sizeCanvas(canvas) {
    const rect = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(rect.width * ratio));
    const h = Math.max(1, Math.round(rect.height * ratio));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    return { rect, ratio };
  }

  function redraw(canvas) {
    const view = canvas.dataset.stView;
    const { rect, ratio } = sizeCanvas(canvas);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const all = st.drawing ? st.strokes.concat([st.drawing]) : st.strokes;
    for (const s of all) {
      if (s.view !== view || !s.points.length) continue;
      ctx.strokeStyle = s.erase ? "rgba(255,255,255,0.8)" : s.color;
      ctx.fillStyle = ctx.strokeStyle;
      ctx.globalAlpha = s.erase ? 0.5 : 0.7;
      ctx.lineWidth = s.widthPx;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      ctx.beginPath();
      const [x0, y0] = s.points[0];
      ctx.moveTo(x0 * rect.width, y0 * rect.height);
      for (const [x, y] of s.points.slice(1)) ctx.lineTo(x * rect.width, y * rect.height);
      if (s.outline) ctx.closePath();
      if (s.points.length === 1) {
        ctx.arc(x0 * rect.width, y0 * rect.height, s.widthPx / 2, 0, 2 * Math.PI);
        ctx.fill();
      } else {
        ctx.stroke();
      }
    }
    ctx.globalAlpha = 1;
    if (st.hover && st.hover.view === view && brushTool()) {
      ctx.strokeStyle = "rgba(255,255,0,0.9)";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.arc(st.hover.x, st.hover.y, st.hover.r, 0, 2 * Math.PI);
      ctx.stroke();
    }
    drawCrosshair(canvas, rect);
  }

  // The point under the mouse in RAS (from the view's XY-to-RAS), and where it lies in another view.
  function rasAt(view, x, y, rect) {
    const g = geometry(view);
    if (!g) return null;
    const m = g.xy_to_ras;
    const px = (x / rect.width) * g.width;
    const py = (1 - y / rect.height) * g.height;
    return [0, 1, 2].map((r) => m[4 * r] * px + m[4 * r + 1] * py + m[4 * r + 3]);
  }

  function viewPoint(view, ras) {
    // XY of a RAS point in a view: solve m[:3,:3] * [x, y, z] = ras - m[:3, 3].
    const g = geometry(view);
    if (!g) return null;
    const m = g.xy_to_ras;
    const a = [
      [m[0], m[1], m[2]],
      [m[4], m[5], m[6]],
      [m[8], m[9], m[10]],
    ];
    const b = [ras[0] - m[3], ras[1] - m[7], ras[2] - m[11]];
    const det = (q) =>
      q[0][0] * (q[1][1] * q[2][2] - q[1][2] * q[2][1]) -
      q[0][1] * (q[1][0] * q[2][2] - q[1][2] * q[2][0]) +
      q[0][2] * (q[1][0] * q[2][1] - q[1][1] * q[2][0]);
    const d = det(a);
    if (!d) return null;
    const column = (k) => a.map((row, r) => row.map((v, c) => (c === k ? b[r] : v)));
    const x = det(column(0)) / d;
    const y = det(column(1)) / d;
    return { fx: x / g.width, fy: 1 - y / g.height };
  }

  function drawCrosshair(canvas, rect) {
    const view = canvas.dataset.stView;
    if (!st.hover || st.hover.view === view || !st.hover.ras) return;
    const p = viewPoint(view, st.hover.ras);
    if (!p || p.fx < 0 || p.fx > 1 || p.fy < 0 || p.fy > 1) return;
    const ctx = canvas.getContext("2d");
    const x = p.fx * rect.width;
    const y = p.fy * rect.height;
    ctx.strokeStyle = "rgba(255,255,0,0.8)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x - 12, y);
    ctx.lineTo(x - 3, y);
    ctx.moveTo(x + 3, y);
    ctx.lineTo(x + 12, y);
    ctx.moveTo(x, y - 12);
    ctx.lineTo(x, y - 3);
    ctx.moveTo(x, y + 3);
    ctx.lineTo(x, y + 12);
    ctx.stroke();
  }

  function redrawAll() {
    overlays().forEach(redraw);
  }

  // What a click or a drag in a view gives the picked tool: "click" (a point), "outline" (a polygon) or null.
  function viewInput() {
    return (get("st_view_inputs") || {})[get("st_tool")] || null;
  }

  function brushTool() {
    const tool = get("st_tool");
    return tool === "paint" || tool === "erase" ? tool : null;
  }

  function segmentColor(id) {
    const row = (get("st_rows") || []).find((r) => r.segment_id === id);
    return row ? row.color : "#ffff00";
  }

  // The slice a view will show once the slice changes sent so far are applied (the server clamps each the same).
  function slicePlanned(view) {
    const g = geometry(view);
    if (!g) return null;
    let index = g.index;
    const clamp = (i) => Math.min(g.count - 1, Math.max(0, i));
    for (const p of st.pending.values()) {
      if (p.args.view !== view) continue;
      if (p.kind === "slice_step" && g.index_mm) index = clamp(index + Math.round((p.args.steps * g.step) / g.index_mm));
      else if (p.kind === "slice_to") index = clamp(p.args.index);
    }
    return index;
  }

  // The view's geometry as it will be when this stroke is applied: the known one, moved by the slice changes
  // sent before it. So a stroke drawn right after Page Down lands on the slice Page Down went to.
  function strokeGeometry(view) {
    const g = geometry(view);
    const planned = slicePlanned(view);
    if (!g || planned === null || planned === g.index) return g;
    const m = g.xy_to_ras.slice();
    const n = [m[2], m[6], m[10]];
    const length = Math.hypot(n[0], n[1], n[2]) || 1;
    const shift = (planned - g.index) * g.index_mm;
    for (let r = 0; r < 3; r++) m[4 * r + 3] += (n[r] / length) * shift;
    return { ...g, xy_to_ras: m, index: planned };
  }

  // -- strokes --------------------------------------------------------------------------------------------
  function markVisible(event) {
    const start = event.timeStamp;
    requestAnimationFrame(() => {
      st.visible.push(performance.now() - start);
      if (st.visible.length > 2000) st.visible.shift();
    });
  }

  // The server's images of each view: when they arrive (the benchmark reads them; nothing else does).
  function watchFrames() {
    for (const canvas of overlays()) {
      const view = canvas.dataset.stView;
      const img = canvas.parentElement && canvas.parentElement.querySelector("img");
      if (!img || img.dataset.stWatched) continue;
      img.dataset.stWatched = "1";
      st.frames[view] = [];
      new MutationObserver(() => {
        const list = st.frames[view];
        st.frameCount[view] = (st.frameCount[view] || 0) + 1;
        list.push(performance.now());
        if (list.length > 500) list.shift();
      }).observe(img, { attributes: true, attributeFilter: ["src"] });
    }
  }

  // What the server reads a stroke, a click or an outline from (web/view_trace.py): the points as fractions of
  // the view and the view geometry they were drawn on.
  function traceMessage(view, g, points) {
    return { view, points, xy_to_ras: g.xy_to_ras, width: g.width, height: g.height };
  }

  // A drag starts: drawn on the overlay at once, sent when the button is let go (endStroke).
  function beginDrawing(hit, event, g, look) {
    st.drawing = {
      seq: 0,
      view: hit.name,
      geometry: g,
      points: [[hit.x / hit.rect.width, hit.y / hit.rect.height]],
      rect: hit.rect,
      erase: false,
      ...look,
    };
    redraw(hit.canvas);
    markVisible(event);
    return true;
  }

  function startStroke(hit, event) {
    const g = strokeGeometry(hit.name);
    const segment = get("st_selected");
    if (!g || !segment) return false;
    const diameter = Number(get("st_brush_mm")) || 5;
    return beginDrawing(hit, event, g, {
      segment,
      diameter,
      shape: get("st_brush_sphere") ? "sphere" : "2d",
      erase: brushTool() === "erase",
      color: segmentColor(segment),
      widthPx: diameter / mmPerCssPixel(hit.name, hit.rect),
    });
  }

  // A click for a tool that takes points: sent at once with the view's geometry; a dot marks it until applied.
  function placePoint(hit, event) {
    const g = strokeGeometry(hit.name);
    if (!g) return false;
    const points = [[hit.x / hit.rect.width, hit.y / hit.rect.height]];
    const seq = st.send("view_input", { ...traceMessage(hit.name, g, points), add: event.shiftKey });
    st.strokes.push({ seq, view: hit.name, points, color: "#ffff00", widthPx: 8, erase: false });
    redraw(hit.canvas);
    markVisible(event);
    return true;
  }

  // A drag for a tool that takes an outline (scissors): drawn as a closed line, sent when the button is let go.
  function startOutline(hit, event) {
    const g = strokeGeometry(hit.name);
    if (!g) return false;
    return beginDrawing(hit, event, g, { outline: true, color: "#ffff00", widthPx: 2 });
  }

  function moveStroke(event) {
    const d = st.drawing;
    const x = (event.clientX - d.rect.left) / d.rect.width;
    const y = (event.clientY - d.rect.top) / d.rect.height;
    d.points.push([Math.min(1, Math.max(0, x)), Math.min(1, Math.max(0, y))]);
    const canvas = overlays().find((c) => c.dataset.stView === d.view);
    if (canvas) redraw(canvas);
    markVisible(event);
  }

  function endStroke() {
    const d = st.drawing;
    st.drawing = null;
    const trace = traceMessage(d.view, d.geometry, d.points);
    if (d.outline) d.seq = st.send("view_input", trace);
    else d.seq = st.send(d.erase ? "erase" : "paint", { ...trace, diameter: d.diameter, shape: d.shape });
    st.strokes.push(d);
    redrawAll();
  }

  // -- window/level by drag (no tool picked) ------------------------------------------------------------
  function startWindowLevel(hit, event) {
    const wl = get("st_wl");
    if (!wl) return false;
    st.wl = { x: event.clientX, y: event.clientY, window: wl.window, level: wl.level, scale: wl.scale || 1, sending: 0, next: null };
    return true;
  }

  function moveWindowLevel(event) {
    const w = st.wl;
    const window_ = Math.max(1e-3, w.window + (event.clientX - w.x) * w.scale);
    const level = w.level - (event.clientY - w.y) * w.scale;
    w.next = { window: window_, level };
    sendWindowLevel();
  }

  function sendWindowLevel() {
    const w = st.wl;
    if (!w || !w.next) return;
    // One window/level change on the way at a time: the latest replaces those not yet sent.
    const waiting = Array.from(st.pending.values()).some((p) => p.kind === "window_level");
    if (waiting) {
      setTimeout(sendWindowLevel, 30);
      return;
    }
    st.send("window_level", w.next);
    w.next = null;
  }

  // -- input --------------------------------------------------------------------------------------------
  function install() {
    document.addEventListener(
      "pointerdown",
      (event) => {
        const hit = viewAt(event);
        if (!hit) return;
        st.activeView = hit.name;
        if (event.button !== 0 || event.ctrlKey || event.altKey || event.metaKey) return;
        const input = viewInput();
        let taken = false;
        if (input === "click") taken = placePoint(hit, event); // Shift+click adds a point
        else if (event.shiftKey) return;
        else if (input === "outline") taken = startOutline(hit, event);
        else if (brushTool()) taken = startStroke(hit, event);
        else if (!get("st_tool") && !get("st_editor_effect")) taken = startWindowLevel(hit, event);
        if (taken) {
          event.preventDefault();
          event.stopPropagation();
        }
      },
      true,
    );
    document.addEventListener(
      "pointermove",
      (event) => {
        if (st.drawing) {
          moveStroke(event);
          event.preventDefault();
          event.stopPropagation();
          return;
        }
        if (st.wl) {
          moveWindowLevel(event);
          event.preventDefault();
          event.stopPropagation();
          return;
        }
        const hit = viewAt(event);
        const before = st.hover;
        if (hit) {
          st.activeView = hit.name;
          const r = (Number(get("st_brush_mm")) || 5) / 2 / mmPerCssPixel(hit.name, hit.rect);
          st.hover = { view: hit.name, x: hit.x, y: hit.y, r, ras: rasAt(hit.name, hit.x, hit.y, hit.rect) };
        } else {
          st.hover = null;
        }
        if (before || st.hover) redrawAll();
      },
      true,
    );
    const up = (event) => {
      if (st.drawing) {
        endStroke();
        event.preventDefault();
        event.stopPropagation();
      } else if (st.wl) {
        moveWindowLevel(event);
        st.wl.done = true;
        const finish = () => {
          if (st.wl && st.wl.next) {
            setTimeout(finish, 30);
            sendWindowLevel();
          } else {
            st.wl = null;
          }
        };
        finish();
        event.preventDefault();
        event.stopPropagation();
      }
    };
    document.addEventListener("pointerup", up, true);
    document.addEventListener("pointercancel", up, true);
    document.addEventListener(
      "wheel",
      (event) => {
        const hit = viewAt(event);
        if (!hit || event.ctrlKey) return; // Ctrl+wheel: the view's own zoom
        event.preventDefault();
        event.stopPropagation();
        st.send("slice_step", { view: hit.name, steps: event.deltaY < 0 ? 1 : -1 });
      },
      { capture: true, passive: false },
    );
    document.addEventListener("keydown", onKey, true);
    window.addEventListener("resize", redrawAll);
  }

  const BRUSH_SIZES = [1, 2, 3, 5, 7, 10, 15, 20, 30, 50];

  function onKey(event) {
    const target = event.target;
    const textTypes = ["text", "number", "search", "email", "password", "url", "tel", ""];
    const typing =
      target &&
      ((target.tagName === "INPUT" && textTypes.includes(target.type || "")) ||
        target.tagName === "TEXTAREA" ||
        target.isContentEditable);
    const key = event.key;
    const ctrl = event.ctrlKey || event.metaKey;
    if (ctrl && (key === "z" || key === "Z") && !typing) {
      st.send(event.shiftKey ? "redo" : "undo", {});
    } else if (ctrl && (key === "y" || key === "Y") && !typing) {
      st.send("redo", {});
    } else if (typing || ctrl || event.altKey) {
      return;
    } else if (key === "PageUp" || key === "ArrowUp") {
      st.send("slice_step", { view: st.activeView, steps: 1 });
    } else if (key === "PageDown" || key === "ArrowDown") {
      st.send("slice_step", { view: st.activeView, steps: -1 });
    } else if (/^[1-9]$/.test(key)) {
      const row = (get("st_rows") || [])[Number(key) - 1];
      if (!row) return;
      st.send("select", { segment: row.segment_id });
    } else if (key === "[" || key === "]") {
      const now = Number(get("st_brush_mm")) || 5;
      const bigger = BRUSH_SIZES.find((s) => s > now) || BRUSH_SIZES[BRUSH_SIZES.length - 1];
      const smaller = BRUSH_SIZES.slice().reverse().find((s) => s < now) || BRUSH_SIZES[0];
      trame().state.set("st_brush_mm", key === "]" ? bigger : smaller);
    } else if (key === "p" || key === "e") {
      st.send("tool", { tool: key === "p" ? "paint" : "erase" });
    } else if (key === "Escape") {
      if (get("st_help")) trame().state.set("st_help", false);
      else st.send("tool", { tool: "" });
    } else if (key === "?" || key === "h") {
      trame().state.set("st_help", !get("st_help"));
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
  }

  function whenReady() {
    const t = window.trame;
    if (!t || !t.state || !t.state.watch || !t.state.ready) {
      setTimeout(whenReady, 50);
      return;
    }
    t.state.watch(["st_applied"], onApplied);
    t.state.watch(["st_views"], () => {
      redrawAll();
      watchFrames();
    });
    t.state.watch(["st_preview_count"], () => st.marks.push({ key: "preview", t: performance.now() }));
    install();
  }
  whenReady();
})();
