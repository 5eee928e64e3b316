//! This node's connector calls, as Prometheus series: calls by outcome,
//! their duration and fuel (histograms), limit trips by kind, events and
//! duplicates stored, and how late polls start.
//!
//! Labelled per plugin and, unless `[metrics] per_trigger = false`, per
//! trigger: one series set per trigger that was called, so a very large
//! install turns that off and keeps a series set per plugin.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Seconds.
const DURATION_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Fuel units.
const FUEL_BUCKETS: [f64; 7] = [1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
/// Seconds.
const LATENESS_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0];

/// `[metrics]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Label call series with the trigger as well as the plugin (default true).
    pub per_trigger: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings { per_trigger: true }
    }
}

/// A cumulative histogram over fixed bounds.
#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram { bounds, counts: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, value: f64) {
        if let Some(bucket) = self.bounds.iter().position(|bound| value <= *bound) {
            self.counts[bucket] += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, text: &mut String, name: &str, labels: &str) {
        let buckets = self.bounds.iter().zip(self.counts.iter().copied());
        super::write_histogram(text, name, labels, buckets, self.sum, self.count);
    }
}

/// Whose calls a series counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    plugin: String,
    /// None when per-trigger labels are off.
    trigger: Option<String>,
}

impl Key {
    fn labels(&self) -> String {
        match &self.trigger {
            Some(trigger) => format!("plugin=\"{}\",trigger=\"{trigger}\"", self.plugin),
            None => format!("plugin=\"{}\"", self.plugin),
        }
    }
}

#[derive(Debug, Clone)]
struct Series {
    /// By export (`deliver`, `poll`) and outcome.
    calls: BTreeMap<(&'static str, String), u64>,
    limit_trips: BTreeMap<&'static str, u64>,
    duration: Histogram,
    fuel: Histogram,
    events: u64,
    duplicates: u64,
}

impl Series {
    fn new() -> Self {
        Series {
            calls: BTreeMap::new(),
            limit_trips: BTreeMap::new(),
            duration: Histogram::new(&DURATION_BUCKETS),
            fuel: Histogram::new(&FUEL_BUCKETS),
            events: 0,
            duplicates: 0,
        }
    }
}

/// One finished call.
#[derive(Debug)]
pub struct CallSample<'a> {
    /// The plugin called.
    pub plugin: &'a str,
    /// The trigger (or source) it was called for.
    pub trigger: &'a str,
    /// `deliver` or `poll`.
    pub export: &'static str,
    /// `accepted`, `rejected`, `responded`, `polled`, or an error's code.
    pub outcome: &'a str,
    /// From the call's start to its end (not its commit).
    pub duration: Duration,
    /// Fuel consumed.
    pub fuel: u64,
    /// The limit that stopped it, if one did.
    pub limit_trip: Option<&'static str>,
}

/// This node's call series.
#[derive(Debug, Default)]
pub struct CallMetrics {
    settings: MetricsSettings,
    series: Mutex<BTreeMap<Key, Series>>,
    /// Per plugin: how late polls started after they were due.
    lateness: Mutex<BTreeMap<String, Histogram>>,
}

impl CallMetrics {
    /// Empty series, labelled as `settings` says.
    pub fn new(settings: MetricsSettings) -> Self {
        CallMetrics { settings, ..CallMetrics::default() }
    }

    /// Whether series carry the trigger's label.
    pub fn per_trigger(&self) -> bool {
        self.settings.per_trigger
    }

    fn key(&self, plugin: &str, trigger: &str) -> Key {
        Key { plugin: plugin.to_owned(), trigger: self.settings.per_trigger.then(|| trigger.to_owned()) }
    }

    fn with_series(&self, plugin: &str, trigger: &str, update: impl FnOnce(&mut Series)) {
        let mut all = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        update(all.entry(self.key(plugin, trigger)).or_insert_with(Series::new));
    }

    /// Counts a finished call.
    pub fn call(&self, sample: &CallSample<'_>) {
        self.with_series(sample.plugin, sample.trigger, |series| {
            *series.calls.entry((sample.export, sample.outcome.to_owned())).or_default() += 1;
            if let Some(kind) = sample.limit_trip {
                *series.limit_trips.entry(kind).or_default() += 1;
            }
            series.duration.observe(sample.duration.as_secs_f64());
            // Fuel counts stay far below 2^53: exact as f64.
            #[allow(clippy::cast_precision_loss)]
            series.fuel.observe(sample.fuel as f64);
        });
    }

