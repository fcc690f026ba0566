//! Idle sales tick slowly.
//!
//! Every live sale costs every instance an `admit.lua` call and a read of
//! its pending admissions per admission tick, ten a second at the default
//! period, whether or not anybody is in its line: a site with a hundred
//! sales on offer and ten instances made Redis run some 20,000 calls a
//! second for lines nobody stood in. A sale is *idle* when its last tick
//! found nobody waiting (the serving number at the last join number) and no
//! admitted visitor left (no active slot) and admitted nobody; this instance
//! then ticks it once per `jobs.idle_tick_ms` (a second by default) instead
//! of every tick, until it is *woken*:
//!
//! - a join of the sale on this instance (a new number to admit), or
//! - a poll here that ran `status.lua` (a visitor at or past the serving
//!   number: a sleeper whose admission is owed again is admitted by the
//!   next tick).
//!
//! An idle sale's queue gauges are refreshed at its idle ticks (the metric
//! series of a sale retire after 30 s untouched, hence the period's bound,
//! 15 s, in the configuration's checks).
//!
//! The sale clock (`jobs::clock_tick`) copies an idle sale's row to Redis
//! (`sync_sale.lua`, the saved counters, the start check) only when the row
//! changed since this instance last copied it, and otherwise once per
//! [`SYNC_EVERY_IDLE_TICKS`] idle periods (5 s by default) instead of at
//! every clock tick (500 ms). That copy is also how Redis gets a sale back
//! after losing its data: a sale Redis does not know is never idle
//! (`admit.lua` says so), so the clock copies it back after its next idle
//! tick, and a join that finds its sale missing copies it at once anyway.
//!
//! A join on another instance wakes that instance, whose ticks admit from
//! the budget every instance shares in Redis, so the first admission is as
//! quick as before; this instance sees the line at its next idle tick. The
//! admission rate is not touched: the budget and its clock live in Redis
//! (`admit.lua`), and a skipped tick banks nothing that another would
//! double.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AdmitResult;

/// An idle sale's unchanged row is copied to Redis once per this many idle
/// periods.
pub const SYNC_EVERY_IDLE_TICKS: u32 = 5;

/// Which live sales this instance's admission ticker and sale clock may
/// skip.
#[derive(Default)]
pub struct IdleSales {
    /// Sales woken since their last tick.
    woken: Mutex<HashSet<String>>,
    /// Idle sales and when they were last ticked.
    idle: Mutex<HashMap<String, Instant>>,
    /// The row version (`updated_at`) the clock last copied, and when.
    synced: Mutex<HashMap<String, (i64, Instant)>>,
}

impl IdleSales {
    /// Something happened to `sale` on this instance that a tick may have to
    /// act on: tick it at the next period.
    pub fn wake(&self, sale: &str) {
        if let Ok(mut woken) = self.woken.lock() {
            if !woken.contains(sale) {
                woken.insert(sale.to_owned());
            }
        }
    }

    /// Whether `sale` is due for an admission tick at `now`: unless it is
    /// idle, every period; idle, once per `idle_period` or when woken.
    pub fn due(&self, sale: &str, now: Instant, idle_period: Duration) -> bool {
        let woken = self.woken.lock().map(|mut w| w.remove(sale)).unwrap_or(true);
        if woken {
            return true;
        }
        match self.idle.lock() {
            Ok(idle) => idle.get(sale).is_none_or(|last| now.saturating_duration_since(*last) >= idle_period),
            Err(_) => true,
        }
    }

    /// Records what a tick of `sale` at `now` found; true when it found
    /// the sale idle.
    pub fn ticked(&self, sale: &str, result: &AdmitResult, now: Instant) -> bool {
        let idle = nothing_to_admit(result);
        if let Ok(mut sales) = self.idle.lock() {
            if idle {
                sales.insert(sale.to_owned(), now);
            } else {
                sales.remove(sale);
            }
        }
        idle
    }

    /// Whether the sale clock is to copy `sale`'s row at `version` to Redis
    /// at `now`: at every clock tick unless the sale is idle and not woken;
    /// then when the row changed since the last copy, or once per `period`.
    pub fn sync_due(&self, sale: &str, version: i64, now: Instant, period: Duration) -> bool {
        let idle = self.idle.lock().map(|i| i.contains_key(sale)).unwrap_or(false)
            && !self.woken.lock().map(|w| w.contains(sale)).unwrap_or(true);
        if !idle {
            return true;
        }
        match self.synced.lock() {
            Ok(synced) => synced
                .get(sale)
                .is_none_or(|(copied, at)| *copied != version || now.saturating_duration_since(*at) >= period),
            Err(_) => true,
        }
    }

    /// Records that the clock copied `sale`'s row at `version` at `now`.
    pub fn synced(&self, sale: &str, version: i64, now: Instant) {
        if let Ok(mut synced) = self.synced.lock() {
            synced.insert(sale.to_owned(), (version, now));
        }
    }

