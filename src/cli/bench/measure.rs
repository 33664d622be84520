//! Timing with `std::time::Instant`: medians and 90th percentiles over repetitions, a time
//! budget per cell, and the machine and commit the numbers were taken on.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long to spend per measured cell.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop repeating once this much time has been spent (after `min_reps`).
    pub time: Duration,
    /// Always run at least this many repetitions (if `max_reps` allows).
    pub min_reps: usize,
    /// Never run more than this many repetitions.
    pub max_reps: usize,
}

/// Median and 90th percentile of one cell, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// Median.
    pub median_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// Repetitions timed.
    pub reps: usize,
}

impl Stats {
    /// Statistics of a set of samples in microseconds (one sample gives median = p90).
    pub fn of(mut samples_us: Vec<f64>) -> Stats {
        samples_us.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((samples_us.len() as f64 - 1.0) * q).round() as usize;
            samples_us.get(i).copied().unwrap_or(f64::NAN)
        };
        Stats { median_us: at(0.5), p90_us: at(0.9), reps: samples_us.len() }
    }

    /// One measurement of a one-shot operation.
    pub fn once(d: Duration) -> Stats {
        Stats::of(vec![d.as_secs_f64() * 1e6])
    }
}

/// Times `f(i)` for `i = 0, 1, 2, …` (one untimed warm-up call first): each call on its own,
/// until the budget is spent.
pub fn time_each<T>(budget: Budget, f: &mut dyn FnMut(usize) -> T) -> Stats {
    let started = Instant::now();
    black_box(f(0));
    let warm = started.elapsed();
    let mut samples = Vec::new();
    // A call slower than the whole budget is timed once more, not repeated.
    let min_reps = if warm > budget.time { 1 } else { budget.min_reps };
    let deadline = Instant::now() + budget.time;
    for i in 1..=budget.max_reps.max(1) {
        let t = Instant::now();
        black_box(f(i));
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        if samples.len() >= min_reps && Instant::now() >= deadline {
            break;
        }
    }
    Stats::of(samples)
}

/// A duration in microseconds, printed with a unit that keeps it short.
pub fn fmt_us(us: f64) -> String {
    if !us.is_finite() {
        "?".into()
    } else if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// A ratio printed with about two significant figures (`2.1×`, `15×`, `0.46×`).
pub fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "?".into()
    } else if r >= 10.0 {
        format!("{r:.0}×")
    } else if r >= 1.0 {
        format!("{r:.1}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        format!("{r:.3}×")
    }
}

/// CPU model, logical cores and memory of this machine, from `/proc` when available.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim()))
        .unwrap_or("unknown")
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: Option<u64> = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB").trim().parse().ok());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    json!({
        "cpu": cpu,
        "cores": cores,
        "memory_gib": mem_kib.map(|k| (k as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "peers_feature": cfg!(feature = "peers"),
    })
}

/// The short git commit of the working directory (`git rev-parse --short HEAD`), else the one
/// recorded at build time in `GEOCRM_GIT_COMMIT`, else `"unknown"`.
pub fn commit() -> String {
    let from_git = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    from_git
        .or_else(|| option_env!("GEOCRM_GIT_COMMIT").map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90_of_samples() {
        let s = Stats::of((1..=10).rev().map(f64::from).collect());
        assert_eq!((s.median_us, s.p90_us, s.reps), (6.0, 9.0, 10));
        assert_eq!(Stats::of(vec![3.0]).median_us, 3.0);
    }

    #[test]
    fn units_and_ratios_print_short() {
        assert_eq!(fmt_us(6.123), "6.12 µs");
        assert_eq!(fmt_us(2_500.0), "2.50 ms");
        assert_eq!(fmt_us(3_000_000.0), "3.00 s");
        assert_eq!(fmt_ratio(2.14), "2.1×");
        assert_eq!(fmt_ratio(15.4), "15×");
        assert_eq!(fmt_ratio(0.456), "0.46×");
        assert_eq!(fmt_ratio(0.0456), "0.046×");
    }
}
