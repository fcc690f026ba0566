//! What one instance knows of each sale's line, so that a waiting visitor's
//! poll needs no Redis call of its own.
//!
//! A visitor whose place is behind the serving number cannot have been
//! admitted, expired or abandoned yet (`admit.lua` only ever marks places at
//! or below `serving`), so their standing is a pure function of the sale's
//! line: state, serving number, pre-queue size and order, measured rate,
//! lottery winners. [`Lines`] keeps that per sale, refreshed by one pipelined
//! Redis round trip per tick for every sale polled on this instance
//! ([`super::WaitingRoom::refresh_lines`]), and buffers the waiting
//! visitors' heartbeats ("last seen", which abandonment needs) to write
//! them in the same round trip. Only visitors at or past the serving number
//! run `status.lua` per poll.
//!
//! The snapshot is at most one tick old (plus a round trip). A copy older
//! than [`MAX_AGE`] (Redis slow or down) is not used, so an outage still
//! answers 503 rather than stale places. Changes this instance makes itself
//! (admissions, sale settings) update or drop its copy at once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{PlaceState, Standing};

/// A snapshot older than this is not trusted.
pub const MAX_AGE: Duration = Duration::from_millis(500);

/// A sale nobody polled on this instance for this long is dropped.
const IDLE: Duration = Duration::from_secs(30);

/// Most buffered heartbeats per sale; past it polls run the script.
const MAX_BUFFERED: usize = 200_000;

/// A sale's line as `meta` says (see `lua/status.lua`).
#[derive(Debug, Clone, Default)]
pub struct LineView {
    /// Sale state in Redis; empty when Redis does not know the sale.
    pub state: String,
    /// Serving number.
    pub serving: u64,
    /// Frozen pre-queue size, once frozen.
    pub prequeue: Option<u64>,
    /// The pre-queue's order is written.
    pub shuffled: bool,
    /// Measured admissions per second.
    pub rate: Option<f64>,
    /// Lottery winners, once drawn.
    pub drawn: Option<u64>,
    /// How often an admin removed places (`meta.rmv`); 0: never.
    pub removals: u64,
}

struct Watched {
    view: RwLock<Option<(Instant, LineView)>>,
    /// The pre-queue's places by join number (`pos`), read once it is
    /// written: it never changes afterwards.
    positions: RwLock<Option<Arc<Vec<u8>>>>,
    heartbeats: Mutex<Vec<u32>>,
    /// Visitors whose places were removed, as of `removals` changes.
    removed: RwLock<(u64, Arc<HashSet<String>>)>,
    /// Milliseconds since `Lines::epoch` of the last poll.
    last_poll: AtomicU64,
    /// Bumped by every local change (an admission, a settings change), so
    /// a refresh read from Redis before that change does not overwrite it.
    generation: AtomicU64,
}

impl Watched {
    fn new(now: u64) -> Self {
        Watched {
            view: RwLock::new(None),
            positions: RwLock::new(None),
            heartbeats: Mutex::new(Vec::new()),
            removed: RwLock::new((0, Arc::new(HashSet::new()))),
            last_poll: AtomicU64::new(now),
            generation: AtomicU64::new(0),
        }
    }

    /// `read` of the snapshot, if there is one young enough to trust and
    /// Redis knew the sale when it was taken.
    fn fresh<T>(&self, read: impl FnOnce(&LineView) -> T) -> Option<T> {
        let view = self.view.read().ok()?;
        let (taken, line) = view.as_ref()?;
        (taken.elapsed() <= MAX_AGE && !line.state.is_empty()).then(|| read(line))
    }
}

/// What a refresh must do for one sale.
pub struct Due {
    /// Sale id.
    pub sale: String,
    /// Join numbers that polled since the last refresh.
    pub heartbeats: Vec<u32>,
    /// The pre-queue order should be read (written but not yet loaded).
    pub wants_positions: bool,
    /// The sale's generation when this refresh began.
    pub generation: u64,
    /// The removals the loaded set of removed visitors reflects.
    pub removals_loaded: u64,
}

/// Per-sale line snapshots and heartbeat buffers of this instance.
pub struct Lines {
    sales: RwLock<HashMap<String, Arc<Watched>>>,
    epoch: Instant,
}