    /// Forgets the sales that are no longer live.
    pub fn retain(&self, live: &[String]) {
        let live: HashSet<&str> = live.iter().map(String::as_str).collect();
        if let Ok(mut idle) = self.idle.lock() {
            idle.retain(|sale, _| live.contains(sale.as_str()));
        }
        if let Ok(mut synced) = self.synced.lock() {
            synced.retain(|sale, _| live.contains(sale.as_str()));
        }
        if let Ok(mut woken) = self.woken.lock() {
            woken.retain(|sale| live.contains(sale.as_str()));
        }
    }
}

/// Nobody waiting, nobody admitted and not finished, nobody admitted now,
/// in a line Redis knows.
fn nothing_to_admit(result: &AdmitResult) -> bool {
    result.known && result.admitted == 0 && result.active == 0 && result.joined <= result.serving
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(admitted: u64, serving: u64, joined: u64, active: u64) -> AdmitResult {
        AdmitResult { admitted, abandoned: 0, serving, joined, active, ready: true, known: true }
    }

    const IDLE: Duration = Duration::from_secs(1);

    #[test]
    fn a_sale_is_due_every_tick_until_one_finds_nothing_to_admit() {
        let sales = IdleSales::default();
        let t0 = Instant::now();
        assert!(sales.due("s", t0, IDLE), "never ticked");
        // Somebody waiting, somebody admitted and active, somebody admitted now.
        for busy in [tick(0, 5, 9, 0), tick(0, 9, 9, 1), tick(1, 9, 9, 0)] {
            sales.ticked("s", &busy, t0);
            assert!(sales.due("s", t0 + Duration::from_millis(1), IDLE), "{busy:?}");
        }
        sales.ticked("s", &tick(0, 9, 9, 0), t0);
        assert!(!sales.due("s", t0 + Duration::from_millis(100), IDLE), "idle: skipped");
        assert!(!sales.due("s", t0 + Duration::from_millis(999), IDLE));
        assert!(sales.due("s", t0 + IDLE, IDLE), "idle: once per idle period");
        assert!(sales.due("other", t0, IDLE), "per sale");
    }

    #[test]
    fn a_woken_idle_sale_is_due_at_once_and_only_once() {
        let sales = IdleSales::default();
        let t0 = Instant::now();
        sales.ticked("s", &tick(0, 3, 3, 0), t0);
        sales.wake("s");
        sales.wake("s");
        let soon = t0 + Duration::from_millis(10);
        assert!(sales.due("s", soon, IDLE), "woken");
        assert!(!sales.due("s", soon, IDLE), "the wake is used up; still idle until a tick says otherwise");
        sales.ticked("s", &tick(0, 3, 4, 0), soon);
        assert!(sales.due("s", soon, IDLE), "a waiting visitor makes it due every tick");
        assert!(sales.due("s", soon, IDLE));
    }

    #[test]
    fn an_idle_sale_is_copied_when_its_row_changes_or_once_per_period() {
        let sales = IdleSales::default();
        let t0 = Instant::now();
        let every = IDLE * SYNC_EVERY_IDLE_TICKS;
        assert!(sales.sync_due("s", 1, t0, every), "never ticked: copied");
        sales.synced("s", 1, t0);
        assert!(sales.sync_due("s", 1, t0, every), "not idle: copied at every clock tick");
        sales.ticked("s", &tick(0, 3, 3, 0), t0);
        let soon = t0 + Duration::from_millis(500);
        assert!(!sales.sync_due("s", 1, soon, every), "idle, same row: skipped");
        assert!(sales.sync_due("s", 2, soon, every), "the row changed");
        assert!(sales.sync_due("s", 1, t0 + every, every), "once per period");
        sales.wake("s");
        assert!(sales.sync_due("s", 1, soon, every), "woken");
        let lost = AdmitResult { known: false, ..tick(0, 0, 0, 0) };
        assert!(!sales.ticked("s", &lost, soon), "Redis lost the sale: not idle");
        assert!(sales.sync_due("s", 1, soon, every), "copied back at the next clock tick");
    }

    #[test]
    fn sales_that_end_are_forgotten() {
        let sales = IdleSales::default();
        let t0 = Instant::now();
        sales.ticked("gone", &tick(0, 1, 1, 0), t0);
        sales.synced("gone", 1, t0);
        sales.wake("gone");
        sales.retain(&["live".to_owned()]);
        assert!(sales.due("gone", t0, IDLE), "no record left: due like a new sale");
        assert!(sales.idle.lock().map(|i| i.is_empty()).unwrap_or(false));
        assert!(sales.synced.lock().map(|s| s.is_empty()).unwrap_or(false));
    }
}
