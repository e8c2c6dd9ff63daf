// chart.js: a small line chart of one series over time, drawn on a <canvas> (no library).
// RateChart(canvas, windowSeconds): push(tSeconds, value) adds a point, draw() paints the last
// windowSeconds; points is how many are held (the browser test reads it).
"use strict";

(function () {
  function RateChart(canvas, windowSeconds) {
    this.canvas = canvas;
    this.window = windowSeconds || 120;
    this.points = []; // [t seconds, value]
  }

  RateChart.prototype.clear = function () {
    this.points = [];
    this.draw();
  };

  RateChart.prototype.push = function (t, v) {
    this.points.push([t, v]);
    var from = t - this.window;
    while (this.points.length > 2 && this.points[0][0] < from) {
      this.points.shift();
    }
    this.canvas.dataset.points = String(this.points.length);
    this.draw();
  };

  // niceMax rounds v up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (v <= 0) return 10;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  }

  function fmt(v) {
    return Math.round(v).toLocaleString("en-US");
  }

  RateChart.prototype.draw = function () {
    var c = this.canvas;
    var dpr = window.devicePixelRatio || 1;
    var w = c.clientWidth || c.width, h = c.clientHeight || c.height;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    var g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    var left = 64, right = 12, top = 10, bottom = 26;
    var pw = w - left - right, ph = h - top - bottom;
    var pts = this.points;
    var tEnd = pts.length ? pts[pts.length - 1][0] : 0;
    var tStart = Math.max(tEnd - this.window, pts.length ? pts[0][0] : 0);
    var span = Math.max(tEnd - tStart, 10);
    var max = 0;
    for (var i = 0; i < pts.length; i++) max = Math.max(max, pts[i][1]);
    var yMax = niceMax(max * 1.1);

    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#6b7280";
    g.strokeStyle = "#eceef1";
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (var k = 0; k <= 4; k++) {
      var y = top + ph - (ph * k) / 4;
      g.beginPath();
      g.moveTo(left, Math.round(y) + 0.5);
      g.lineTo(left + pw, Math.round(y) + 0.5);
      g.stroke();
      g.fillText(fmt((yMax * k) / 4), left - 6, y);
    }
    g.textAlign = "center";
    g.textBaseline = "top";
    var step = span > 60 ? 30 : span > 20 ? 10 : 5;
    for (var s = 0; s <= span; s += step) {
      var x = left + pw - (pw * s) / span;
      g.fillText(s === 0 ? "now" : "-" + s + " s", x, top + ph + 6);
    }
    g.save();
    g.translate(12, top + ph / 2);
    g.rotate(-Math.PI / 2);
    g.fillText("claims/s", 0, 0);
    g.restore();

    if (pts.length < 1) return;
    var xOf = function (t) { return left + pw - (pw * (tEnd - t)) / span; };
    var yOf = function (v) { return top + ph - (ph * v) / yMax; };
    g.beginPath();
    g.moveTo(xOf(pts[0][0]), yOf(0));
    for (var j = 0; j < pts.length; j++) g.lineTo(xOf(pts[j][0]), yOf(pts[j][1]));
    g.lineTo(xOf(pts[pts.length - 1][0]), yOf(0));
    g.closePath();
    g.fillStyle = "rgba(210, 38, 43, 0.12)";
    g.fill();
    g.beginPath();
    for (var n = 0; n < pts.length; n++) {
      var px = xOf(pts[n][0]), py = yOf(pts[n][1]);
      if (n === 0) g.moveTo(px, py); else g.lineTo(px, py);
    }
    g.strokeStyle = "#d2262b";
    g.lineWidth = 2;
    g.stroke();
  };

  window.RateChart = RateChart;
})();
