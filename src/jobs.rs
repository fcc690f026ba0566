//! Background work every instance runs: the admission ticker, the hold
//! expiry sweeper and the sale clock. Each step is atomic in Redis or
//! Postgres, so any number of instances can run them side by side.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::error::AppResult;
use crate::inventory::expire_due_holds;
use crate::metrics;
use crate::release::release_next_stage;
use crate::sales::{lifecycle, AdmissionMode, Sale, SaleMode, SaleState, SALE_COLUMNS};
use crate::state::AppState;
use crate::waiting_room::idle;

/// Sales the admission ticker serves, refreshed by the clock.
type LiveSales = Arc<RwLock<Vec<String>>>;

/// Starts every loop; they end when `stopped` turns true. The returned set
/// is awaited on shutdown, so a loop finishes the step it is in (a sweep, a
/// delivery, a flush of heartbeats) before the process exits.
pub fn spawn_all(state: Arc<AppState>, stopped: watch::Receiver<bool>) -> JoinSet<()> {
    let live: LiveSales = Arc::default();
    let mut jobs = JoinSet::new();
    jobs.spawn(sale_clock(state.clone(), live.clone(), stopped.clone()));
    jobs.spawn(admission_ticker(state.clone(), live, stopped.clone()));
    jobs.spawn(line_refresher(state.clone(), stopped.clone()));
    jobs.spawn(availability_counter(state.clone(), stopped.clone()));
    jobs.spawn(expiry_sweeper(state.clone(), stopped.clone()));
    jobs.spawn(crate::events::delivery::run(state.clone(), stopped.clone()));
    jobs.spawn(reminders(state.clone(), stopped.clone()));
    jobs.spawn(repair_admission_slots(state.clone(), stopped.clone()));
    jobs.spawn(access_rules(state.clone(), stopped.clone()));
    jobs.spawn(metrics_refresher(state.clone(), stopped.clone()));
    jobs.spawn(forget_idle_clients(state, stopped));
    jobs
}

async fn admission_ticker(state: Arc<AppState>, live: LiveSales, mut stopped: watch::Receiver<bool>) {
    let period = Duration::from_millis(state.settings.jobs.admission_tick_ms);
    let idle_period = Duration::from_millis(state.settings.jobs.idle_tick_ms);
    let idle = state.waiting_room.idle.clone();
    let mut last_second = std::time::Instant::now();
    let max_pool = state.settings.database.max_connections;
    while pause(&mut stopped, period).await {
        let sales = live.read().map(|l| l.clone()).unwrap_or_default();
        state.hold_health.sample_pool(state.db.num_idle() == 0 && state.db.size() >= max_pool);
        let every_second = last_second.elapsed() >= Duration::from_secs(1);
        let window = every_second.then(|| {
            last_second = std::time::Instant::now();
            state.hold_health.take()
        });
        idle.retain(&sales);
        for sale in sales {
            let now = std::time::Instant::now();
            if !idle.due(&sale, now, idle_period) {
                continue;
            }
            ::metrics::counter!(metrics::ADMISSION_TICKS, "sale" => sale.clone()).increment(1);
            match state.waiting_room.admit(&sale, None).await {
                Ok(result) => {
                    let idle_now = idle.ticked(&sale, &result, now);
                    if let Err(e) = crate::events::flush_admissions(&state.db, &state.waiting_room, &sale).await {
                        tracing::warn!(sale = %sale, error = %e, "queue.admitted events not written yet");
                    }
                    let waiting = result.joined.saturating_sub(result.serving);
                    ::metrics::counter!(metrics::ADMISSIONS, "sale" => sale.clone(), "how" => "ticker")
                        .increment(result.admitted);
                    ::metrics::counter!(metrics::ABANDONED, "sale" => sale.clone()).increment(result.abandoned);
                    ::metrics::gauge!(metrics::QUEUE_WAITING, "sale" => sale.clone()).set(waiting as f64);
                    ::metrics::gauge!(metrics::QUEUE_ACTIVE, "sale" => sale.clone()).set(result.active as f64);
                    if let Some(window) = &window {
                        once_a_second(&state, &sale, window, waiting).await;
                    } else if idle_now {
                        // Ticked once per idle period, seldom on the pass
                        // that takes the window: keep its gauges alive.
                        queue_gauges(&state, &sale).await;
                    }
                }
                Err(e) => tracing::warn!(sale = %sale, error = %e, "admission tick failed"),
            }
        }
    }
}

