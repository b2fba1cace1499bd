//! The report's charts, drawn with `plotters` into inline SVG (no fonts or files needed: the
//! SVG backend leaves text to the browser): raw latency, latency quantiles over time
//! (p50/p95/p99), throughput by outcome, and each node's clock offset over time when clock
//! faults ran. Every chart shades the fault windows that were in force, on one time axis
//! (seconds since the first event).

use super::{Bar, Fault, MAX_POINTS};
use crate::history::{Op, OpType, Process};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// Chart size in pixels (the page is 1200 px wide at most).
const SIZE: (u32, u32) = (1100, 250);
/// Time buckets of the quantile and throughput charts, at most.
pub(crate) const BUCKETS: u64 = 150;

const OK: RGBColor = RGBColor(59, 143, 59);
const FAIL: RGBColor = RGBColor(208, 138, 44);
const INFO: RGBColor = RGBColor(138, 93, 181);
const HL: RGBColor = RGBColor(230, 0, 0);
const SHADE: RGBColor = RGBColor(243, 160, 160);
/// Colours for nodes and quantiles, in order.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(127, 127, 127),
];

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Seconds since the first event.
fn secs(t: u64, span: (u64, u64)) -> f64 {
    t.saturating_sub(span.0) as f64 / 1e9
}

fn span_secs(span: (u64, u64)) -> f64 {
    ((span.1 - span.0) as f64 / 1e9).max(1.0)
}

/// Draws one chart into a string; the closure draws on the whole area.
fn svg(draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Res<()>) -> Option<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
        if root.fill(&WHITE).is_err() {
            return None;
        }
        if let Err(e) = draw(&root) {
            tracing::warn!(error = %e, "a report chart could not be drawn");
            return None;
        }
        if root.present().is_err() {
            return None;
        }
    }
    Some(s)
}

