//! Latency and status bookkeeping for the custom driver: exact percentiles
//! from every sample (a few million u32s at most), errors by status.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Samples and status counts of every endpoint.
#[derive(Default)]
pub struct Recorder {
    inner: Mutex<BTreeMap<&'static str, Endpoint>>,
}

#[derive(Default)]
struct Endpoint {
    micros: Vec<u32>,
    statuses: BTreeMap<u16, u64>,
}

/// One endpoint's figures.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Endpoint name.
    pub name: &'static str,
    /// Requests.
    pub count: u64,
    /// Percentiles in milliseconds.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Slowest, ms.
    pub max: f64,
    /// Status code (0 = transport error) → count.
    pub statuses: BTreeMap<u16, u64>,
}

impl Recorder {
    /// Records one request.
    pub fn record(&self, name: &'static str, status: u16, took: Duration) {
        let micros = took.as_micros().min(u128::from(u32::MAX)) as u32;
        let mut inner = self.inner.lock().expect("recorder lock");
        let e = inner.entry(name).or_default();
        e.micros.push(micros);
        *e.statuses.entry(status).or_default() += 1;
    }

    /// Requests recorded so far, all endpoints.
    pub fn total(&self) -> u64 {
        self.inner.lock().expect("recorder lock").values().map(|e| e.micros.len() as u64).sum()
    }

    /// Requests of one endpoint with one status so far.
    pub fn count(&self, name: &str, status: u16) -> u64 {
        let inner = self.inner.lock().expect("recorder lock");
        inner.get(name).and_then(|e| e.statuses.get(&status).copied()).unwrap_or(0)
    }

    /// Per-endpoint summaries.
    pub fn summaries(&self) -> Vec<Summary> {
        let mut inner = self.inner.lock().expect("recorder lock");
        inner
            .iter_mut()
            .map(|(name, e)| {
                e.micros.sort_unstable();
                let pct = |p: f64| -> f64 {
                    if e.micros.is_empty() {
                        return 0.0;
                    }
                    let i = ((p / 100.0) * (e.micros.len() as f64 - 1.0)).round() as usize;
                    f64::from(e.micros[i]) / 1000.0
                };
                Summary {
                    name,
                    count: e.micros.len() as u64,
                    p50: pct(50.0),
                    p95: pct(95.0),
                    p99: pct(99.0),
                    max: e.micros.last().map(|m| f64::from(*m) / 1000.0).unwrap_or(0.0),
                    statuses: e.statuses.clone(),
                }
            })
            .collect()
    }

    /// Prints the per-endpoint table for a run of `elapsed`.
    pub fn print(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!(
            "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  statuses (0 = transport error)",
            "endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        let mut all = 0;
        for s in self.summaries() {
            all += s.count;
            let statuses: Vec<String> = s.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            println!(
                "{:<14} {:>9} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.1}  {}",
                s.name,
                s.count,
                s.count as f64 / secs,
                s.p50,
                s.p95,
                s.p99,
                s.max,
                statuses.join(" ")
            );
        }
        println!("{:<14} {:>9} {:>9.1}", "all", all, all as f64 / secs);
    }
}