/// Per sale, once a second: the adaptive rate's step and the queue gauges.
async fn once_a_second(state: &AppState, sale_id: &str, window: &crate::adaptive::Window, waiting: u64) {
    if let Ok(sale) = state.sales.get(&state.db, sale_id).await {
        if sale.admission_mode == AdmissionMode::Adaptive {
            let target = Duration::from_millis(u64::try_from(sale.hold_p99_target_ms).unwrap_or(50));
            let verdict = window.verdict(target, waiting);
            match state.waiting_room.adapt(sale_id, verdict).await {
                Ok(Some(rate)) => {
                    tracing::debug!(sale = %sale_id, ?verdict, rate, "adaptive admission step");
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(sale = %sale_id, error = %e, "adaptive admission step failed"),
            }
        }
    }
    queue_gauges(state, sale_id).await;
}

/// The estimated wait and admission rate gauges of a sale.
async fn queue_gauges(state: &AppState, sale_id: &str) {
    if let Ok(summary) = state.waiting_room.summary(sale_id).await {
        // Unknown stays absent (never NaN): the series then retires by the
        // idle timeout.
        if let Some(wait) = summary.estimated_wait_seconds {
            ::metrics::gauge!(metrics::QUEUE_ESTIMATED_WAIT, "sale" => sale_id.to_owned()).set(wait as f64);
        }
        if let Some(rate) = summary.effective_admit_per_second {
            ::metrics::gauge!(metrics::ADMISSION_RATE, "sale" => sale_id.to_owned(), "kind" => "effective").set(rate);
        }
        if let Some(rate) = summary.admission_rate {
            ::metrics::gauge!(metrics::ADMISSION_RATE, "sale" => sale_id.to_owned(), "kind" => "measured").set(rate);
        }
    }
}

/// Refreshes the line snapshots that answer waiting visitors' polls, and
/// writes their buffered heartbeats.
async fn line_refresher(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    let period = Duration::from_millis(state.settings.jobs.line_refresh_ms.max(1));
    while pause(&mut stopped, period).await {
        if let Err(e) = state.waiting_room.refresh_lines().await {
            tracing::debug!(error = %e, "line refresh failed");
        }
    }
    // Shutting down: write the last buffered heartbeats.
    if let Err(e) = state.waiting_room.refresh_lines().await {
        tracing::warn!(error = %e, "last heartbeats not written");
    }
}

/// How old the units of a sale nobody reads may get in `/metrics` at least:
/// a recount scans the sale's units, so unread sales are recounted every few
/// seconds, not every second, and big ones less often still (see
/// `AvailabilityCache::for_metrics`; read sales are recounted by
/// `availability_counter` anyway).
const UNREAD_RECOUNT: Duration = Duration::from_secs(5);

/// Once a second, the histogram samples folded into their buckets (scraped
/// or not, see [`metrics::fold_samples`]) and the figures `/metrics` shows
/// without anyone asking: the state, `max_active` and units of every sale
/// not closed (see [`UNREAD_RECOUNT`]), and every counter touched so it
/// exists at 0 and does not retire while its sale is live.
async fn metrics_refresher(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    let mut live: Vec<String> = Vec::new();
    while pause(&mut stopped, Duration::from_secs(1)).await {
        metrics::fold_samples();
        metrics::keep_global_alive();
        // Postgres away: keep the last list, so series do not retire for it.
        match lifecycle::on_offer(&state.db).await {
            Ok(ids) => live = ids,
            Err(e) => tracing::debug!(error = %e, "live sales not listed for the metrics"),
        }
        for id in &live {
            metrics::keep_sale_alive(id);
            let counted = match state.sales.get(&state.db, id).await {
                Ok(sale) => {
                    metrics::set_sale(&sale);
                    state
                        .availability
                        .for_metrics(&state.db, &sale, UNREAD_RECOUNT)
                        .await
                        .map(|a| metrics::set_units(id, &a.counts))
                }
                Err(e) => Err(e),
            };
            if let Err(e) = counted {
                tracing::debug!(sale = %id, error = %e, "units not counted for the metrics");
            }
        }
    }
}

/// Recounts the availability of every sale read lately, so reads never wait
/// (a sale whose recount is slow less often: `AvailabilityCache::due`).
async fn availability_counter(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    while pause(&mut stopped, Duration::from_millis(500)).await {
        for id in state.availability.due() {
            let counted = match state.sales.get(&state.db, &id).await {
                Ok(sale) => state.availability.refresh(&state.db, &sale).await,
                Err(e) => Err(e),
            };
            if let Err(e) = counted {
                tracing::debug!(sale = %id, error = %e, "availability recount failed");
            }
        }
    }
}

async fn expiry_sweeper(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    const BATCH: i64 = 500;
    let period = Duration::from_millis(state.settings.jobs.expiry_sweep_ms);
    while pause(&mut stopped, period).await {
        loop {
            match expire_due_holds(&state.db, BATCH).await {
                Ok(expired) => {
                    for hold in &expired {
                        ::metrics::counter!(metrics::HOLD_EXPIRIES, "sale" => hold.sale_id.clone()).increment(1);
                        state.claim_hints.returned(&hold.sale_id);
                        if let Some(n) = hold.queue_number.filter(|n| *n > 0) {
                            let _ = state.waiting_room.finish(&hold.sale_id, n as u64, None).await;
                        }
                    }
                    if (expired.len() as i64) < BATCH {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "hold expiry sweep failed");
                    break;
                }
            }
        }
    }
}

async fn reminders(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    let settings = state.settings.events.clone();
    while pause(&mut stopped, Duration::from_millis(500)).await {
        let sent = crate::events::reminders::send_due(
            &state.db,
            settings.hold_expiring_before_seconds,
            settings.sale_starting_before_seconds,
        )
        .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "reminders failed");
        }
    }
}