impl Default for Lines {
    fn default() -> Self {
        Lines { sales: RwLock::new(HashMap::new()), epoch: Instant::now() }
    }
}

impl Lines {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn watched(&self, sale: &str) -> Arc<Watched> {
        if let Some(w) = self.sales.read().ok().and_then(|s| s.get(sale).cloned()) {
            return w;
        }
        let mut sales = self.sales.write().unwrap_or_else(|e| e.into_inner());
        sales.entry(sale.to_owned()).or_insert_with(|| Arc::new(Watched::new(self.now()))).clone()
    }

    /// The sale's entry if it has one. Only polls add a sale (through
    /// [`Lines::polled`]): an entry made by anything else (an admission
    /// tick, a settings change) would have this instance refresh a line
    /// nobody polls here, and each tick re-made what [`Lines::due`] dropped.
    fn existing(&self, sale: &str) -> Option<Arc<Watched>> {
        self.sales.read().ok().and_then(|s| s.get(sale).cloned())
    }

    /// The sale's entry, marked as polled now (so the refresher keeps it).
    fn polled(&self, sale: &str) -> Arc<Watched> {
        let watched = self.watched(sale);
        watched.last_poll.store(self.now(), Ordering::Relaxed);
        watched
    }

    /// The standing of join number `n` when the snapshot alone can tell it
    /// (the visitor waits behind the serving number); records the
    /// heartbeat to be written with the next refresh. `None`: ask Redis.
    pub fn waiting_standing(&self, sale: &str, n: u64) -> Option<Standing> {
        Self::standing_in(&self.polled(sale), n)
    }

    /// A poll's two questions in one look-up: whether `visitor`'s place was
    /// removed (`None`: ask Redis) and, only when it certainly was not, the
    /// standing of `n` as [`Lines::waiting_standing`] gives it.
    pub fn poll(&self, sale: &str, visitor: &str, n: u64) -> (Option<bool>, Option<Standing>) {
        let watched = self.polled(sale);
        let removed = Self::removed_in(&watched, visitor);
        let standing = if removed == Some(false) { Self::standing_in(&watched, n) } else { None };
        (removed, standing)
    }

    fn standing_in(watched: &Watched, n: u64) -> Option<Standing> {
        let line = watched.fresh(LineView::clone)?;
        let n32 = u32::try_from(n).ok()?;
        let position = match line.prequeue {
            // Not frozen: the whole line so far is the pre-queue, in an
            // order still to be drawn (nobody can have been admitted yet;
            // if someone was, this copy is older than the freeze).
            None if line.serving > 0 => return None,
            None => None,
            Some(pq) if n <= pq && pq > 0 => {
                if !line.shuffled {
                    None
                } else {
                    let positions = watched.positions.read().ok()?.clone()?;
                    let at = n as usize * 4;
                    let bytes: [u8; 4] = positions.get(at..at + 4)?.try_into().ok()?;
                    Some(u64::from(u32::from_be_bytes(bytes)))
                }
            }
            Some(_) => Some(n),
        };
        if let Some(p) = position {
            if p == 0 || p <= line.serving {
                return None;
            }
        }
        {
            let mut beats = watched.heartbeats.lock().ok()?;
            if beats.len() >= MAX_BUFFERED {
                return None;
            }
            beats.push(n32);
        }
        Some(Standing {
            sale_state: line.state,
            serving: line.serving,
            position,
            standing: PlaceState::Waiting,
            deadline_ms: None,
            rate: line.rate,
            drawn: line.drawn,
        })
    }

    /// Sales to refresh now, with their buffered heartbeats; forgets sales
    /// nobody polled lately.
    pub fn due(&self) -> Vec<Due> {
        let now = self.now();
        let idle = IDLE.as_millis() as u64;
        let mut sales = self.sales.write().unwrap_or_else(|e| e.into_inner());
        sales.retain(|_, w| now.saturating_sub(w.last_poll.load(Ordering::Relaxed)) < idle);
        sales
            .iter()
            .map(|(sale, w)| {
                let heartbeats = w.heartbeats.lock().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default();
                let shuffled = w.view.read().ok().and_then(|v| v.as_ref().map(|(_, l)| l.shuffled)).unwrap_or(false);
                let loaded = w.positions.read().map(|p| p.is_some()).unwrap_or(true);
                let generation = w.generation.load(Ordering::Acquire);
                let removals_loaded = w.removed.read().map(|r| r.0).unwrap_or(0);
                Due {
                    sale: sale.clone(),
                    heartbeats,
                    wants_positions: shuffled && !loaded,
                    generation,
                    removals_loaded,
                }
            })
            .collect()
    }

