//! The HTML report: one self-contained page per run (`report.html`, written beside
//! `report.json`, and by `batchfan report RUN --html FILE`). It fetches nothing: the style is
//! inline and the charts are inline SVG drawn with plotters; the text and tables come from maud
//! templates, which escape everything (keys are user data).
//!
//! The page shows the summary and the options the run was started with, a timeline (one bar per
//! chunk and attempt up to [`TIMELINE_BARS`] chunks, past that [`LANES`] lanes of consecutive
//! chunks), the chunks running over time, distributions of duration, bytes and peak RSS, the
//! stragglers (slower than [`STRAGGLER_FACTOR`] times the median) and the failures, with their
//! keys, log tails and the commands to run next. What it lists is capped at [`LISTED`] entries
//! per table, so a page of 100,000 chunks stays small.

use std::collections::BTreeMap;

use bytes::Bytes;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use plotters::prelude::*;

use super::RunRecord;
use crate::error::{Error, Result};
use crate::registry::StoreRegistry;
use crate::report::{ChunkReport, ChunkStatus, RunReport};
use crate::size::format_size;
use crate::uri::Location;

/// Up to this many chunks, the timeline draws one bar per chunk (and a segment per attempt).
pub const TIMELINE_BARS: usize = 2_000;
/// Past [`TIMELINE_BARS`] chunks, the timeline draws this many lanes, each spanning a run of
/// consecutive chunks from the first start to the last end among them.
pub const LANES: usize = 1_000;
/// A straggler is a chunk that ran longer than this multiple of the median chunk.
pub const STRAGGLER_FACTOR: f64 = 2.0;
/// The most failures and stragglers each listed with their keys (the counts name the rest).
pub const LISTED: usize = 100;
/// Lines of a failed chunk's log shown.
pub const LOG_TAIL_LINES: usize = 20;
/// Keys shown per chunk listed.
const KEYS_SHOWN: usize = 5;
/// Bins of the histograms and of the chart of chunks running over time.
const BINS: usize = 40;
const TIME_BINS: usize = 300;
const WIDTH: u32 = 1200;

const OK: RGBColor = RGBColor(44, 160, 44);
const FAILED: RGBColor = RGBColor(214, 39, 40);
const PENDING: RGBColor = RGBColor(150, 150, 150);
const RETRIED: RGBColor = RGBColor(255, 127, 14);
const BAR: RGBColor = RGBColor(31, 119, 180);

/// The report's HTML key under the output location, beside `report.json`.
pub fn html_key(run_id: &str) -> String {
    crate::report::report_html_key(run_id)
}

/// What the page shows besides the run record and the report: the input keys of the chunks it
/// lists (from the manifest) and the last lines of the failed chunks' logs (local files).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Extras {
    /// Input keys per chunk listed (stragglers and failures), ranges written `key[start..end]`.
    pub keys: BTreeMap<u64, Vec<String>>,
    /// Items per chunk listed (more than the keys shown, sometimes).
    pub key_counts: BTreeMap<u64, usize>,
    /// The last [`LOG_TAIL_LINES`] lines of each failed chunk's log, when it is a local file.
    pub log_tails: BTreeMap<u64, Vec<String>>,
    /// Why the keys are missing, when the manifest could not be read.
    pub manifest_problem: Option<String>,
    /// When the page was made (ms since the epoch).
    pub generated_unix_ms: u64,
}

/// One attempt of a chunk, as drawn.
#[derive(Debug, Clone, Copy)]
struct Span {
    start_ms: u64,
    end_ms: u64,
    ok: bool,
}

/// The attempts of a chunk that have times, in order: its attempt history, else (reports
/// whose chunks carry no history) its last attempt.
fn spans(chunk: &ChunkReport) -> Vec<Span> {
    let from_history: Vec<Span> = chunk
        .attempt_history
        .iter()
        .filter_map(|a| match (a.started_unix_ms, a.ended_unix_ms) {
            (Some(start_ms), Some(end_ms)) => Some(Span { start_ms, end_ms: end_ms.max(start_ms), ok: a.committed }),
            _ => None,
        })
        .collect();
    if !from_history.is_empty() {
        return from_history;
    }
    match (chunk.started_unix_ms, chunk.ended_unix_ms) {
        (Some(start_ms), Some(end_ms)) => {
            vec![Span { start_ms, end_ms: end_ms.max(start_ms), ok: chunk.status == ChunkStatus::Succeeded }]
        }
        _ => Vec::new(),
    }
}

/// From the chunk's first start to its last end.
fn extent(chunk: &ChunkReport) -> Option<(u64, u64)> {
    let spans = spans(chunk);
    let start = spans.iter().map(|s| s.start_ms).min()?;
    let end = spans.iter().map(|s| s.end_ms).max()?;
    Some((start, end.max(start)))
}

