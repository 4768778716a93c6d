//! Progress: readable lines on stderr and a machine event stream.
//!
//! Every event carries seed 000's SetupProgress fields (current_step,
//! total_steps, step_name, step_progress, overall_progress, bytes_downloaded,
//! bytes_total, estimated_remaining_s, message, new_capability) plus `type`,
//! `seq` and `time`. The stream is appended by each helper invocation; `seq`
//! and the high-water `overall_progress` continue from the file's last event,
//! so the sequence is strictly increasing and progress never goes back.

use crate::fsutil;
use crate::out;
use crate::state::PHASES;
use serde::Serialize;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Sse,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "ndjson" | "json" => Some(Format::Ndjson),
            "sse" => Some(Format::Sse),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub seq: u64,
    pub time: String,
    pub current_step: usize,
    pub total_steps: usize,
    pub step_name: &'a str,
    pub step_progress: f64,
    pub overall_progress: f64,
    pub bytes_downloaded: u64,
    pub bytes_total: u64,
    pub estimated_remaining_s: u64,
    pub message: &'a str,
    pub new_capability: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// On `progress`: the bytes of `component`'s transfer so far, and its size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_bytes_total: Option<u64>,
    /// On `finished`: the summary (the same document as --summary-json).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<&'a serde_json::Value>,
    /// On `started`: the components of the plan (id, kind, optional,
    /// status, bytes_total).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<&'a serde_json::Value>,
}

/// The optional parts of an event.
#[derive(Default, Clone, Copy)]
struct Extra<'a> {
    capability: Option<&'a str>,
    component: Option<&'a str>,
    status: Option<&'a str>,
    exit_code: Option<i32>,
    component_bytes: Option<(u64, u64)>,
    summary: Option<&'a serde_json::Value>,
    components: Option<&'a serde_json::Value>,
}

/// Reports progress of one phase.
pub struct Reporter {
    file: Option<(File, Format)>,
    seq: u64,
    overall: f64,
    phase_idx: usize,
    step_progress: f64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    phase_base: u64,
    phase_total: u64,
    tty: bool,
    /// Lines of the live display drawn on the terminal (bars + total).
    live_lines: usize,
    /// Active transfers on the live display: label, got, size.
    bars: Vec<(String, u64, u64)>,
    last_plain: Option<Instant>,
    last_event: Option<Instant>,
    last_draw: Option<Instant>,
    /// (time, bytes_done) samples of the last `RATE_WINDOW`: the speed and
    /// the ETA come from this window, not from the start of the run.
    rate: std::collections::VecDeque<(Instant, u64)>,
}

/// How far back the speed is measured.
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(8);

/// Read the last event's seq and overall_progress from an existing stream.
fn resume_point(f: &mut File) -> (u64, f64) {
    let len = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    let mut tail = String::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_string(&mut tail).is_err() {
        return (0, 0.0);
    }
    // The seq of the last event; the overall_progress of the last that has
    // one (a `finished` written by an older progress server has none).
    let mut seq = None;
    for line in tail.lines().rev() {
        let json = line.strip_prefix("data: ").unwrap_or(line);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
            continue;
        };
        let Some(s) = v.get("seq").and_then(|s| s.as_u64()) else {
            continue;
        };
        let seq = *seq.get_or_insert(s);
        if let Some(o) = v.get("overall_progress").and_then(|o| o.as_f64()) {
            return (seq, o);
        }
    }
    (seq.unwrap_or(0), 0.0)
}

impl Reporter {
    pub fn new(
        events: Option<&Path>,
        format: Format,
        phase: &str,
    ) -> crate::error::Result<Reporter> {
        let phase_idx = crate::state::phase_index(phase).map(|i| i + 1).unwrap_or(0);
        let mut seq = 0;
        let mut overall = 0.0;
        let file = match events {
            None => None,
            Some(p) => {
                let mut f = crate::named::open_append(p, "--events")?;
                (seq, overall) = resume_point(&mut f);
                Some((f, format))
            }
        };
        Ok(Reporter {
            file,
            seq,
            overall,
            phase_idx,
            step_progress: 0.0,
            bytes_done: 0,
            bytes_total: 0,
            phase_base: 0,
            phase_total: 0,
            tty: out::stderr_is_tty(),
            live_lines: 0,
            bars: Vec::new(),
            last_plain: None,
            last_event: None,
            last_draw: None,
            rate: std::collections::VecDeque::new(),
        })
    }