async fn repair_admission_slots(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    while pause(&mut stopped, Duration::from_secs(5)).await {
        let sales = sqlx::query_as::<_, Sale>(sqlx::AssertSqlSafe(format!(
            "SELECT {SALE_COLUMNS} FROM sales WHERE waiting_room AND state IN ('on_sale', 'paused', 'sold_out')"
        )))
        .fetch_all(&state.db)
        .await;
        for sale in sales.unwrap_or_default() {
            if let Err(e) = crate::waiting_room::reconcile::admission_slots(&state.db, &state.waiting_room, &sale).await
            {
                tracing::warn!(sale = %sale.id, error = %e, "admission slot repair failed");
            }
        }
    }
}

/// Reloads the access rules about once a second, so a change made through
/// any instance's admin API reaches this one.
async fn access_rules(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    loop {
        if let Err(e) = state.access.reload(&state.db).await {
            tracing::debug!(error = %e, "access rules not reloaded");
        }
        if !pause(&mut stopped, Duration::from_secs(1)).await {
            break;
        }
    }
}

async fn forget_idle_clients(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    while pause(&mut stopped, Duration::from_secs(60)).await {
        state.limits.forget_idle();
    }
}

async fn sale_clock(state: Arc<AppState>, live: LiveSales, mut stopped: watch::Receiver<bool>) {
    let period = Duration::from_millis(state.settings.jobs.sale_clock_ms);
    loop {
        match clock_tick(&state).await {
            Ok(sales) => {
                if let Ok(mut list) = live.write() {
                    *list = sales;
                }
            }
            Err(e) => tracing::warn!(error = %e, "sale clock tick failed"),
        }
        if !pause(&mut stopped, period).await {
            break;
        }
    }
}

/// One pass of the sale clock. Returns the sales the ticker should serve.
pub async fn clock_tick(state: &AppState) -> AppResult<Vec<String>> {
    let db = &state.db;
    lifecycle::start_and_end(db).await?;
    crate::sessions::close_ended(db).await?;
    for sale in crate::release::due(db).await? {
        release_next_stage(db, &sale, true).await?;
        state.claim_hints.returned(&sale);
    }
    lifecycle::sold_out_or_back(db).await?;
    // Copy every live (or just closed) sale to Redis, an idle one only when
    // its row changed or every fifth idle tick (waiting_room::idle): this is
    // also how the waiting room recovers its settings after Redis lost its
    // data.
    let sales = lifecycle::live(db).await?;
    let idle_sales = &state.waiting_room.idle;
    let idle_sync = Duration::from_millis(state.settings.jobs.idle_tick_ms) * idle::SYNC_EVERY_IDLE_TICKS;
    let mut live = Vec::new();
    for sale in &sales {
        let (version, now) = (sale.updated_at.timestamp_micros(), std::time::Instant::now());
        if idle_sales.sync_due(&sale.id, version, now, idle_sync) {
            copy_to_redis(state, sale).await?;
            idle_sales.synced(&sale.id, version, now);
        }
        if sale.waiting_room && sale.state == SaleState::OnSale {
            live.push(sale.id.clone());
        }
    }
    Ok(live)
}

/// One sale's copy to Redis: its settings, its saved counters, and the
/// start of a FIFO line (the pre-queue frozen, the seed revealed).
async fn copy_to_redis(state: &AppState, sale: &Sale) -> AppResult<()> {
    state.waiting_room.sync_sale(sale).await?;
    if sale.waiting_room {
        crate::waiting_room::reconcile::save_counters(&state.db, &state.waiting_room, sale).await?;
    }
    let started = sale.starts_at <= Utc::now() && sale.state != SaleState::Scheduled && sale.state != SaleState::Closed;
    if sale.waiting_room && sale.mode == SaleMode::Fifo && started {
        state.waiting_room.start(sale, sale.shuffle_prequeue).await?;
        if !sale.seed_revealed {
            lifecycle::reveal_seed(&state.db, &sale.id).await?;
        }
    }
    Ok(())
}

/// Waits between polls of a background job; `false` once shutdown began.
pub async fn pause(stopped: &mut watch::Receiver<bool>, period: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => !*stopped.borrow(),
        changed = stopped.changed() => changed.is_ok() && !*stopped.borrow(),
    }
}