/// Shaded fault windows with their names, between `lo` and `hi` of the y axis.
fn shade<'a, DB: DrawingBackend + 'a, Y: plotters::coord::ranged1d::Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    faults: &[Fault],
    span: (u64, u64),
    lo: f64,
    hi: f64,
) -> Res<()>
where
    DB::ErrorType: 'static,
{
    let end = span_secs(span);
    chart
        .draw_series(faults.iter().map(|f| {
            let x1 = secs(f.start, span);
            let x2 = f.end.map(|e| secs(e, span)).unwrap_or(end);
            Rectangle::new(
                [(x1, lo), (x2.max(x1 + end / 500.0), hi)],
                SHADE.mix(0.35).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;
    // names on up to three rows, so that faults starting close together stay readable
    let per_px = end / (SIZE.0 as f64 - 90.0);
    let rows = label_rows(faults.iter().map(|f| {
        (
            secs(f.start, span),
            f.name.chars().count() as f64 * 6.5 * per_px,
        )
    }));
    chart
        .draw_series(faults.iter().zip(rows).map(|(f, row)| {
            EmptyElement::at((secs(f.start, span), hi))
                + Text::new(
                    f.name.clone(),
                    (2, 2 + 12 * row as i32),
                    ("sans-serif", 11).into_font().color(&RGBColor(160, 0, 0)),
                )
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// How a chart's y axis is labelled.
struct YAxis<'f> {
    /// Its name.
    desc: &'static str,
    /// The width of the area of its labels, pixels.
    width: u32,
    /// A tick's value as text.
    fmt: &'f dyn Fn(&f64) -> String,
}

/// A chart on the run's time axis (seconds since the first event) over the y range `y`, from
/// `lo` to `hi`: its mesh drawn with the y axis labelled as `axis` says, and the fault windows
/// shaded.
fn time_chart<'a, 'b, Y>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    y: Y,
    (lo, hi): (f64, f64),
    axis: YAxis,
    faults: &[Fault],
    span: (u64, u64),
) -> Res<ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y::CoordDescType>>>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .x_label_area_size(26)
        .y_label_area_size(axis.width)
        .build_cartesian_2d(0f64..span_secs(span), y)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(245, 245, 245))
        .x_label_formatter(&|v| format!("{v:.0}s"))
        .y_desc(axis.desc)
        .label_style(("sans-serif", 12))
        .y_label_formatter(axis.fmt)
        .draw()?;
    shade(&mut chart, faults, span, lo, hi)?;
    Ok(chart)
}

/// The row (0, 1 or 2) of each label `(start, width)`: the first row where it does not overlap
/// the previous label; row 0 again when all are taken.
pub fn label_rows(labels: impl Iterator<Item = (f64, f64)>) -> Vec<usize> {
    let mut ends = [f64::MIN; 3];
    labels
        .map(|(start, width)| {
            let row = ends.iter().position(|e| start >= *e).unwrap_or(0);
            ends[row] = start + width;
            row
        })
        .collect()
}

fn latency_ms(b: &Bar) -> f64 {
    (b.end.unwrap_or(b.start).saturating_sub(b.start) as f64 / 1e6).max(0.01)
}

/// The y range of a log latency axis: a decade below the fastest op to a decade above the
/// slowest.
fn log_range(max: f64) -> (f64, f64) {
    let hi = 10f64.powf(max.max(1.0).log10().ceil());
    (0.01, hi.max(10.0))
}

/// Each completed op at its invocation time, by outcome, log scale; the ops invalid checkers
/// name in red.
pub fn latency_raw(
    bars: &[Bar],
    faults: &[Fault],
    hl: &HashSet<u64>,
    span: (u64, u64),
) -> Option<String> {
    let done: Vec<&Bar> = bars.iter().filter(|b| b.end.is_some()).collect();
    if done.is_empty() {
        return None;
    }
    let max = done.iter().map(|b| latency_ms(b)).fold(1.0, f64::max);
    let (lo, hi) = log_range(max);
    let stride = done.len().div_ceil(MAX_POINTS).max(1);
    svg(|root| {
        let mut chart = time_chart(root, (lo..hi).log_scale(), (lo, hi), LATENCY, faults, span)?;
        for (kind, color) in [(OpType::Ok, OK), (OpType::Fail, FAIL), (OpType::Info, INFO)] {
            chart
                .draw_series(
                    done.iter()
                        .enumerate()
                        .filter(|(i, b)| b.kind == kind && (i % stride == 0) && !is_hl(b, hl))
                        .map(|(_, b)| {
                            Circle::new(
                                (secs(b.start, span), latency_ms(b).clamp(lo, hi)),
                                1,
                                color.mix(0.7).filled(),
                            )
                        }),
                )?
                .label(match kind {
                    OpType::Ok => "ok",
                    OpType::Fail => "fail",
                    _ => "info",
                })
                .legend(move |(x, y)| Circle::new((x + 6, y), 3, color.filled()));
        }
        let blamed: Vec<&&Bar> = done.iter().filter(|b| is_hl(b, hl)).collect();
        if !blamed.is_empty() {
            chart
                .draw_series(blamed.iter().map(|b| {
                    Circle::new(
                        (secs(b.start, span), latency_ms(b).clamp(lo, hi)),
                        4,
                        HL.stroke_width(2),
                    )
                }))?
                .label("named by an invalid checker")
                .legend(|(x, y)| Circle::new((x + 6, y), 4, HL.stroke_width(2)));
        }
        legend(&mut chart)?;
        Ok(())
    })
}

fn is_hl(b: &Bar, hl: &HashSet<u64>) -> bool {
    hl.contains(&b.invoke) || b.complete.is_some_and(|c| hl.contains(&c))
}

/// The y axis of the latency charts.
const LATENCY: YAxis = YAxis {
    desc: "latency (ms)",
    width: 62,
    fmt: &|v| fmt_ms(*v),
};

fn fmt_ms(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn legend<'a, DB: DrawingBackend + 'a, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Res<()>
where
    DB::ErrorType: 'static,
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The width of a time bucket (ns): whole seconds, at most [`BUCKETS`] buckets.
fn bucket_ns(span: (u64, u64)) -> u64 {
    let secs = (span.1 - span.0).div_ceil(1_000_000_000).max(1);
    secs.div_ceil(BUCKETS).max(1) * 1_000_000_000
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Latency quantiles of the ops invoked in each time bucket: `(bucket start s, p50, p95, p99)`
/// for buckets with completed ops.
pub fn quantiles(bars: &[Bar], span: (u64, u64)) -> Vec<(f64, [f64; 3])> {
    let w = bucket_ns(span);
    let mut by: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for b in bars.iter().filter(|b| b.end.is_some()) {
        by.entry(b.start.saturating_sub(span.0) / w)
            .or_default()
            .push(latency_ms(b));
    }
    by.into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (
                (k * w) as f64 / 1e9 + w as f64 / 2e9,
                [quantile(&v, 0.5), quantile(&v, 0.95), quantile(&v, 0.99)],
            )
        })
        .collect()
}

/// p50, p95 and p99 of the ops invoked in each time bucket. Gaps (no op completed) break the
/// lines.
pub fn latency_quantiles(bars: &[Bar], faults: &[Fault], span: (u64, u64)) -> Option<String> {
    let q = quantiles(bars, span);
    if q.is_empty() {
        return None;
    }
    let w = bucket_ns(span) as f64 / 1e9;
    let max = q.iter().map(|(_, v)| v[2]).fold(1.0, f64::max);
    let (lo, hi) = log_range(max);
    // runs of consecutive buckets
    let mut runs: Vec<Vec<(f64, [f64; 3])>> = Vec::new();
    for p in q {
        match runs.last_mut() {
            Some(r) if p.0 - r.last().map(|l| l.0).unwrap_or(0.0) <= w * 1.5 => r.push(p),
            _ => runs.push(vec![p]),
        }
    }
    svg(|root| {
        let mut chart = time_chart(root, (lo..hi).log_scale(), (lo, hi), LATENCY, faults, span)?;
        for (qi, name) in ["p50", "p95", "p99"].iter().enumerate() {
            let color = PALETTE[qi];
            for (ri, run) in runs.iter().enumerate() {
                let pts: Vec<(f64, f64)> =
                    run.iter().map(|(t, v)| (*t, v[qi].clamp(lo, hi))).collect();
                let style = color.stroke_width(2);
                let s = if pts.len() == 1 {
                    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 2, color.filled())))?
                } else {
                    chart.draw_series(LineSeries::new(pts, style))?
                };
                if ri == 0 {
                    s.label(*name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                }
            }
        }
        legend(&mut chart)?;
        Ok(())
    })
}

/// Completions per bucket, by outcome. `(bucket start s, [ok, fail, info] per second)`.
pub fn throughput_series(bars: &[Bar], span: (u64, u64)) -> Vec<(f64, [f64; 3])> {
    let w = bucket_ns(span);
    let n = ((span.1 - span.0) / w + 1) as usize;
    let mut per = vec![[0u64; 3]; n];
    for b in bars {
        let Some(end) = b.end else { continue };
        let k = match b.kind {
            OpType::Ok => 0,
            OpType::Fail => 1,
            _ => 2,
        };
        if let Some(slot) = per.get_mut((end.saturating_sub(span.0) / w) as usize) {
            slot[k] += 1;
        }
    }
    let ws = w as f64 / 1e9;
    per.into_iter()
        .enumerate()
        .map(|(i, c)| (i as f64 * ws + ws / 2.0, c.map(|x| x as f64 / ws)))
        .collect()
}

/// Completions per second by outcome.
pub fn throughput(bars: &[Bar], faults: &[Fault], span: (u64, u64)) -> Option<String> {
    if bars.iter().all(|b| b.end.is_none()) {
        return None;
    }
    let series = throughput_series(bars, span);
    let max = series
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .fold(1.0, f64::max);
    let hi = max * 1.15;
    svg(|root| {
        let axis = YAxis {
            desc: "ops/s",
            width: 62,
            fmt: &|v| format!("{v:.0}"),
        };
        let mut chart = time_chart(root, 0f64..hi, (0.0, hi), axis, faults, span)?;
        for (k, (name, color)) in [("ok", OK), ("fail", FAIL), ("info", INFO)]
            .into_iter()
            .enumerate()
        {
            chart
                .draw_series(LineSeries::new(
                    series.iter().map(|(t, c)| (*t, c[k])),
                    color.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart)?;
        Ok(())
    })
}

/// What the clock chart draws: per node a polyline of `(seconds, offset ms)`, the strobes
/// (node, from s, to s, low ms, high ms: the clock flipped between the two), and whether the
/// offsets were measured (real clocks) rather than as set (libfaketime).
#[derive(Debug, Default, PartialEq)]
pub struct ClockPlot {
    pub lines: BTreeMap<String, Vec<(f64, f64)>>,
    pub strobes: Vec<(String, f64, f64, f64, f64)>,
    pub measured: bool,
}

/// A node's clock as last set: offset (ms), rate, and since when (ns).
#[derive(Clone, Copy)]
struct Set {
    offset: f64,
    rate: f64,
    at: u64,
}

impl Set {
    /// The offset at `t`: a drifting clock (rate ≠ 1) gains `rate - 1` ms per ms.
    fn at(&self, t: u64) -> f64 {
        self.offset + (self.rate - 1.0) * t.saturating_sub(self.at) as f64 / 1e6
    }
}

/// Each node's clock offset over time, from the clock faults' completions (the nemesis records
/// each node's offset and rate after every clock op, and on real clocks the offset it measured
/// against the control node, which is preferred). A drifting clock is drawn rising; a heal
/// resets every clock. `None` without clock faults.
pub fn clock_plot(ops: &[Op], span: (u64, u64)) -> Option<ClockPlot> {
    let mut plot = ClockPlot::default();
    let mut state: BTreeMap<String, Set> = BTreeMap::new();
    let mut any = false;
    let x = |t: u64| secs(t, span);
    for op in ops.iter().filter(|o| o.process == Process::Nemesis) {
        let heal = op.f == "heal" || op.f == "heal-all";
        let offsets = op.value.get("offsets").and_then(Value::as_object);
        if !(heal && any) && offsets.is_none() {
            continue;
        }
        any = true;
        let measured = op
            .value
            .get("measured_offset_ms")
            .and_then(Value::as_object);
        let mut next: BTreeMap<String, Set> = BTreeMap::new();
        if heal {
            for node in state.keys() {
                next.insert(
                    node.clone(),
                    Set {
                        offset: 0.0,
                        rate: 1.0,
                        at: op.time,
                    },
                );
            }
        }
        for (node, st) in offsets.into_iter().flatten() {
            let m = measured.and_then(|m| m.get(node)).and_then(Value::as_f64);
            plot.measured |= m.is_some();
            let offset = m
                .or_else(|| st.get("offset_ms").and_then(Value::as_f64))
                .unwrap_or(0.0);
            let rate = st.get("rate").and_then(Value::as_f64).unwrap_or(1.0);
            next.insert(
                node.clone(),
                Set {
                    offset,
                    rate,
                    at: op.time,
                },
            );
        }
        // a strobe flipped the clocks between offset and offset + delta until it returned
        if let (Some(flips), Some(delta), Some(ms)) = (
            op.value.get("flips").and_then(Value::as_object),
            op.value.get("delta_ms").and_then(Value::as_f64),
            op.value
                .pointer("/request/duration_ms")
                .and_then(Value::as_f64),
        ) {
            let from = op.time.saturating_sub((ms * 1e6) as u64);
            for node in flips.keys() {
                let base = next
                    .get(node)
                    .or(state.get(node))
                    .map(|s| s.at(op.time))
                    .unwrap_or(0.0);
                plot.strobes
                    .push((node.clone(), x(from), x(op.time), base, base + delta));
            }
        }
        // the nodes this op set: their line steps (the others carry on)
        for (node, s) in next {
            let line = plot
                .lines
                .entry(node.clone())
                .or_insert_with(|| vec![(0.0, 0.0)]);
            let before = state.get(&node).map(|p| p.at(op.time)).unwrap_or(0.0);
            line.push((x(op.time), before));
            line.push((x(op.time), s.offset));
            state.insert(node, s);
        }
    }
    if !any {
        return None;
    }
    for (node, line) in plot.lines.iter_mut() {
        let end = state.get(node).map(|s| s.at(span.1)).unwrap_or(0.0);
        line.push((x(span.1), end));
    }
    Some(plot)
}

/// The clock chart: one line per node, strobes as bands. Also says whether the offsets were
/// measured.
pub fn clock_offsets(ops: &[Op], faults: &[Fault], span: (u64, u64)) -> Option<(String, bool)> {
    let plot = clock_plot(ops, span)?;
    let (mut lo, mut hi) = plot
        .lines
        .values()
        .flatten()
        .map(|p| p.1)
        .chain(plot.strobes.iter().flat_map(|s| [s.3, s.4]))
        .fold((0f64, 0f64), |(l, h), v| (l.min(v), h.max(v)));
    let pad = ((hi - lo) * 0.1).max(10.0);
    lo -= pad;
    hi += pad;
    let colors: BTreeMap<&str, RGBColor> = plot
        .lines
        .keys()
        .enumerate()
        .map(|(i, n)| (n.as_str(), PALETTE[i % PALETTE.len()]))
        .collect();
    let chart = svg(|root| {
        let axis = YAxis {
            desc: "clock offset (ms)",
            width: 72,
            fmt: &|v| format!("{v:.0}"),
        };
        let mut chart = time_chart(root, lo..hi, (lo, hi), axis, faults, span)?;
        for (node, a, b, l, h) in &plot.strobes {
            let c = colors.get(node.as_str()).copied().unwrap_or(PALETTE[7]);
            chart.draw_series([
                Rectangle::new([(*a, *l), (*b, *h)], c.mix(0.25).filled()),
                Rectangle::new([(*a, *l), (*b, *h)], c.stroke_width(1)),
            ])?;
            chart.draw_series([EmptyElement::at((*a, *h))
                + Text::new(
                    format!("{node} strobed"),
                    (3, 3),
                    ("sans-serif", 11).into_font().color(&c),
                )])?;
        }
        let count = plot.lines.len();
        for (i, (node, pts)) in plot.lines.iter().enumerate() {
            let color = colors[node.as_str()];
            // earlier lines wider, so that nodes on the same offset all show
            let width = (2 + count - 1 - i).min(7) as u32;
            chart
                .draw_series(LineSeries::new(
                    pts.iter().copied(),
                    color.stroke_width(width),
                ))?
                .label(node.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        legend(&mut chart)?;
        Ok(())
    })?;
    Some((chart, plot.measured))
}

/// Appends a chart (or a muted line saying why there is none) to the page.
pub fn push(h: &mut String, chart: Option<String>, none: &str) {
    match chart {
        Some(s) => {
            let _ = writeln!(h, "<div class=\"chart\">{s}</div>");
        }
        None => {
            let _ = writeln!(h, "<p class=\"muted\">{none}</p>");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(start_ms: u64, lat_ms: u64, kind: OpType) -> Bar {
        Bar {
            process: 0,
            start: start_ms * 1_000_000,
            end: Some((start_ms + lat_ms) * 1_000_000),
            kind,
            f: "read".into(),
            invoke: start_ms,
            complete: Some(start_ms + 1),
        }
    }

    #[test]
    fn fault_labels_that_would_overlap_go_to_the_next_row() {
        let rows =
            label_rows([(0.0, 2.0), (1.0, 2.0), (1.5, 1.0), (2.5, 1.0), (9.0, 1.0)].into_iter());
        assert_eq!(rows, vec![0, 1, 2, 0, 0]);
    }

    #[test]
    fn quantiles_per_bucket_use_nearest_rank() {
        // 100 ops in the first second with latencies 1..=100 ms, none in the second, one in
        // the third
        let mut bars: Vec<Bar> = (1..=100).map(|i| bar(i, i, OpType::Ok)).collect();
        bars.push(bar(2_500, 7, OpType::Ok));
        let q = quantiles(&bars, (0, 3_000_000_000));
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].1, [50.0, 95.0, 99.0]);
        assert_eq!(q[1].1, [7.0, 7.0, 7.0]);
        assert!((q[1].0 - 2.5).abs() < 1e-9);
        let t = throughput_series(&bars, (0, 3_000_000_000));
        assert_eq!(t[0].1[0], 100.0);
        assert_eq!(t[1].1[0], 0.0);
    }

    #[test]
    fn clock_plot_prefers_measured_offsets_draws_drift_and_heals_to_zero() {
        let nem = |time_s: u64, f: &str, v: Value| {
            let mut o = Op::new(Process::Nemesis, OpType::Info, f, v);
            o.time = time_s * 1_000_000_000;
            o
        };
        let ops = vec![
            nem(
                1,
                "bump-clock",
                serde_json::json!({"targets": "n1", "delta_ms": 500}),
            ),
            nem(
                2,
                "bump-clock",
                serde_json::json!({"offsets": {
                "n1": {"offset_ms": 500.0, "rate": 1.0}, "n2": {"offset_ms": 0.0, "rate": 1.0}},
                "measured_offset_ms": {"n1": 498.7, "n2": {"error": "timeout"}}}),
            ),
            nem(
                4,
                "drift-clock",
                serde_json::json!({"offsets": {
                "n1": {"offset_ms": 498.7, "rate": 1.0}, "n2": {"offset_ms": 0.0, "rate": 1.1}}}),
            ),
            nem(
                6,
                "strobe-clock",
                serde_json::json!({"offsets": {
                "n1": {"offset_ms": 0.0, "rate": 1.0}}, "flips": {"n1": 40}, "delta_ms": 200,
                "request": {"duration_ms": 1000}}),
            ),
            nem(9, "heal", Value::Null),
        ];
        let span = (0, 10_000_000_000);
        let p = clock_plot(&ops, span).unwrap();
        assert!(p.measured);
        assert_eq!(
            p.lines["n1"],
            vec![
                (0.0, 0.0),
                (2.0, 0.0),
                (2.0, 498.7),
                (4.0, 498.7),
                (4.0, 498.7),
                (6.0, 498.7),
                (6.0, 0.0),
                (9.0, 0.0),
                (9.0, 0.0),
                (10.0, 0.0)
            ]
        );
        // n2 drifts 10% fast from 4 s: +200 ms by 6 s, +500 ms by the heal at 9 s
        // (n2 is not in the strobe's offsets: its line carries on through 6 s)
        let n2 = &p.lines["n2"];
        let close =
            |a: (f64, f64), b: (f64, f64)| (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-6;
        assert_eq!(n2.len(), 8, "{n2:?}");
        assert!(close(n2[4], (4.0, 0.0)), "{n2:?}");
        assert!(close(n2[5], (9.0, 500.0)), "{n2:?}");
        assert!(close(n2[6], (9.0, 0.0)), "{n2:?}");
        assert_eq!(p.strobes, vec![("n1".to_string(), 5.0, 6.0, 0.0, 200.0)]);
        assert!(
            clock_plot(&ops[4..], span).is_none(),
            "no clock fault, no chart"
        );
        let svg = clock_offsets(&ops, &[], span).unwrap().0;
        assert!(svg.starts_with("<svg") && svg.contains("n1") && svg.contains("n2"));
    }
}