    fn phase_name(&self) -> &'static str {
        self.phase_idx
            .checked_sub(1)
            .and_then(|i| PHASES.get(i))
            .copied()
            .unwrap_or("install")
    }

    /// Record where the bytes stand now (at most every 100 ms), keeping
    /// the samples of the last `RATE_WINDOW`.
    fn sample(&mut self) {
        let now = Instant::now();
        if self
            .rate
            .back()
            .is_some_and(|(t, _)| now.duration_since(*t).as_millis() < 100)
        {
            return;
        }
        self.rate.push_back((now, self.bytes_done));
        while self.rate.len() > 2
            && self
                .rate
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.rate.pop_front();
        }
    }

    /// Bytes per second over the window; None until it spans half a second.
    fn speed(&self) -> Option<f64> {
        let (t0, b0) = *self.rate.front()?;
        let secs = t0.elapsed().as_secs_f64();
        let got = self.bytes_done.saturating_sub(b0) as f64;
        (secs >= 0.5 && got > 0.0).then(|| got / secs)
    }

    fn eta(&self) -> u64 {
        let Some(rate) = self.speed() else {
            return 0;
        };
        let left = self.bytes_total.saturating_sub(self.bytes_done) as f64;
        (left / rate).ceil() as u64
    }

    /// "12.3 MB/s, about 40 s left", or "" before there is a rate.
    fn pace(&self) -> String {
        match self.speed() {
            Some(r) => format!(
                "{}/s, about {} s left",
                fsutil::human_bytes(r as u64),
                self.eta()
            ),
            None => "measuring speed".to_string(),
        }
    }

    fn emit(&mut self, kind: &str, message: &str, x: Extra) {
        let Extra {
            capability,
            component,
            status,
            exit_code,
            component_bytes,
            summary,
            components,
        } = x;
        let total = PHASES.len();
        let base = self.phase_idx.saturating_sub(1) as f64;
        let phases = ((base + self.step_progress.clamp(0.0, 1.0)) / total as f64).clamp(0.0, 1.0);
        // Work done / work planned, across runs: bytes weigh most (they are
        // the time), phases the rest; both only grow within a run, and the
        // high-water mark read from the stream carries over between runs.
        let target = if kind == "finished" && status == Some("success") {
            1.0
        } else if self.bytes_total > 0 {
            let bytes = (self.bytes_done as f64 / self.bytes_total as f64).clamp(0.0, 1.0);
            (0.8 * bytes + 0.2 * phases).min(0.9999)
        } else {
            phases.min(0.9999)
        };
        if target > self.overall {
            self.overall = target;
        }
        if self.file.is_none() {
            return;
        }
        let eta = self.eta();
        self.seq += 1;
        let ev = Event {
            kind,
            seq: self.seq,
            time: fsutil::now_rfc3339(),
            current_step: self.phase_idx,
            total_steps: total,
            step_name: PHASES
                .get(self.phase_idx.wrapping_sub(1))
                .copied()
                .unwrap_or("install"),
            step_progress: (self.step_progress.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0,
            overall_progress: (self.overall * 10_000.0).floor() / 10_000.0,
            bytes_downloaded: self.bytes_done,
            bytes_total: self.bytes_total,
            estimated_remaining_s: eta,
            message,
            new_capability: capability,
            component,
            status,
            exit_code,
            component_bytes: component_bytes.map(|b| b.0),
            component_bytes_total: component_bytes.map(|b| b.1),
            summary,
            components,
        };
        let Ok(json) = serde_json::to_string(&ev) else {
            return;
        };
        let Some((f, fmt)) = self.file.as_mut() else {
            return;
        };
        let text = match fmt {
            Format::Ndjson => format!("{json}\n"),
            Format::Sse => format!("event: {kind}\nid: {}\ndata: {json}\n\n", self.seq),
        };
        // One write per event so a reader never sees half an event from us.
        let _ = f.write_all(text.as_bytes());
    }

    /// Erase the live display (it is redrawn by the next transfer).
    fn clear_live(&mut self) {
        if self.live_lines > 0 {
            let mut t = String::new();
            for _ in 0..self.live_lines {
                t.push_str("\x1b[1A\r\x1b[2K");
            }
            out::raw(&t);
            self.live_lines = 0;
        }
    }

    /// One line per active transfer plus a total, in place.
    fn draw_live(&mut self) {
        let mut t = String::new();
        for _ in 0..self.live_lines {
            t.push_str("\x1b[1A\r\x1b[2K");
        }
        let width = out::term_width();
        for (label, got, size) in &self.bars {
            let pct = if *size > 0 {
                *got as f64 * 100.0 / *size as f64
            } else {
                0.0
            };
            let line = format!(
                "  {}: {} / {} ({pct:.0}%)",
                out::clean(label),
                fsutil::human_bytes(*got),
                fsutil::human_bytes(*size)
            );
            // A bar where the terminal has room for it beside the text.
            let room = width.saturating_sub(line.chars().count() + 3);
            if room >= 10 {
                let n = room.min(40);
                let full = ((pct / 100.0) * n as f64).round() as usize;
                t.push_str(&format!(
                    "{line} [{}{}]\n",
                    "#".repeat(full.min(n)),
                    "-".repeat(n - full.min(n))
                ));
            } else {
                t.push_str(&format!("{line}\n"));
            }
        }
        t.push_str(&format!(
            "  total: {} / {}, {}\n",
            fsutil::human_bytes(self.bytes_done),
            fsutil::human_bytes(self.bytes_total),
            self.pace()
        ));
        out::raw(&t);
        self.live_lines = self.bars.len() + 1;
    }

    /// Human line on stderr plus an event.
    pub fn info(&mut self, message: &str) {
        self.clear_live();
        out::line(&format!("  {message}"));
        self.emit("message", message, Extra::default());
    }

    /// `component`'s work has begun (a download, a build, a command): a
    /// `step` event with status `running`, so a GUI shows it as such for
    /// every kind; the line `component: message` when there is a message.
    pub fn working(&mut self, component: &str, message: &str) {
        if !message.is_empty() {
            self.clear_live();
            out::line(&format!("  {component}: {message}"));
        }
        self.emit(
            "step",
            message,
            Extra {
                component: Some(component),
                status: Some("running"),
                ..Extra::default()
            },
        );
    }

    /// One line of a build's output, as it happens.
    pub fn output(&mut self, component: &str, line: &str) {
        self.clear_live();
        out::line(&format!("    | {line}"));
        self.emit(
            "output",
            line,
            Extra {
                component: Some(component),
                ..Extra::default()
            },
        );
    }

    pub fn warn(&mut self, message: &str) {
        self.clear_live();
        out::line(&format!("  warning: {message}"));
        self.emit("warning", message, Extra::default());
    }

    pub fn phase_started(&mut self) {
        self.step_progress = 0.0;
        let msg = format!(
            "[{}/{}] {}",
            self.phase_idx,
            PHASES.len(),
            self.phase_name()
        );
        out::line(&msg);
        self.emit(
            "phase_started",
            &msg,
            Extra {
                status: Some("running"),
                ..Extra::default()
            },
        );
    }

    pub fn phase_finished(&mut self, status: &str, message: &str) {
        self.clear_live();
        if status == "done" {
            self.step_progress = 1.0;
        }
        if !message.is_empty() {
            out::line(&format!("  {message}"));
        }
        self.emit(
            "phase_finished",
            message,
            Extra {
                status: Some(status),
                ..Extra::default()
            },
        );
    }

    /// A component reached a final status.
    pub fn step(&mut self, component: &str, status: &str, message: &str) {
        self.clear_live();
        let mark = match status {
            "done" => "ok",
            "failed" => "FAILED",
            "skipped" => "skipped",
            _ => status,
        };
        out::line(&format!(
            "  {component}: {mark}{}{message}",
            if message.is_empty() { "" } else { ": " }
        ));
        self.emit(
            "step",
            message,
            Extra {
                component: Some(component),
                status: Some(status),
                ..Extra::default()
            },
        );
    }

    pub fn capability(&mut self, component: &str, capability: &str, message: &str) {
        self.clear_live();
        out::line(&format!("  * {message}"));
        self.emit(
            "capability",
            message,
            Extra {
                capability: Some(capability),
                component: Some(component),
                ..Extra::default()
            },
        );
    }

    pub fn set_step_progress(&mut self, p: f64) {
        if p > self.step_progress {
            self.step_progress = p.min(1.0);
        }
    }

    pub fn start_rate(&mut self) {
        self.rate.clear();
        self.sample();
    }

    /// Download progress: a live line on a terminal, a line every 5 s otherwise.
    pub fn transfer(&mut self, what: &str, got: u64, size: u64) {
        let pct = if size > 0 {
            got as f64 * 100.0 / size as f64
        } else {
            0.0
        };
        self.sample();
        let text = format!(
            "{what}: {} / {} ({pct:.0}%), {} / {} in all, {}",
            fsutil::human_bytes(got),
            fsutil::human_bytes(size),
            fsutil::human_bytes(self.bytes_done),
            fsutil::human_bytes(self.bytes_total),
            self.pace()
        );
        let due = self.last_plain.is_none_or(|t| t.elapsed().as_secs() >= 5);
        let done = got >= size;
        if self.tty {
            match self.bars.iter_mut().find(|b| b.0 == what) {
                Some(b) => (b.1, b.2) = (got, size),
                None => self.bars.push((what.to_string(), got, size)),
            }
            if done
                || self
                    .last_draw
                    .is_none_or(|t| t.elapsed().as_millis() >= 100)
            {
                self.draw_live();
                self.last_draw = Some(Instant::now());
            }
            if done {
                self.bars.retain(|b| b.0 != what);
            }
        } else if due || done {
            out::line(&format!("  {text}"));
            self.last_plain = Some(Instant::now());
        }
        if done
            || self
                .last_event
                .is_none_or(|t| t.elapsed().as_millis() >= 500)
        {
            self.last_event = Some(Instant::now());
            if self.phase_total > 0 {
                let p = self.bytes_done.saturating_sub(self.phase_base) as f64
                    / self.phase_total as f64;
                self.set_step_progress(p * 0.99);
            }
            let component = what.split(": ").next().unwrap_or(what);
            self.emit(
                "progress",
                &text,
                Extra {
                    component: Some(component),
                    component_bytes: Some((got, size)),
                    ..Extra::default()
                },
            );
        }
    }

    /// Byte range of the current phase, so transfers move step_progress.
    pub fn set_phase_bytes(&mut self, base: u64, total: u64) {
        self.phase_base = base;
        self.phase_total = total;
    }

    /// The terminal event of an install: status, exit code and summary.
    pub fn finished(
        &mut self,
        status: &str,
        exit_code: i32,
        message: &str,
        summary: Option<&serde_json::Value>,
    ) {
        self.clear_live();
        self.emit(
            "finished",
            message,
            Extra {
                status: Some(status),
                exit_code: Some(exit_code),
                summary,
                ..Extra::default()
            },
        );
    }

    /// The first event of an install run (`begin`): `mode` is fresh,
    /// resume or upgrade. A progress server replays from the last fresh or
    /// upgrade start, so a resumed run continues the same view.
    /// (`seq` always continues: it never repeats within a file.)
    pub fn started(&mut self, mode: &str, message: &str, components: &serde_json::Value) {
        // A new install's bar starts at zero; a resumed one keeps its mark.
        if mode != "resume" {
            self.overall = 0.0;
        }
        self.emit(
            "started",
            message,
            Extra {
                status: Some(mode),
                components: Some(components),
                ..Extra::default()
            },
        );
    }
}

