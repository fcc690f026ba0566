//! Adaptive admission: the waiting room's inflow follows the health of the
//! hold path instead of a fixed `admit_per_second`.
//!
//! A fixed rate is a guess made before the sale: too low and buyers wait
//! while Postgres idles, too high and holds queue for the pool until they
//! time out. With `admission.mode = "adaptive"` the configured rate is only
//! the start. Each instance watches its own hold path over one-second
//! windows ([`HoldHealth`]) and gives a verdict per sale ([`Verdict`]):
//!
//! - **unhealthy** when the window's hold p99 is over the sale's
//!   `hold_p99_target_ms`, when any hold answered 503 (pool timeout, outage),
//!   or when the Postgres pool had no idle connection in most samples (holds
//!   are queueing for connections);
//! - **healthy** when none of that holds and visitors are waiting (raising
//!   the rate of an empty line proves nothing);
//! - otherwise no verdict.
//!
//! `lua/adapt.lua` turns verdicts into an AIMD step in Redis, rationed to one
//! step a second whatever the number of instances: slow start (×1.25 a
//! second) until the first back-off, then +10 % of the configured rate a
//! second, ×0.7 on every unhealthy second; never above `admit_ceiling` (or
//! `max_active` a second). The rate in force is shown in the sale's queue
//! figures and the `floodgate_admission_rate` gauge.

use std::sync::Mutex;
use std::time::Duration;

/// A verdict on the hold path for one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy, and visitors are waiting: admit more.
    Raise,
    /// Nothing to go on.
    Keep,
    /// Holds are slow or failing: admit fewer.
    Lower,
}

impl Verdict {
    /// The argument `adapt.lua` takes.
    pub fn as_arg(self) -> i64 {
        match self {
            Verdict::Raise => 1,
            Verdict::Keep => 0,
            Verdict::Lower => -1,
        }
    }
}

/// Upper bounds of the latency buckets, in milliseconds (the last is open).
const BUCKETS_MS: [u64; 14] = [1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 200, 500, 1000, 5000];

/// One window of hold outcomes on this instance.
#[derive(Debug, Default, Clone)]
pub struct Window {
    /// Holds by latency bucket (`BUCKETS_MS`, plus one open bucket).
    pub buckets: [u64; BUCKETS_MS.len() + 1],
    /// Holds answered 503.
    pub unavailable: u64,
    /// Pool samples, and how many found no idle connection.
    pub pool_samples: u64,
    /// Samples with the pool exhausted.
    pub pool_exhausted: u64,
}

impl Window {
    /// Holds in the window.
    pub fn holds(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Upper bound of the 99th percentile hold latency, if any hold ran.
    pub fn p99(&self) -> Option<Duration> {
        let total = self.holds();
        if total == 0 {
            return None;
        }
        let rank = total - total / 100;
        let mut seen = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let ms = BUCKETS_MS.get(i).copied().unwrap_or(10_000);
                return Some(Duration::from_millis(ms));
            }
        }
        None
    }

    /// The verdict for a sale with this p99 target and `waiting` visitors.
    pub fn verdict(&self, target: Duration, waiting: u64) -> Verdict {
        let slow = self.p99().is_some_and(|p99| p99 > target);
        let exhausted = self.pool_samples >= 5 && self.pool_exhausted * 2 > self.pool_samples;
        if slow || self.unavailable > 0 || exhausted {
            Verdict::Lower
        } else if waiting > 0 {
            Verdict::Raise
        } else {
            Verdict::Keep
        }
    }
}

/// Hold outcomes of this instance, collected per window.
#[derive(Default)]
pub struct HoldHealth {
    current: Mutex<Window>,
}

impl HoldHealth {
    /// Records one hold attempt.
    pub fn record(&self, latency: Duration, unavailable: bool) {
        let ms = latency.as_millis() as u64;
        let bucket = BUCKETS_MS.iter().position(|&upper| ms < upper).unwrap_or(BUCKETS_MS.len());
        if let Ok(mut window) = self.current.lock() {
            window.buckets[bucket] += 1;
            if unavailable {
                window.unavailable += 1;
            }
        }
    }

    /// Records whether the Postgres pool had an idle connection.
    pub fn sample_pool(&self, exhausted: bool) {
        if let Ok(mut window) = self.current.lock() {
            window.pool_samples += 1;
            if exhausted {
                window.pool_exhausted += 1;
            }
        }
    }

    /// Ends the current window and returns it.
    pub fn take(&self) -> Window {
        self.current.lock().map(|mut w| std::mem::take(&mut *w)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_failing_or_starved_holds_lower_the_rate() {
        let health = HoldHealth::default();
        for _ in 0..99 {
            health.record(Duration::from_millis(3), false);
        }
        let window = health.take();
        assert_eq!(window.p99(), Some(Duration::from_millis(5)));
        assert_eq!(window.verdict(Duration::from_millis(50), 10), Verdict::Raise);
        assert_eq!(window.verdict(Duration::from_millis(50), 0), Verdict::Keep, "no line, nothing to prove");
        assert_eq!(window.verdict(Duration::from_millis(2), 10), Verdict::Lower);
        assert_eq!(health.take().holds(), 0, "a window is taken once");

        health.record(Duration::from_millis(3), true);
        assert_eq!(health.take().verdict(Duration::from_millis(50), 10), Verdict::Lower, "a 503 lowers");

        for exhausted in [true, true, true, false, true] {
            health.sample_pool(exhausted);
        }
        assert_eq!(health.take().verdict(Duration::from_millis(50), 10), Verdict::Lower, "pool starved");
    }

    #[test]
    fn one_slow_hold_in_a_hundred_is_within_p99() {
        let health = HoldHealth::default();
        for _ in 0..199 {
            health.record(Duration::from_millis(4), false);
        }
        health.record(Duration::from_millis(900), false);
        assert_eq!(health.take().p99(), Some(Duration::from_millis(5)));
    }
}
