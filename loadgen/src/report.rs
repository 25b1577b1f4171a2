//! A run's results as an ordered list of named metrics: printed as a table (one column per run
//! and a median column) and as one JSON line per run and for the summary.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::stats::median;

#[derive(Clone, Debug)]
pub struct Metric {
    /// The JSON key.
    pub key: &'static str,
    /// What the table shows.
    pub label: &'static str,
    pub unit: &'static str,
    /// `None` when the run could not measure it (e.g. no server pid).
    pub value: Option<f64>,
}

/// One run's metrics, in the order they are shown.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub items: Vec<Metric>,
    /// Things a reader must know about the run (failures, timeouts), shown under the table.
    pub notes: Vec<String>,
}

impl Metrics {
    pub fn push(
        &mut self,
        key: &'static str,
        label: &'static str,
        unit: &'static str,
        value: impl Into<Option<f64>>,
    ) {
        self.items.push(Metric {
            key,
            label,
            unit,
            value: value.into(),
        });
    }

    /// Pushes percentiles of sorted microsecond values as milliseconds, one row per
    /// `(key, label, p)`; `p` 100 is the maximum.
    pub fn push_ms_percentiles(
        &mut self,
        sorted_us: &[u64],
        rows: &[(&'static str, &'static str, f64)],
    ) {
        for &(key, label, p) in rows {
            let us = if p >= 100.0 {
                sorted_us.last().copied()
            } else {
                crate::stats::percentile(sorted_us, p)
            };
            self.push(key, label, "ms", us.map(|us| us as f64 / 1000.0));
        }
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.items
            .iter()
            .find(|m| m.key == key)
            .and_then(|m| m.value)
    }

    pub fn to_json(&self, kind: &str, run: Value, config: &Value) -> Value {
        let mut map = Map::new();
        map.insert("bench".into(), Value::from(kind));
        map.insert("run".into(), run);
        map.insert("config".into(), config.clone());
        for m in &self.items {
            map.insert(m.key.into(), m.value.map_or(Value::Null, json_number));
        }
        if !self.notes.is_empty() {
            map.insert("notes".into(), Value::from(self.notes.clone()));
        }
        Value::Object(map)
    }
}

fn json_number(x: f64) -> Value {
    // Three decimals are more than any of these measurements resolve.
    let rounded = (x * 1000.0).round() / 1000.0;
    if rounded.fract() == 0.0 && rounded.abs() < 9.0e15 {
        Value::from(rounded as i64)
    } else {
        Value::from(rounded)
    }
}

/// The per-key median over runs (keys in the first run's order).
pub fn medians(runs: &[Metrics]) -> Metrics {
    let mut out = Metrics::default();
    let Some(first) = runs.first() else {
        return out;
    };
    for m in &first.items {
        let values: Vec<f64> = runs.iter().filter_map(|r| r.get(m.key)).collect();
        out.push(m.key, m.label, m.unit, median(&values));
    }
    out
}

fn format_value(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(x) if x.abs() >= 1000.0 || x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// A table with a column per run and, for several runs, a median column.
pub fn table(runs: &[Metrics]) -> String {
    let columns: Vec<String> = (1..=runs.len()).map(|i| format!("run {i}")).collect();
    columns_table(&columns, runs, runs.len() > 1)
}

/// A table with one named column per set of metrics (runs, or the medians of a sweep's
/// steps), and a median column when asked.
pub fn columns_table(columns: &[String], runs: &[Metrics], with_median: bool) -> String {
    let Some(first) = runs.first() else {
        return String::new();
    };
    let summary = with_median.then(|| medians(runs));
    let mut header = vec!["metric".to_string()];
    header.extend(columns.iter().cloned());
    if summary.is_some() {
        header.push("median".into());
    }
    let mut rows = vec![header];
    for m in &first.items {
        let label = if m.unit.is_empty() {
            m.label.to_string()
        } else {
            format!("{} ({})", m.label, m.unit)
        };
        let mut row = vec![label];
        row.extend(runs.iter().map(|r| format_value(r.get(m.key))));
        if let Some(s) = &summary {
            row.push(format_value(s.get(m.key)));
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                out.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    for (column, r) in columns.iter().zip(runs) {
        for note in &r.notes {
            out.push_str(&format!("{column}: {note}\n"));
        }
    }
    out
}

/// Who used the machine during the window, in cores: the server, this process, and every
/// other process (all CPU busy time minus the first two); and the load average at its start.
/// A side near a whole core per thread it can use, or a total near the core count, is what
/// saturated.
pub fn push_machine(
    metrics: &mut Metrics,
    load_average: Option<f64>,
    machine_cpu: Option<Duration>,
    server_cpu: Option<Duration>,
    self_cpu: Duration,
    window: Duration,
) {
    let secs = window.as_secs_f64();
    metrics.push(
        "server_cores",
        "server CPU / window",
        "cores",
        server_cpu.map(|d| d.as_secs_f64() / secs),
    );
    metrics.push(
        "loadgen_cores",
        "loadgen CPU / window",
        "cores",
        self_cpu.as_secs_f64() / secs,
    );
    metrics.push(
        "other_cpu_cores",
        "other processes' CPU",
        "cores",
        machine_cpu.zip(server_cpu).map(|(m, s)| {
            m.saturating_sub(s).saturating_sub(self_cpu).as_secs_f64() / window.as_secs_f64()
        }),
    );
    metrics.push("load_average", "load average at start", "", load_average);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(latency: f64, rss: Option<f64>) -> Metrics {
        let mut m = Metrics::default();
        m.push("p50_ms", "latency p50", "ms", latency);
        m.push("rss_kib", "rss", "KiB", rss);
        m
    }

    #[test]
    fn medians_are_taken_per_metric_over_the_runs_that_measured_it() {
        let s = medians(&[run(3.0, Some(10.0)), run(1.0, None), run(2.0, Some(20.0))]);
        assert_eq!(s.get("p50_ms"), Some(2.0));
        assert_eq!(s.get("rss_kib"), Some(15.0));
    }

    #[test]
    fn the_table_has_a_median_column_only_for_several_runs() {
        let one = table(&[run(1.5, None)]);
        assert!(one.starts_with("metric"), "{one}");
        assert!(!one.contains("median"), "{one}");
        let row = one
            .lines()
            .find(|l| l.starts_with("latency p50 (ms)"))
            .unwrap();
        assert!(row.ends_with(" 1.50"), "{one}");
        assert!(one
            .lines()
            .any(|l| l.starts_with("rss (KiB)") && l.ends_with(" -")));
        let three = table(&[run(1.0, None), run(2.0, None), run(3.0, None)]);
        assert!(three.lines().next().unwrap().ends_with("median"), "{three}");
    }

    #[test]
    fn json_lines_carry_every_metric_and_null_for_unmeasured_ones() {
        let j = run(1.23456, None).to_json("ws", Value::from(1), &Value::Null);
        assert_eq!(j["p50_ms"], Value::from(1.235));
        assert_eq!(j["rss_kib"], Value::Null);
        assert_eq!(j["bench"], "ws");
    }
}