/// The duration of the chunk's last (for a committed chunk: committing) attempt, in seconds.
fn duration_s(chunk: &ChunkReport) -> Option<f64> {
    match (chunk.started_unix_ms, chunk.ended_unix_ms) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1000.0),
        _ => spans(chunk).last().map(|s| s.end_ms.saturating_sub(s.start_ms) as f64 / 1000.0),
    }
}

fn items_of(chunk: &ChunkReport) -> Option<u64> {
    chunk.items
}

fn bytes_in_of(chunk: &ChunkReport) -> Option<u64> {
    chunk.bytes_in
}

fn peak_rss_of(chunk: &ChunkReport) -> Option<u64> {
    chunk.peak_rss_bytes
}

fn draw_error(what: &str) -> impl Fn(String) -> Error + '_ {
    move |reason| Error::Render { what: what.to_string(), reason }
}

/// Chunks slower than [`STRAGGLER_FACTOR`] times the median duration, slowest first, with the
/// median (seconds).
fn stragglers(report: &RunReport) -> (f64, Vec<(u64, f64)>) {
    let mut durations: Vec<(u64, f64)> =
        report.chunks.iter().filter_map(|c| duration_s(c).map(|d| (c.index, d))).collect();
    if durations.is_empty() {
        return (0.0, Vec::new());
    }
    let mut sorted: Vec<f64> = durations.iter().map(|d| d.1).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    durations.retain(|d| d.1 > median * STRAGGLER_FACTOR && d.1 > 0.0);
    durations.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    (median, durations)
}

/// The chunks the page lists: the first [`LISTED`] not succeeded and the [`LISTED`] slowest
/// stragglers.
pub fn listed_chunks(report: &RunReport) -> Vec<u64> {
    let mut listed: Vec<u64> =
        report.chunks.iter().filter(|c| c.status != ChunkStatus::Succeeded).take(LISTED).map(|c| c.index).collect();
    listed.extend(stragglers(report).1.iter().take(LISTED).map(|s| s.0));
    listed.sort_unstable();
    listed.dedup();
    listed
}

/// Reads what the page shows besides the record and the report: the keys of the chunks it
/// lists (one ranged read of the manifest each) and the log tails of failed chunks whose log is
/// a local file. What cannot be read is left out, and said on the page.
pub async fn gather(stores: &StoreRegistry, record: &RunRecord, report: &RunReport) -> Extras {
    let mut extras = Extras { generated_unix_ms: crate::contract::now_ms(), ..Extras::default() };
    let listed = listed_chunks(report);
    if !listed.is_empty() {
        match crate::manifest::ManifestReader::open(stores, &record.manifest).await {
            Ok(manifest) => {
                for index in listed {
                    match manifest.chunk(index).await {
                        Ok(items) => {
                            extras.key_counts.insert(index, items.len());
                            let keys = items.iter().take(KEYS_SHOWN).map(|item| match item.range {
                                Some([start, end]) => format!("{}[{start}..{end}]", item.key),
                                None => item.key.clone(),
                            });
                            extras.keys.insert(index, keys.collect());
                        }
                        Err(e) => extras.manifest_problem = Some(e.to_string()),
                    }
                }
            }
            Err(e) => extras.manifest_problem = Some(e.to_string()),
        }
    }
    for chunk in report.chunks.iter().filter(|c| c.status == ChunkStatus::Failed).take(LISTED) {
        if let Some(tail) = chunk.log.as_deref().and_then(log_tail) {
            extras.log_tails.insert(chunk.index, tail);
        }
    }
    extras
}

/// The last [`LOG_TAIL_LINES`] lines of a local log file (its last 16 KiB at most).
fn log_tail(log: &str) -> Option<Vec<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let path = std::path::Path::new(log.strip_prefix("file://").unwrap_or(log));
    if !path.is_absolute() {
        return None;
    }
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024))).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    Some(lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].iter().map(|l| l.to_string()).collect())
}