/// A shared handle on a Reporter, so several downloads running at once
/// report into one stream (one `seq`, one high-water `overall_progress`).
#[derive(Clone)]
pub struct Progress(std::sync::Arc<std::sync::Mutex<Reporter>>);

impl Progress {
    pub fn new(r: Reporter) -> Progress {
        Progress(std::sync::Arc::new(std::sync::Mutex::new(r)))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Reporter) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn info(&self, m: &str) {
        self.with(|r| r.info(m))
    }
    pub fn warn(&self, m: &str) {
        self.with(|r| r.warn(m))
    }
    pub fn output(&self, c: &str, line: &str) {
        self.with(|r| r.output(c, line))
    }
    pub fn working(&self, c: &str, m: &str) {
        self.with(|r| r.working(c, m))
    }
    pub fn phase_started(&self) {
        self.with(|r| r.phase_started())
    }
    pub fn phase_finished(&self, status: &str, m: &str) {
        self.with(|r| r.phase_finished(status, m))
    }
    pub fn step(&self, c: &str, status: &str, m: &str) {
        self.with(|r| r.step(c, status, m))
    }
    pub fn capability(&self, c: &str, cap: &str, m: &str) {
        self.with(|r| r.capability(c, cap, m))
    }
    pub fn start_rate(&self) {
        self.with(|r| r.start_rate())
    }
    pub fn transfer(&self, what: &str, got: u64, size: u64) {
        self.with(|r| r.transfer(what, got, size))
    }
    pub fn finished(&self, status: &str, code: i32, m: &str) {
        self.with(|r| r.finished(status, code, m, None))
    }
    pub fn set_phase_bytes(&self, base: u64, total: u64) {
        self.with(|r| r.set_phase_bytes(base, total))
    }
    /// Set the overall byte counters.
    pub fn set_bytes(&self, done: u64, total: u64) {
        self.with(|r| {
            r.bytes_done = done;
            r.bytes_total = total;
        })
    }
    /// Bytes that turned out to be needed beyond the plan (build sources).
    pub fn add_total(&self, n: u64) {
        self.with(|r| r.bytes_total = r.bytes_total.saturating_add(n))
    }
    pub fn bytes_done(&self) -> u64 {
        self.with(|r| r.bytes_done)
    }
    /// Count bytes that arrived (or, negative, were given up).
    pub fn add_bytes(&self, delta: i64) {
        self.with(|r| r.bytes_done = r.bytes_done.saturating_add_signed(delta))
    }
}
