//! The process's own series, read from `/proc/self` (Linux; elsewhere
//! only the start time): memory, CPU, open files, threads.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// When the process began serving; forced at start.
pub static STARTED: LazyLock<SystemTime> = LazyLock::new(SystemTime::now);

/// A `Key:   value kB` line of `/proc/self/status`, in its unit.
fn status_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Appends the process series.
pub fn render(text: &mut String) {
    let mut gauge = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(text, "# HELP process_{name} {help}\n# TYPE process_{name} {kind}\nprocess_{name} {value}");
    };
    let started = STARTED.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
    gauge("start_time_seconds", "gauge", "When the process started, Unix seconds", started);
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(kib) = status_field(&status, "VmRSS:") {
            gauge("resident_memory_bytes", "gauge", "Resident memory", (kib * 1024) as f64);
        }
        if let Some(kib) = status_field(&status, "VmSize:") {
            gauge("virtual_memory_bytes", "gauge", "Virtual memory (wasm reservations included)", (kib * 1024) as f64);
        }
        if let Some(threads) = status_field(&status, "Threads:") {
            gauge("threads", "gauge", "Threads", threads as f64);
        }
    }
    if let Some(seconds) = cpu_seconds() {
        gauge("cpu_seconds_total", "counter", "CPU time used, user and system, all threads", seconds);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge("open_fds", "gauge", "Open file descriptors", fds.count() as f64);
    }
}

/// User and system time of all threads, from `/proc/self/stat` (fields 14
/// and 15, in clock ticks; USER_HZ is 100 on every Linux platform we run on).
fn cpu_seconds() -> Option<f64> {
    const TICKS_PER_SECOND: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields are counted
    // after its closing one, from field 3 on.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3).and_then(|v| v.parse::<u64>().ok());
    Some((ticks(14)? + ticks(15)?) as f64 / TICKS_PER_SECOND)
}