/// Renders the page of `record`'s run from its report and `extras`.
pub fn render(record: &RunRecord, report: &RunReport, extras: &Extras) -> Result<String> {
    let summary = Summary::of(record, report);
    let timeline = timeline_svg(report, &summary)?;
    let running = running_svg(report, &summary)?;
    let durations: Vec<f64> = report.chunks.iter().filter_map(duration_s).collect();
    let bytes: Vec<f64> = report.chunks.iter().filter_map(|c| bytes_in_of(c).map(|b| b as f64)).collect();
    let rss: Vec<f64> = report.chunks.iter().filter_map(|c| peak_rss_of(c).map(|b| b as f64)).collect();
    let histograms = [
        ("duration per chunk", "seconds", histogram_svg("duration per chunk", &durations, Unit::Seconds)?),
        ("bytes read per chunk", "bytes", histogram_svg("bytes read per chunk", &bytes, Unit::Bytes)?),
        ("peak RSS per chunk", "bytes", histogram_svg("peak RSS per chunk", &rss, Unit::Bytes)?),
    ];
    let (median, slow) = stragglers(report);
    let not_ok: Vec<&ChunkReport> = report.chunks.iter().filter(|c| c.status != ChunkStatus::Succeeded).collect();
    let run = &record.run_id;
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "batchfan report " (run) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Run " code { (run) } }
                p.sub {
                    (record.kind()) " run, started " (utc(record.created_unix_ms))
                    ", report made " (utc(extras.generated_unix_ms))
                }
                section #summary {
                    h2 { "Summary" }
                    div.counts {
                        div.count.ok { span.n #count-ok { (report.succeeded) } " ok" }
                        div.count.failed { span.n #count-failed { (report.failed) } " failed" }
                        div.count.pending { span.n #count-pending { (report.not_committed) } " not committed" }
                        div.count { span.n #count-total { (report.chunks.len()) } " chunks" }
                    }
                    table.kv {
                        tr { th { "output" } td { code { (record.output) } } }
                        tr { th { "manifest" } td { code { (record.manifest) } } }
                        tr { th { "items" } td { (summary.items_text()) } }
                        tr { th { "bytes" } td { (summary.bytes_text()) } }
                        tr { th { "wall time" } td { (summary.wall_text()) } }
                        tr { th { "throughput" } td { (summary.throughput_text()) } }
                        tr { th { "task-hours" } td { (summary.task_hours_text()) } }
                        tr { th { "CPU time" } td { (summary.cpu_text()) } }
                        tr { th { "attempts" } td { (summary.attempts) " in all, " (summary.retried) " chunks retried" } }
                        @if let Some(estimate) = estimate_text(report) {
                            tr { th { "estimate" } td { (estimate) } }
                        }
                    }
                }
                section #options {
                    h2 { "Options the run was started with" }
                    table.kv {
                        @for (name, value) in options(record) {
                            tr { th { (name) } td { code { (value) } } }
                        }
                    }
                }
                section #timeline {
                    h2 { "Timeline" }
                    p.note { (timeline_note(report.chunks.len(), summary.timed)) }
                    (legend())
                    div.chart { (PreEscaped(timeline)) }
                    div.chart { (PreEscaped(running)) }
                }
                section #distributions {
                    h2 { "Distributions" }
                    div.row {
                        @for (title, unit, svg) in &histograms {
                            div.chart.third title=(format!("{title} ({unit})")) { (PreEscaped(svg)) }
                        }
                    }
                }
                section #stragglers {
                    h2 { "Stragglers" }
                    p.note {
                        "Chunks slower than " (STRAGGLER_FACTOR) "× the median chunk ("
                        (seconds(median)) "): " (slow.len())
                        @if slow.len() > LISTED { ", the " (LISTED) " slowest listed" }
                        "."
                    }
                    @if !slow.is_empty() {
                        table.list {
                            tr { th { "chunk" } th { "duration" } th { "× median" } th { "items" } th { "keys" } }
                            @for (index, d) in slow.iter().take(LISTED) {
                                tr.straggler {
                                    td { (index) }
                                    td { (seconds(*d)) }
                                    td { (format!("{:.1}", d / median.max(1e-9))) }
                                    td { (extras.key_counts.get(index).map_or_else(|| "—".to_string(), |n| n.to_string())) }
                                    td { (keys(extras, *index)) }
                                }
                            }
                        }
                    }
                }
                section #failures {
                    h2 { "Failures" }
                    @if not_ok.is_empty() {
                        p.note { "Every chunk committed." }
                    } @else {
                        p.note {
                            (report.failed) " failed, " (report.not_committed) " not committed"
                            @if not_ok.len() > LISTED { "; the first " (LISTED) " listed" }
                            ". Run them again with:"
                        }
                        pre.cmd { "batchfan redrive " (run) }
                        @if let Some(problem) = &extras.manifest_problem {
                            p.warn { "Keys not shown: " (problem) }
                        }
                        @for chunk in not_ok.iter().take(LISTED) {
                            div.failure #(format!("chunk-{}", chunk.index)) {
                                h3 {
                                    "chunk " (chunk.index) " "
                                    span.status.(status_class(chunk.status)) { (chunk.status) }
                                }
                                table.kv {
                                    tr { th { "reason" } td { (chunk.reason.as_deref().unwrap_or("—")) } }
                                    tr { th { "exit code" } td { (chunk.exit_code.map_or_else(|| "—".to_string(), |c| c.to_string())) } }
                                    tr { th { "attempts" } td { (chunk.attempts.map_or_else(|| "—".to_string(), |a| a.to_string())) } }
                                    tr { th { "keys" } td { (keys(extras, chunk.index)) } }
                                    tr { th { "log" } td { code { (chunk.log.as_deref().unwrap_or("—")) } } }
                                }
                                @if !chunk.attempt_history.is_empty() {
                                    table.list.attempts {
                                        tr { th { "attempt" } th { "started" } th { "duration" } th { "exit" } th { "reason" } th { "log" } }
                                        @for a in &chunk.attempt_history {
                                            tr {
                                                td { (a.attempt) }
                                                td { (a.started_unix_ms.map_or_else(|| "—".to_string(), utc)) }
                                                td { (match (a.started_unix_ms, a.ended_unix_ms) {
                                                    (Some(x), Some(y)) => seconds(y.saturating_sub(x) as f64 / 1000.0),
                                                    _ => "—".to_string(),
                                                }) }
                                                td { (a.exit_code.map_or_else(|| "—".to_string(), |c| c.to_string())) }
                                                td { (a.reason.as_deref().unwrap_or("")) }
                                                td { code { (a.log.as_ref().map(ToString::to_string).unwrap_or_default()) } }
                                            }
                                        }
                                    }
                                }
                                @if let Some(tail) = extras.log_tails.get(&chunk.index) {
                                    pre.log { (tail.join("\n")) }
                                }
                                pre.cmd { "batchfan logs " (run) " --chunk " (chunk.index) }
                            }
                        }
                    }
                }
                footer { "batchfan " (env!("CARGO_PKG_VERSION")) ". Report key: " code { (html_key(run)) } }
            }
        }
    };
    Ok(page.into_string())
}