    /// Stores a fresh view of `sale`'s line, read when the sale was at
    /// `generation`; a view read before a local change is dropped (the next
    /// refresh brings one that includes it).
    pub fn store(&self, sale: &str, line: LineView, generation: u64) {
        let Some(watched) = self.existing(sale) else { return };
        if let Ok(mut view) = watched.view.write() {
            if watched.generation.load(Ordering::Acquire) == generation {
                *view = Some((Instant::now(), line));
            }
        };
    }

    /// Stores the pre-queue's order of `sale`.
    pub fn store_positions(&self, sale: &str, positions: Vec<u8>) {
        let Some(watched) = self.existing(sale) else { return };
        if let Ok(mut p) = watched.positions.write() {
            *p = Some(Arc::new(positions));
        };
    }

    /// Stores the visitors removed from `sale` as of `removals` changes.
    pub fn store_removed(&self, sale: &str, removals: u64, removed: HashSet<String>) {
        let Some(watched) = self.existing(sale) else { return };
        if let Ok(mut r) = watched.removed.write() {
            *r = (removals, Arc::new(removed));
        };
    }

    /// Whether `visitor`'s place in `sale` was removed, when a fresh
    /// snapshot can tell; `None`: ask Redis.
    /// Asking keeps the sale's snapshot refreshed, as a poll does, so only
    /// the first ask after a quiet spell goes to Redis.
    pub fn is_removed(&self, sale: &str, visitor: &str) -> Option<bool> {
        Self::removed_in(&self.polled(sale), visitor)
    }

    fn removed_in(watched: &Watched, visitor: &str) -> Option<bool> {
        let removals = watched.fresh(|line| line.removals)?;
        if removals == 0 {
            return Some(false);
        }
        let removed = watched.removed.read().ok()?;
        (removed.0 == removals).then(|| removed.1.contains(visitor))
    }

    /// Puts heartbeats back after a failed refresh, so they are not lost.
    pub fn requeue(&self, sale: &str, mut heartbeats: Vec<u32>) {
        let watched = self.watched(sale);
        if let Ok(mut beats) = watched.heartbeats.lock() {
            if beats.len() + heartbeats.len() <= MAX_BUFFERED {
                beats.append(&mut heartbeats);
            }
        };
    }

    /// This instance moved the serving number: polls see it at once.
    pub fn note_serving(&self, sale: &str, serving: u64) {
        let Some(watched) = self.existing(sale) else { return };
        if let Ok(mut view) = watched.view.write() {
            watched.generation.fetch_add(1, Ordering::AcqRel);
            match view.as_mut() {
                // Admitting means the pre-queue is frozen: a copy from
                // before the freeze must not answer anyone.
                Some((_, line)) if line.prequeue.is_none() => *view = None,
                Some((_, line)) => line.serving = line.serving.max(serving),
                None => {}
            }
        };
    }