    /// Counts what a call's commit stored.
    pub fn stored(&self, plugin: &str, trigger: &str, events: usize, duplicates: usize) {
        self.with_series(plugin, trigger, |series| {
            series.events += events as u64;
            series.duplicates += duplicates as u64;
        });
    }

    /// Counts a poll that started `by` after it was due.
    pub fn poll_late(&self, plugin: &str, by: Duration) {
        let mut lateness = self.lateness.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        lateness.entry(plugin.to_owned()).or_insert_with(|| Histogram::new(&LATENESS_BUCKETS)).observe(by.as_secs_f64());
    }

    /// The series in Prometheus text format.
    pub fn render(&self, text: &mut String) {
        let all = self.series.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let header = |text: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(text, "# HELP triggerhost_{name} {help}\n# TYPE triggerhost_{name} {kind}");
        };
        header(text, "calls_total", "counter", "Connector calls on this node, by export and outcome");
        for (key, series) in &all {
            for ((export, outcome), count) in &series.calls {
                let _ = writeln!(text, "triggerhost_calls_total{{{},export=\"{export}\",outcome=\"{outcome}\"}} {count}", key.labels());
            }
        }
        header(text, "limit_trips_total", "counter", "Calls a sandbox limit stopped, by limit");
        for (key, series) in &all {
            for (kind, count) in &series.limit_trips {
                let _ = writeln!(text, "triggerhost_limit_trips_total{{{},kind=\"{kind}\"}} {count}", key.labels());
            }
        }
        header(text, "call_duration_seconds", "histogram", "How long connector calls took");
        for (key, series) in &all {
            series.duration.render(text, "triggerhost_call_duration_seconds", &key.labels());
        }
        header(text, "call_fuel", "histogram", "Fuel connector calls consumed");
        for (key, series) in &all {
            series.fuel.render(text, "triggerhost_call_fuel", &key.labels());
        }
        for (name, help, value) in [
            ("events_stored_total", "Events stored by this node's calls", (|s: &Series| s.events) as fn(&Series) -> u64),
            ("events_duplicate_total", "Events this node's calls produced that were redeliveries", |s| s.duplicates),
        ] {
            header(text, name, "counter", help);
            for (key, series) in &all {
                let _ = writeln!(text, "triggerhost_{name}{{{}}} {}", key.labels(), value(series));
            }
        }
        let lateness = self.lateness.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        header(text, "poll_lateness_seconds", "histogram", "How late polls started after they were due");
        for (plugin, histogram) in &lateness {
            histogram.render(text, "triggerhost_poll_lateness_seconds", &format!("plugin=\"{plugin}\""));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(trigger: &'a str, outcome: &'a str, limit_trip: Option<&'static str>) -> CallSample<'a> {
        CallSample { plugin: "p", trigger, export: "deliver", outcome, duration: Duration::from_millis(3), fuel: 50_000, limit_trip }
    }

    #[test]
    fn histograms_are_cumulative_and_per_trigger_labels_can_be_turned_off() {
        let metrics = CallMetrics::new(MetricsSettings { per_trigger: true });
        metrics.call(&sample("t1", "accepted", None));
        metrics.call(&sample("t2", "out-of-fuel", Some("out-of-fuel")));
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(text.contains("triggerhost_calls_total{plugin=\"p\",trigger=\"t1\",export=\"deliver\",outcome=\"accepted\"} 1\n"), "{text}");
        assert!(text.contains("triggerhost_limit_trips_total{plugin=\"p\",trigger=\"t2\",kind=\"out-of-fuel\"} 1\n"), "{text}");
        assert!(text.contains("triggerhost_call_duration_seconds_bucket{plugin=\"p\",trigger=\"t1\",le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("triggerhost_call_duration_seconds_bucket{plugin=\"p\",trigger=\"t1\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("triggerhost_call_duration_seconds_bucket{plugin=\"p\",trigger=\"t1\",le=\"+Inf\"} 1\n"), "{text}");

        let per_plugin = CallMetrics::new(MetricsSettings { per_trigger: false });
        per_plugin.call(&sample("t1", "accepted", None));
        per_plugin.call(&sample("t2", "accepted", None));
        let mut text = String::new();
        per_plugin.render(&mut text);
        assert!(!text.contains("trigger="), "{text}");
        assert!(text.contains("triggerhost_calls_total{plugin=\"p\",export=\"deliver\",outcome=\"accepted\"} 2\n"), "{text}");
    }
}