/// Renders the page and writes it beside the run's `report.json`; returns its URI.
pub async fn save(stores: &StoreRegistry, record: &RunRecord, report: &RunReport) -> Result<String> {
    let extras = gather(stores, record, report).await;
    let page = render(record, report, &extras)?;
    let output = Location::parse(&record.output)?;
    let key = html_key(&record.run_id);
    stores.store(&output)?.put(&key, Bytes::from(page)).await?;
    Ok(output.join_display(&key))
}

/// Renders the page and writes it to `uri` (a local path or `s3://bucket/key`).
pub async fn write_to(stores: &StoreRegistry, record: &RunRecord, report: &RunReport, uri: &str) -> Result<()> {
    let extras = gather(stores, record, report).await;
    let page = render(record, report, &extras)?;
    let (store, name) = stores.file(uri)?;
    store.put(&name, Bytes::from(page)).await
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:1240px;color:#222;padding:0 12px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:0 0 6px}.sub,.note{color:#555}.warn{color:#a60}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f6f6f6;border:1px solid #e3e3e3;padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
pre.cmd{background:#eef4fb;border-color:#cfe0f3}
.counts{display:flex;gap:12px;margin:8px 0 12px}.count{border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.count .n{font-size:22px;font-weight:600}.count.ok .n{color:#2ca02c}.count.failed .n{color:#d62728}.count.pending .n{color:#777}
table{border-collapse:collapse}th,td{text-align:left;padding:3px 10px 3px 0;vertical-align:top}
table.kv th{color:#555;font-weight:500;white-space:nowrap}table.list th{border-bottom:1px solid #ccc}
table.list td{border-bottom:1px solid #eee}
.chart{margin:8px 0;overflow-x:auto}.chart svg{max-width:100%;height:auto}.row{display:flex;flex-wrap:wrap;gap:8px}
.third{flex:1 1 380px}.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.failure{border:1px solid #f0c8c8;border-radius:6px;padding:10px;margin:10px 0}
.status{font-size:12px;padding:1px 6px;border-radius:4px;color:#fff}.status.failed{background:#d62728}
.status.pending{background:#888}.status.ok{background:#2ca02c}
footer{margin-top:32px;color:#777;font-size:12px}
";

fn status_class(status: ChunkStatus) -> &'static str {
    match status {
        ChunkStatus::Succeeded => "ok",
        ChunkStatus::Failed => "failed",
        ChunkStatus::NotCommitted => "pending",
    }
}

fn legend() -> Markup {
    let swatch = |c: RGBColor| format!("background:rgb({},{},{})", c.0, c.1, c.2);
    html! {
        p.legend {
            span { i style=(swatch(OK)) {} "committed" }
            span { i style=(swatch(FAILED)) {} "failed" }
            span { i style=(swatch(PENDING)) {} "not committed" }
            span { i style=(swatch(RETRIED)) {} "an attempt that failed (retried)" }
        }
    }
}

fn timeline_note(chunks: usize, timed: usize) -> String {
    if timed == 0 {
        return "No chunk of this run recorded its start and end times (reports of earlier releases): no timeline."
            .into();
    }
    if chunks <= TIMELINE_BARS {
        format!(
            "One bar per chunk (y: chunk index), from its start to its end; each attempt is its own segment. {timed} of {chunks} chunks have times."
        )
    } else {
        format!(
            "{chunks} chunks: past {TIMELINE_BARS}, one bar per lane of about {} consecutive chunks ({LANES} lanes), from the first start to the last end among them, in the colour of the worst outcome among them. {timed} chunks have times.",
            chunks.div_ceil(LANES)
        )
    }
}

fn keys(extras: &Extras, index: u64) -> Markup {
    let shown = extras.keys.get(&index);
    let total = extras.key_counts.get(&index).copied().unwrap_or(0);
    html! {
        @if let Some(keys) = shown {
            @for key in keys { code.key { (key) } br; }
            @if total > keys.len() { span.note { "… and " (total - keys.len()) " more" } }
        } @else { "—" }
    }
}

/// The cost `submit --estimate` put in the report: the chosen capacity's cost and task-hours,
/// and the cheapest alternative when it is another.
fn estimate_text(report: &RunReport) -> Option<String> {
    let estimate: crate::price::Estimate = serde_json::from_value(report.estimate.clone()?).ok()?;
    let option = |o: &crate::price::CostOption| {
        format!("${:.2} ({:?} {:?}, {:.1} task-hours)", o.cost, o.capacity, o.arch, o.task_hours)
    };
    let mut text = format!("{} estimated before submit", option(&estimate.chosen));
    if let Some(cheapest) = estimate.alternatives.first().filter(|c| c.cost < estimate.chosen.cost) {
        text.push_str(&format!("; cheapest alternative {}", option(cheapest)));
    }
    Some(text)
}

/// What the options table shows: the record's fields but the ones shown elsewhere, values as
/// JSON (long ones cut).
fn options(record: &RunRecord) -> Vec<(String, String)> {
    let shown_elsewhere = ["run_id", "record_uri", "manifest", "output", "batchfan_run", "created_unix_ms"];
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(record) else { return Vec::new() };
    map.into_iter()
        .filter(|(k, _)| !shown_elsewhere.contains(&k.as_str()))
        .map(|(k, v)| {
            let mut text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            if text.len() > 600 {
                let cut = (0..=600).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
                text.truncate(cut);
                text.push_str(" …");
            }
            (k, text)
        })
        .collect()
}

/// A time as `2026-11-30 10:52:49 UTC`.
fn utc(ms: u64) -> String {
    if ms == 0 {
        return "—".into();
    }
    let secs = ms / 1000;
    let (y, m, d) = crate::layout::civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", t / 3600, t / 60 % 60, t % 60)
}

fn seconds(s: f64) -> String {
    if s >= 3600.0 {
        format!("{}h{:02}m", (s / 3600.0) as u64, (s % 3600.0 / 60.0) as u64)
    } else if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.2} s")
    }
}

/// The run's figures, from the record and the chunks' metrics.
struct Summary {
    /// Earliest start and latest end of any chunk.
    window: Option<(u64, u64)>,
    items_done: Option<u64>,
    bytes_done: Option<u64>,
    bytes_out: u64,
    item_count: u64,
    total_bytes: u64,
    task_ms: u64,
    cpu_ms: Option<u64>,
    attempts: u64,
    retried: u64,
    timed: usize,
}

impl Summary {
    fn of(record: &RunRecord, report: &RunReport) -> Summary {
        let mut s = Summary {
            window: None,
            items_done: None,
            bytes_done: None,
            bytes_out: 0,
            item_count: record.item_count,
            total_bytes: record.total_bytes,
            task_ms: 0,
            cpu_ms: None,
            attempts: 0,
            retried: 0,
            timed: 0,
        };
        for chunk in &report.chunks {
            let spans = spans(chunk);
            s.task_ms += spans.iter().map(|a| a.end_ms.saturating_sub(a.start_ms)).sum::<u64>();
            if let Some((start, end)) = extent(chunk) {
                s.timed += 1;
                s.window = Some(s.window.map_or((start, end), |(a, b)| (a.min(start), b.max(end))));
            }
            let attempts = u64::from(chunk.attempts.unwrap_or(0)).max(spans.len() as u64);
            s.attempts += attempts;
            s.retried += u64::from(attempts > 1);
            s.bytes_out += chunk.bytes_out.unwrap_or(0);
            if chunk.cpu_user_ms.is_some() || chunk.cpu_system_ms.is_some() {
                *s.cpu_ms.get_or_insert(0) += chunk.cpu_user_ms.unwrap_or(0) + chunk.cpu_system_ms.unwrap_or(0);
            }
            if chunk.status == ChunkStatus::Succeeded {
                if let Some(items) = items_of(chunk) {
                    *s.items_done.get_or_insert(0) += items;
                }
                if let Some(bytes) = bytes_in_of(chunk) {
                    *s.bytes_done.get_or_insert(0) += bytes;
                }
            }
        }
        s
    }

    fn wall_s(&self) -> Option<f64> {
        self.window.map(|(a, b)| b.saturating_sub(a) as f64 / 1000.0)
    }

    fn items_text(&self) -> String {
        match self.items_done {
            Some(done) => format!("{done} processed of {} planned", self.item_count),
            None => format!("{} planned", self.item_count),
        }
    }

    fn bytes_text(&self) -> String {
        let read = match self.bytes_done {
            Some(done) => format!("{} read of {} planned", format_size(done), format_size(self.total_bytes)),
            None => format!("{} planned", format_size(self.total_bytes)),
        };
        format!("{read}; {} written", format_size(self.bytes_out))
    }

    fn wall_text(&self) -> String {
        self.wall_s().map_or_else(|| "—".into(), seconds)
    }

    fn throughput_text(&self) -> String {
        let Some(wall) = self.wall_s().filter(|w| *w > 0.0) else { return "—".into() };
        let items = self.items_done.unwrap_or(0) as f64 / wall;
        let bytes = self.bytes_done.unwrap_or(0) as f64 / wall;
        format!("{items:.1} items/s, {}/s", format_size(bytes as u64))
    }

    fn cpu_text(&self) -> String {
        match self.cpu_ms {
            Some(ms) => format!("{:.3} hours (user + system, committing attempts)", ms as f64 / 3_600_000.0),
            None => "—".into(),
        }
    }

    fn task_hours_text(&self) -> String {
        if self.task_ms == 0 {
            return "—".into();
        }
        format!("{:.3} (every attempt's duration, summed)", self.task_ms as f64 / 3_600_000.0)
    }
}

/// One row of the timeline: its label (the first chunk), its segments (colour, from, to, in
/// seconds since the run's first start).
type Row = (u64, Vec<(RGBColor, f64, f64)>);

fn timeline_rows(report: &RunReport, origin: u64) -> Vec<Row> {
    let secs = |ms: u64| ms.saturating_sub(origin) as f64 / 1000.0;
    let colour = |status: ChunkStatus| match status {
        ChunkStatus::Succeeded => OK,
        ChunkStatus::Failed => FAILED,
        ChunkStatus::NotCommitted => PENDING,
    };
    if report.chunks.len() <= TIMELINE_BARS {
        return report
            .chunks
            .iter()
            .map(|c| {
                let spans = spans(c);
                let last = spans.len().saturating_sub(1);
                let segments = spans
                    .iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let c = if i == last {
                            colour(c.status)
                        } else if s.ok {
                            OK
                        } else {
                            RETRIED
                        };
                        (c, secs(s.start_ms), secs(s.end_ms))
                    })
                    .collect();
                (c.index, segments)
            })
            .collect();
    }
    let per_lane = report.chunks.len().div_ceil(LANES);
    report
        .chunks
        .chunks(per_lane)
        .map(|lane| {
            let extents: Vec<(u64, u64)> = lane.iter().filter_map(extent).collect();
            let worst = if lane.iter().any(|c| c.status == ChunkStatus::Failed) {
                FAILED
            } else if lane.iter().any(|c| c.status == ChunkStatus::NotCommitted) {
                PENDING
            } else {
                OK
            };
            let segments = match (extents.iter().map(|e| e.0).min(), extents.iter().map(|e| e.1).max()) {
                (Some(a), Some(b)) => vec![(worst, secs(a), secs(b))],
                _ => Vec::new(),
            };
            (lane[0].index, segments)
        })
        .collect()
}

fn empty_svg(title: &str, text: &str, width: u32) -> Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, 60)).into_drawing_area();
        let fail = draw_error(title);
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        root.draw(&Text::new(format!("{title}: {text}"), (10, 24), ("sans-serif", 14).into_font()))
            .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(out)
}

fn timeline_svg(report: &RunReport, summary: &Summary) -> Result<String> {
    let Some((origin, end)) = summary.window else { return empty_svg("timeline", "no chunk times recorded", WIDTH) };
    let rows = timeline_rows(report, origin);
    let wall = (end.saturating_sub(origin) as f64 / 1000.0).max(0.001);
    let n = rows.len().max(1);
    let row_px = if n <= 100 {
        12
    } else if n <= 500 {
        4
    } else {
        2
    };
    let height = (n as u32 * row_px + 80).clamp(200, 2_600);
    let fail = draw_error("timeline");
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let lanes = report.chunks.len() > TIMELINE_BARS;
        let labels: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(34)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..wall * 1.01, n as f64..0f64)
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("seconds since the first chunk started")
            .y_desc(if lanes { "lane (first chunk)" } else { "chunk" })
            .y_labels(n.min(20))
            .y_label_formatter(&|y| labels.get(*y as usize).map_or_else(String::new, |i| i.to_string()))
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        let gap = if row_px >= 4 { 0.15 } else { 0.0 };
        // A bar at least a pixel wide, so instant chunks show.
        let min_width = wall * 1.01 / f64::from(WIDTH);
        chart
            .draw_series(rows.iter().enumerate().flat_map(|(row, (_, segments))| {
                segments.iter().map(move |(colour, from, to)| {
                    let y = row as f64;
                    Rectangle::new([(*from, y + gap), (to.max(from + min_width), y + 1.0 - gap)], colour.filled())
                })
            }))
            .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(out)
}

/// Chunks running over time, stacked by how they ended: the timeline's shape at any size.
fn running_svg(report: &RunReport, summary: &Summary) -> Result<String> {
    let Some((origin, end)) = summary.window else {
        return empty_svg("chunks running", "no chunk times recorded", WIDTH);
    };
    let span = end.saturating_sub(origin).max(1);
    let bin_of =
        |ms: u64| ((ms.saturating_sub(origin) as u128 * TIME_BINS as u128 / span as u128) as usize).min(TIME_BINS - 1);
    // Difference arrays: +1 where a chunk starts, -1 after the bin it ends in.
    let mut diff = [vec![0i64; TIME_BINS + 1], vec![0i64; TIME_BINS + 1], vec![0i64; TIME_BINS + 1]];
    for chunk in &report.chunks {
        let k = match chunk.status {
            ChunkStatus::Succeeded => 0,
            ChunkStatus::Failed => 1,
            ChunkStatus::NotCommitted => 2,
        };
        for s in spans(chunk) {
            diff[k][bin_of(s.start_ms)] += 1;
            diff[k][bin_of(s.end_ms) + 1] -= 1;
        }
    }
    let counts: Vec<Vec<i64>> = diff
        .iter()
        .map(|d| {
            d[..TIME_BINS]
                .iter()
                .scan(0i64, |running, step| {
                    *running += step;
                    Some(*running)
                })
                .collect()
        })
        .collect();
    let top = (0..TIME_BINS).map(|b| counts[0][b] + counts[1][b] + counts[2][b]).max().unwrap_or(0).max(1);
    let wall = span as f64 / 1000.0;
    let width = wall / TIME_BINS as f64;
    let fail = draw_error("chunks running");
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, 240)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .caption("chunk attempts running", ("sans-serif", 15))
            .x_label_area_size(34)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..wall * 1.01, 0f64..top as f64 * 1.1)
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("seconds since the first chunk started")
            .y_desc("running")
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        let mut bars = Vec::new();
        for b in 0..TIME_BINS {
            let mut base = 0;
            for (by_outcome, colour) in counts.iter().zip([OK, FAILED, PENDING]) {
                let c = by_outcome[b];
                if c > 0 {
                    let x = b as f64 * width;
                    bars.push(Rectangle::new([(x, base as f64), (x + width, (base + c) as f64)], colour.filled()));
                    base += c;
                }
            }
        }
        chart.draw_series(bars).map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Bytes,
}