    /// This instance changed the sale's settings or order: polls ask Redis
    /// until the next refresh.
    pub fn forget(&self, sale: &str) {
        let Some(watched) = self.existing(sale) else { return };
        if let Ok(mut view) = watched.view.write() {
            watched.generation.fetch_add(1, Ordering::AcqRel);
            *view = None;
        }
        if let Ok(mut p) = watched.positions.write() {
            *p = None;
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Lines {
        /// Stores a view read at the sale's current generation.
        fn store_now(&self, sale: &str, line: LineView) {
            let generation = self.watched(sale).generation.load(Ordering::Acquire);
            self.store(sale, line, generation);
        }
    }

    #[test]
    fn only_a_poll_has_a_line_refreshed() {
        let lines = Lines::default();
        // What the admission ticker and the clock do to every live sale.
        lines.note_serving("s", 5);
        lines.forget("s");
        assert!(lines.due().is_empty(), "nobody polls s here: nothing to refresh");
        assert!(lines.waiting_standing("s", 9).is_none(), "no snapshot yet: ask Redis");
        assert_eq!(lines.due().iter().map(|d| d.sale.as_str()).collect::<Vec<_>>(), ["s"]);
    }

    #[test]
    fn a_refresh_read_before_a_local_admission_does_not_undo_it() {
        let lines = Lines::default();
        lines.store_now("s", line(10, Some(0), true));
        let due = lines.due();
        // This instance admits up to 50 while the refresh is in flight.
        lines.note_serving("s", 50);
        lines.store("s", line(10, Some(0), true), due[0].generation);
        assert!(lines.waiting_standing("s", 20).is_none(), "20 was admitted: ask Redis");
    }

    fn line(serving: u64, prequeue: Option<u64>, shuffled: bool) -> LineView {
        LineView { state: "on_sale".into(), serving, prequeue, shuffled, rate: Some(10.0), drawn: None, removals: 0 }
    }

    #[test]
    fn behind_the_serving_number_is_answered_locally_and_beats() {
        let lines = Lines::default();
        assert!(lines.waiting_standing("s", 50).is_none(), "no snapshot yet: ask Redis");
        lines.store_now("s", line(10, Some(0), true));
        let standing = lines.waiting_standing("s", 50).expect("waiting behind serving");
        assert_eq!(standing.position, Some(50));
        assert_eq!(standing.standing, PlaceState::Waiting);
        assert!(lines.waiting_standing("s", 10).is_none(), "at the serving number: ask Redis");
        assert!(lines.waiting_standing("s", 3).is_none(), "passed: ask Redis");
        let due = lines.due();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].heartbeats, vec![50]);
        assert!(lines.due()[0].heartbeats.is_empty(), "heartbeats are taken once");
    }

    #[test]
    fn prequeue_places_come_from_the_written_order() {
        let lines = Lines::default();
        lines.store_now("s", line(1, Some(3), true));
        assert!(lines.waiting_standing("s", 2).is_none(), "order not loaded yet");
        assert!(lines.due()[0].wants_positions);
        // n = 1, 2, 3 -> places 3, 1, 2
        let mut pos = vec![0u8; 16];
        for (n, p) in [(1u32, 3u32), (2, 1), (3, 2)] {
            pos[n as usize * 4..n as usize * 4 + 4].copy_from_slice(&p.to_be_bytes());
        }
        lines.store_positions("s", pos);
        assert_eq!(lines.waiting_standing("s", 1).and_then(|s| s.position), Some(3));
        assert!(lines.waiting_standing("s", 2).is_none(), "place 1 is served");
        assert_eq!(lines.waiting_standing("s", 7).and_then(|s| s.position), Some(7), "after the pre-queue: FIFO");
    }

    #[test]
    fn an_open_prequeue_waits_without_a_place_and_a_forgotten_line_asks_redis() {
        let lines = Lines::default();
        lines.store_now("s", line(0, None, false));
        assert_eq!(lines.waiting_standing("s", 5).map(|s| s.position), Some(None));
        lines.forget("s");
        assert!(lines.waiting_standing("s", 5).is_none());
    }

    #[test]
    fn a_removed_visitors_poll_is_told_so_and_leaves_no_heartbeat() {
        let lines = Lines::default();
        lines.store_now("s", LineView { removals: 1, ..line(10, Some(0), true) });
        assert_eq!(lines.poll("s", "v:gone", 50).0, None, "removed set not loaded yet: ask Redis");
        lines.store_removed("s", 1, HashSet::from(["v:gone".to_owned()]));
        let (removed, standing) = lines.poll("s", "v:gone", 50);
        assert_eq!(removed, Some(true));
        assert!(standing.is_none());
        let (removed, standing) = lines.poll("s", "v:here", 60);
        assert_eq!(removed, Some(false));
        assert_eq!(standing.and_then(|s| s.position), Some(60));
        assert_eq!(lines.due()[0].heartbeats, vec![60], "only the visitor still in line beats");
    }

    #[test]
    fn own_admissions_move_the_line_at_once() {
        let lines = Lines::default();
        lines.store_now("s", line(10, Some(0), true));
        assert!(lines.waiting_standing("s", 12).is_some());
        lines.note_serving("s", 12);
        assert!(lines.waiting_standing("s", 12).is_none());
    }
}