fn histogram_svg(title: &str, values: &[f64], unit: Unit) -> Result<String> {
    if values.is_empty() {
        return empty_svg(title, "not recorded", 400);
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let width = (hi - lo) / BINS as f64;
    let mut counts = vec![0u64; BINS];
    for v in values {
        counts[(((v - lo) / width) as usize).min(BINS - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let fail = draw_error(title);
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (400, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .caption(title, ("sans-serif", 14))
            .x_label_area_size(30)
            .y_label_area_size(44)
            .build_cartesian_2d(lo..hi, 0f64..top as f64 * 1.1)
            .map_err(|e| fail(e.to_string()))?;
        let label = |x: &f64| match unit {
            Unit::Seconds => format!("{x:.1}s"),
            Unit::Bytes => format_size(*x as u64),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(5)
            .y_labels((top as usize).min(5))
            .x_label_formatter(&label)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .y_desc("chunks")
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        chart
            .draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| {
                let x = lo + i as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, *c as f64)], BAR.filled())
            }))
            .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    Ok(out)
}

/// A report of `chunks` chunks with made-up times, items, bytes and memory (every 97th chunk
/// failed, every 13th retried): for benchmarks and tests of the page at scale.
#[doc(hidden)]
pub fn synthetic(chunks: u64) -> (RunRecord, RunReport) {
    let header = crate::contract::Header {
        format: crate::contract::FORMAT_NAME.into(),
        version: crate::contract::FORMAT_VERSION,
        run_id: "bf-20261130-000000-000000".into(),
        created_unix_ms: 1_790_000_000_000,
        input: "s3://in/".into(),
        output: "s3://out/".into(),
        object_count: chunks * 10,
        item_count: chunks * 10,
        total_bytes: chunks * 10_000_000,
        chunk_count: chunks,
        split_bytes: None,
        chunks: Vec::new(),
        fenced: true,
    };
    let local = crate::local::LocalRecord {
        program: "/usr/bin/batchfan-worker".into(),
        args: vec!["wordcount".into()],
        parallel: 64,
        attempts: 2,
        log_dir: None,
    };
    let mut record = RunRecord::new("s3://out/m.jsonl", &header, super::RecordDetail::Local(local))
        .unwrap_or_else(|_| unreachable!("a valid output"));
    record.created_unix_ms = header.created_unix_ms;
    let mut report = RunReport {
        batchfan_report: crate::report::REPORT_VERSION,
        run_id: header.run_id.clone(),
        output: header.output.clone(),
        succeeded: 0,
        failed: 0,
        not_committed: 0,
        chunks: Vec::new(),
        estimate: None,
    };
    // 64 slots; chunk durations 20-40 s, every 211th a 5x straggler; every 13th chunk has a
    // failed first attempt of 5 s; every 97th fails both attempts.
    let mut slots = [record.created_unix_ms; 64];
    for index in 0..chunks {
        let failed = index % 97 == 96;
        let retried = index % 13 == 0 || failed;
        let slot = &mut slots[(index % 64) as usize];
        let mut history = Vec::new();
        if retried {
            history.push(crate::status::AttemptReport {
                attempt: 1,
                started_unix_ms: Some(*slot),
                ended_unix_ms: Some(*slot + 5_000),
                exit_code: Some(1),
                reason: Some(format!("injected failure in chunk {index}")),
                ..crate::status::AttemptReport::default()
            });
            *slot += 5_000;
        }
        let mut ms = 20_000 + (index * 7_919 % 20_000);
        if index % 211 == 7 {
            ms *= 5;
        }
        let (start, end) = (*slot, *slot + ms);
        *slot = end;
        let mut chunk = ChunkReport::new(index, if failed { ChunkStatus::Failed } else { ChunkStatus::Succeeded });
        chunk.attempts = Some(if retried { 2 } else { 1 });
        chunk.started_unix_ms = Some(start);
        chunk.ended_unix_ms = Some(end);
        chunk.items = Some(10);
        chunk.bytes_in = Some(5_000_000 + index * 104_729 % 10_000_000);
        chunk.peak_rss_bytes = Some(60_000_000 + index * 15_485_863 % 200_000_000);
        history.push(crate::status::AttemptReport {
            attempt: if retried { 2 } else { 1 },
            started_unix_ms: Some(start),
            ended_unix_ms: Some(end),
            exit_code: Some(if failed { 1 } else { 0 }),
            committed: !failed,
            ..crate::status::AttemptReport::default()
        });
        chunk.attempt_history = history;
        if failed {
            chunk.exit_code = Some(1);
            chunk.reason = Some(format!("injected failure in chunk {index}"));
            report.failed += 1;
        } else {
            chunk.output_key = Some(crate::contract::part_key(index));
            chunk.bytes_out = Some(1_000_000);
            report.succeeded += 1;
        }
        report.chunks.push(chunk);
    }
    (record, report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(chunks: u64, poison: &str) -> String {
        let (record, mut report) = synthetic(chunks);
        let mut extras = Extras::default();
        if let Some(failed) = report.chunks.iter_mut().find(|c| c.status == ChunkStatus::Failed) {
            failed.reason = Some(poison.to_string());
            extras.keys.insert(failed.index, vec![poison.to_string()]);
            extras.key_counts.insert(failed.index, 1);
        }
        render(&record, &report, &extras).unwrap()
    }

    #[test]
    fn keys_and_reasons_are_escaped() {
        let html = page(200, "<script>document.title='pwned'</script>");
        assert!(!html.contains("<script>document.title"), "a key went into the page unescaped");
        assert!(html.contains("&lt;script&gt;document.title="), "the key shows as text");
    }

    #[test]
    fn the_page_fetches_nothing() {
        let html = page(500, "k");
        for needle in ["http://", "https://", "<script", "<link", "@import", "url("] {
            let outside_svg_ns = html.replace("http://www.w3.org/2000/svg", "");
            assert!(!outside_svg_ns.contains(needle), "the page holds `{needle}`");
        }
    }

    #[test]
    fn the_commands_to_run_next_are_on_the_page() {
        let html = page(200, "k");
        assert!(html.contains("batchfan redrive bf-20261130-000000-000000"));
        assert!(html.contains("batchfan logs bf-20261130-000000-000000 --chunk 96"));
    }
}
