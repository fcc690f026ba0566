//! Prometheus metrics: one process-wide recorder, a request-duration
//! histogram per route template, and the names every module records under.
//!
//! `/metrics` is exact at every scrape:
//! - every counter exists from the start at 0: the global ones when the
//!   recorder is installed, a sale's ones ([`SALE_COUNTERS`], labelled
//!   `sale`) from the first second the sale is live on this instance;
//! - gauges are set by the jobs every second (units by state, the sale's
//!   state and `max_active` by the metrics job, queue figures by the
//!   admission ticker), not when someone happens to read;
//! - a value that is not known is absent, never `NaN`;
//! - series nobody touches for [`IDLE_TIMEOUT`] are dropped, so a closed
//!   sale's series retire a little after it closes (the metrics job keeps
//!   the live ones and the global counters touched).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::Label;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// Request duration histogram, labelled by route template, method, status.
pub const HTTP_REQUEST_DURATION: &str = "floodgate_http_request_duration_seconds";
/// Requests shed by the per-instance ceiling or a per-IP limit.
pub const REQUESTS_SHED: &str = "floodgate_requests_shed_total";
/// Queue joins by outcome (`new`, `again`).
pub const QUEUE_JOINS: &str = "floodgate_queue_joins_total";
/// Visitors admitted by the ticker or by hand.
pub const ADMISSIONS: &str = "floodgate_admissions_total";
/// Admission ticks this instance ran, per sale (an idle sale ticks once per
/// `jobs.idle_tick_ms`, see waiting_room::idle).
pub const ADMISSION_TICKS: &str = "floodgate_admission_ticks_total";
/// Visitors skipped because they stopped polling.
pub const ABANDONED: &str = "floodgate_abandoned_total";
/// Visitors waiting, per sale (gauge).
pub const QUEUE_WAITING: &str = "floodgate_queue_waiting";
/// Admitted visitors not yet finished, per sale (gauge).
pub const QUEUE_ACTIVE: &str = "floodgate_queue_active";
/// Estimated wait at the back of the queue, per sale (gauge).
pub const QUEUE_ESTIMATED_WAIT: &str = "floodgate_queue_estimated_wait_seconds";
/// Admission rate per sale: `effective` (in force) and `measured` (gauge).
pub const ADMISSION_RATE: &str = "floodgate_admission_rate";
/// Hold attempts by outcome.
pub const HOLDS: &str = "floodgate_holds_total";
/// Claim transaction latency.
pub const HOLD_CLAIM_DURATION: &str = "floodgate_hold_claim_duration_seconds";
/// Holds per `place_holds` call (how well concurrent holds are batched).
pub const HOLD_BATCH: &str = "floodgate_hold_batch_size";
/// Orders by outcome (`confirmed`, `cancelled`, `refund_required`).
pub const ORDERS: &str = "floodgate_orders_total";
/// Holds expired by the sweeper.
pub const HOLD_EXPIRIES: &str = "floodgate_hold_expiries_total";
/// Units by state, per sale (gauge).
pub const UNITS: &str = "floodgate_units";
/// Postgres pool connections by state (gauge).
pub const PG_POOL: &str = "floodgate_pg_pool_connections";
/// Redis pool connections by state (gauge).
pub const REDIS_POOL: &str = "floodgate_redis_pool_connections";
/// Repairs of Redis state from Postgres, by kind.
pub const REPAIRS: &str = "floodgate_reconcile_repairs_total";
/// Redis call latency by operation (script or command).
pub const REDIS_COMMAND_DURATION: &str = "floodgate_redis_command_seconds";
/// Postgres statement (or transaction) latency by operation.
pub const PG_QUERY_DURATION: &str = "floodgate_pg_query_seconds";
/// Time spent waiting for a pooled Postgres connection.
pub const PG_POOL_ACQUIRE: &str = "floodgate_pg_pool_acquire_seconds";
/// Per sale: 1 for the state it is in, 0 for the others (gauge).
pub const SALE_STATE: &str = "floodgate_sale_state";
/// Per sale: its `max_active` setting (gauge).
pub const SALE_MAX_ACTIVE: &str = "floodgate_sale_max_active";
/// Always 1, labelled with the running version.
pub const BUILD_INFO: &str = "floodgate_build_info";

/// Events delivered, retried or dead-lettered, by type.
pub const DELIVERIES: &str = "floodgate_webhook_deliveries_total";
/// Time from an event's creation to its successful delivery.
pub const DELIVERY_LATENCY: &str = "floodgate_webhook_delivery_latency_seconds";
/// Events fanned out, by type.
pub const EVENTS: &str = "floodgate_events_total";
/// Deliveries not yet done plus events not yet fanned out.
pub const BACKLOG: &str = "floodgate_outbox_backlog";
/// Proof-of-work challenges handed out.
pub const CHALLENGES_ISSUED: &str = "floodgate_challenges_issued_total";
/// Difficulty of the challenges handed out.
pub const CHALLENGE_DIFFICULTY: &str = "floodgate_challenge_difficulty_bits";
/// Joins refused, by reason.
pub const JOINS_REFUSED: &str = "floodgate_queue_joins_refused_total";
/// Requests refused by a deny rule.
pub const ACCESS_DENIED: &str = "floodgate_access_denied_total";

/// Series untouched this long are dropped from the exposition.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Hold outcomes counted from the start (others, rarer error codes,
/// appear when they first happen).
const HOLD_OUTCOMES: &[&str] =
    &["created", "replayed", "insufficient_stock", "limit_exceeded", "seat_taken", "sold_out", "sale_paused"];

/// Per-sale counters: (name, label, values); each exists at 0 for every
/// live sale.
pub const SALE_COUNTERS: &[(&str, &str, &[&str])] = &[
    (QUEUE_JOINS, "outcome", &["new", "again"]),
    (ADMISSIONS, "how", &["ticker", "manual"]),
    (ADMISSION_TICKS, "", &[]),
    (ABANDONED, "", &[]),
    (HOLDS, "outcome", HOLD_OUTCOMES),
    (ORDERS, "outcome", &["confirmed", "cancelled", "refund_required"]),
    (HOLD_EXPIRIES, "", &[]),
    (CHALLENGES_ISSUED, "", &[]),
    (JOINS_REFUSED, "reason", &["challenge_required", "challenge_failed", "challenge_expired", "challenge_reused"]),
];

/// Counters of the whole instance: (name, label, values).
const GLOBAL_COUNTERS: &[(&str, &str, &[&str])] = &[
    (REQUESTS_SHED, "why", &["per_ip", "ceiling"]),
    (REPAIRS, "kind", &["counters", "admission_slots"]),
    (ACCESS_DENIED, "", &[]),
    (EVENTS, "type", crate::events::kind::ALL),
];

/// Webhook delivery outcomes, per event type.
const DELIVERY_OUTCOMES: &[&str] = &["delivered", "retried", "dead"];

const DIFFICULTY_BUCKETS: [f64; 12] = [0.0, 4.0, 8.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 28.0, 32.0];
/// Holds per batch: 1 (alone) up to 32 (`inventory::batch::MAX_BATCH`).
const BATCH_BUCKETS: [f64; 7] = [1.0, 2.0, 4.0, 8.0, 12.0, 16.0, 32.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle, installing it on first call.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            let builder = PrometheusBuilder::new()
                // Not histograms: record_request keeps their handles.
                .idle_timeout(MetricKindMask::COUNTER | MetricKindMask::GAUGE, Some(IDLE_TIMEOUT))
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency_buckets)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(CHALLENGE_DIFFICULTY.into()), &DIFFICULTY_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(HOLD_BATCH.into()), &BATCH_BUCKETS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, which floodgate never does.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            process().describe();
            keep_global_alive();
            handle
        })
        .clone()
}

/// Help texts, so the exposition passes `promtool check metrics`.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "HTTP request duration by route template, method and status."
    );
    describe_counter!(REQUESTS_SHED, "Requests refused with 429 by a per-IP limit or the per-instance ceiling.");
    describe_counter!(QUEUE_JOINS, "Queue joins by outcome (new place or the same place again).");
    describe_counter!(ADMISSIONS, "Visitors admitted, by the ticker or by hand.");
    describe_counter!(
        ADMISSION_TICKS,
        "Admission ticks this instance ran per sale (idle sales tick once per jobs.idle_tick_ms)."
    );
    describe_counter!(ABANDONED, "Waiting visitors skipped because they stopped polling.");
    describe_gauge!(QUEUE_WAITING, "Visitors behind the serving number, per sale.");
    describe_gauge!(QUEUE_ACTIVE, "Admitted visitors not yet finished, per sale.");
    describe_gauge!(QUEUE_ESTIMATED_WAIT, Unit::Seconds, "Estimated wait at the back of the queue, per sale.");
    describe_gauge!(
        ADMISSION_RATE,
        "Admissions per second per sale: the rate in force (kind=effective, the adaptive controller's in adaptive mode) and the measured one."
    );
    describe_counter!(HOLDS, "Hold attempts by outcome.");
    describe_histogram!(HOLD_CLAIM_DURATION, Unit::Seconds, "Duration of a hold request's claim transaction.");
    describe_histogram!(HOLD_BATCH, "Holds placed per place_holds call (one statement and one commit).");
    describe_counter!(ORDERS, "Orders by outcome (confirmed, cancelled, refund_required).");
    describe_counter!(HOLD_EXPIRIES, "Holds expired by the sweeper.");
    describe_gauge!(UNITS, "Units by state, per sale.");
    describe_gauge!(PG_POOL, "Postgres pool connections by state.");
    describe_gauge!(REDIS_POOL, "Shared Redis connections (multiplexed, cloned per request).");
    describe_histogram!(REDIS_COMMAND_DURATION, Unit::Seconds, "Redis call latency by operation (script or command).");
    describe_histogram!(PG_QUERY_DURATION, Unit::Seconds, "Postgres statement or transaction latency by operation.");
    describe_histogram!(PG_POOL_ACQUIRE, Unit::Seconds, "Wait for a pooled Postgres connection.");
    describe_gauge!(BUILD_INFO, "Always 1; the version label names the running build.");
    describe_gauge!(SALE_STATE, "Per sale, 1 for the state it is in and 0 for the others.");
    describe_gauge!(SALE_MAX_ACTIVE, "Per sale, the admitted-but-unfinished cap (admission.max_active).");
    describe_counter!(DELIVERIES, "Webhook deliveries by event type and outcome.");
    describe_histogram!(DELIVERY_LATENCY, Unit::Seconds, "Time from an event's creation to its delivery.");
    describe_counter!(EVENTS, "Outbox events fanned out, by type.");
    describe_gauge!(BACKLOG, "Outbox events and webhook deliveries not yet done.");
    describe_counter!(CHALLENGES_ISSUED, "Proof-of-work challenges handed out.");
    describe_histogram!(CHALLENGE_DIFFICULTY, "Difficulty (leading zero bits) of the challenges handed out.");
    describe_counter!(JOINS_REFUSED, "Joins refused, by reason (challenge_required, challenge_failed, ...).");
    describe_counter!(ACCESS_DENIED, "Requests refused by an access deny rule.");
    describe_counter!(REPAIRS, "Repairs of Redis state from Postgres, by kind.");
}

/// The process collector (`process_*`: CPU seconds, resident memory, open
/// file descriptors, threads, start time), sampled at every scrape.
fn process() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// The exposition: samples the process figures first.
pub fn render() -> String {
    process().collect();
    handle().render()
}

/// Folds the histogram samples recorded since the last call into their
/// buckets. The recorder keeps every sample in a growing list until this
/// runs or `/metrics` is scraped: without it an instance nobody scrapes grows
/// by about 28 bytes per request (measured: +37 MiB over 1.4 million polls,
/// given back at the next scrape; loadtest/RESULTS.md).
pub fn fold_samples() {
    handle().run_upkeep();
}

/// Records one Redis call's latency.
pub fn redis_call(op: &'static str, took: Duration) {
    ::metrics::histogram!(REDIS_COMMAND_DURATION, "op" => op).record(took.as_secs_f64());
}

/// Records one Postgres operation's latency.
pub fn pg_query(op: &'static str, took: Duration) {
    ::metrics::histogram!(PG_QUERY_DURATION, "op" => op).record(took.as_secs_f64());
}

/// Records a wait for a pooled Postgres connection.
pub fn pg_acquire(took: Duration) {
    ::metrics::histogram!(PG_POOL_ACQUIRE).record(took.as_secs_f64());
}

/// Sets the sale's state and `max_active` gauges.
pub fn set_sale(sale: &crate::sales::Sale) {
    for state in crate::sales::SaleState::ALL {
        let on = if *state == sale.state { 1.0 } else { 0.0 };
        ::metrics::gauge!(SALE_STATE, "sale" => sale.id.clone(), "state" => state.as_str()).set(on);
    }
    ::metrics::gauge!(SALE_MAX_ACTIVE, "sale" => sale.id.clone()).set(f64::from(sale.max_active));
}

/// Sets `floodgate_units{sale, state}` from a count.
pub fn set_units(sale: &str, counts: &crate::sales::UnitCounts) {
    for (state, count) in [
        ("available", counts.available),
        ("held", counts.held),
        ("sold", counts.sold),
        ("unreleased", counts.unreleased),
        ("withdrawn", counts.withdrawn),
    ] {
        ::metrics::gauge!(UNITS, "sale" => sale.to_owned(), "state" => state).set(count as f64);
    }
}

/// Touches `name{label=value, extra...}` for each value (or the bare
/// series when `label` is empty): registers it at 0, or keeps it from the
/// idle timeout, without changing its value.
fn touch(name: &'static str, label: &'static str, values: &[&'static str], extra: &[Label]) {
    if label.is_empty() {
        ::metrics::counter!(name, extra.to_vec()).increment(0);
        return;
    }
    for value in values {
        let mut labels = extra.to_vec();
        labels.push(Label::from_static_parts(label, value));
        ::metrics::counter!(name, labels).increment(0);
    }
}

/// Keeps every instance-wide counter present (at 0 until it counts), and
/// the build info.
pub fn keep_global_alive() {
    ::metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for (name, label, values) in GLOBAL_COUNTERS {
        touch(name, label, values, &[]);
    }
    for kind in crate::events::kind::ALL {
        touch(DELIVERIES, "outcome", DELIVERY_OUTCOMES, &[Label::from_static_parts("type", kind)]);
    }
}

/// Keeps every per-sale counter of `sale` present (at 0 until it counts).
pub fn keep_sale_alive(sale: &str) {
    let id = [Label::new("sale", sale.to_owned())];
    for (name, label, values) in SALE_COUNTERS {
        touch(name, label, values, &id);
    }
}

/// Records one request in [`HTTP_REQUEST_DURATION`] and gives its route
/// template (`"unmatched"` when no route took it).
///
/// Each worker thread keeps the templates it has seen with their histogram
/// handles. Per request, actix's `match_pattern` walks the router a second
/// time to name the template, and `histogram!` builds its three-label key
/// (the route an owned string) and looks it up in the shared registry:
/// together about a tenth of a status poll's CPU (loadtest/RESULTS.md, "A
/// lean request path"). Here the template is written from the matched path
/// with each dynamic segment put back as `{name}` and looked up in the
/// thread's map. The router is asked only when that string is not a known
/// template, and a string is kept only when the router names it as the
/// template, so the map holds one entry per route, never one per path (a
/// flood of unmatched paths keeps nothing).
pub fn record_request(
    request: &actix_web::HttpRequest,
    method: &'static str,
    status: actix_web::http::StatusCode,
    took: Duration,
) -> Rc<str> {
    let status = status_label(status);
    let seconds = took.as_secs_f64();
    ROUTES.with(|routes| {
        let mut routes = routes.borrow_mut();
        let Routes { known, scratch } = &mut *routes;
        let written = write_template(request.match_info(), scratch);
        if written {
            if let Some(route) = known.get_mut(scratch.as_str()) {
                route.histogram(method, status).record(seconds);
                return route.template.clone();
            }
        }
        let template: Rc<str> = request.match_pattern().map_or_else(|| Rc::from("unmatched"), Rc::from);
        if written && *template == **scratch && known.len() < MAX_ROUTES {
            let route = known.entry(scratch.clone()).or_insert_with(|| Route { template, histograms: Vec::new() });
            route.histogram(method, status).record(seconds);
            return route.template.clone();
        }
        request_histogram(&template, method, status).record(seconds);
        template
    })
}

thread_local! {
    static ROUTES: RefCell<Routes> = RefCell::new(Routes::default());
}

/// More routes than floodgate serves; a bound all the same.
const MAX_ROUTES: usize = 256;

/// One worker thread's route templates, and a buffer to write one in.
#[derive(Default)]
struct Routes {
    known: HashMap<String, Route>,
    scratch: String,
}

/// A route template and its histograms by method and status.
///
/// Holding a handle is safe because histograms are not in the recorder's
/// idle mask ([`handle`]): a dropped series would leave the handle
/// recording into nothing.
struct Route {
    template: Rc<str>,
    histograms: Vec<(&'static str, &'static str, metrics::Histogram)>,
}

impl Route {
    fn histogram(&mut self, method: &'static str, status: &'static str) -> &metrics::Histogram {
        let at = match self.histograms.iter().position(|(m, s, _)| *m == method && *s == status) {
            Some(at) => at,
            None => {
                self.histograms.push((method, status, request_histogram(&self.template, method, status)));
                self.histograms.len() - 1
            }
        };
        &self.histograms[at].2
    }
}

fn request_histogram(route: &str, method: &'static str, status: &'static str) -> metrics::Histogram {
    ::metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route.to_owned(), "method" => method, "status" => status)
}

/// Writes the matched path with each dynamic segment replaced by `{name}`;
/// false when a segment's value is not a slice of the path (only the router
/// can name the template then).
fn write_template(info: &actix_web::dev::Path<actix_web::dev::Url>, out: &mut String) -> bool {
    out.clear();
    let path = info.as_str();
    let base = path.as_ptr() as usize;
    let mut at = 0;
    for (name, value) in info.iter() {
        let start = (value.as_ptr() as usize).wrapping_sub(base);
        let Some(end) = start.checked_add(value.len()).filter(|&end| start >= at && end <= path.len()) else {
            return false;
        };
        let (Some(literal), true) = (path.get(at..start), path.is_char_boundary(end)) else {
            return false;
        };
        out.push_str(literal);
        out.push('{');
        out.push_str(name);
        out.push('}');
        at = end;
    }
    out.push_str(&path[at..]);
    true
}

/// The method as a static label (no allocation per request).
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The status as a static label: the codes floodgate answers, else the class.
fn status_label(status: actix_web::http::StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        410 => "410",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::dev::{Path, ResourceDef, Url};

    fn matched(pattern: &str, path: &str) -> Path<Url> {
        let uri = path.parse().expect("uri");
        let mut info = Path::new(Url::new(uri));
        assert!(ResourceDef::new(pattern).capture_match_info(&mut info), "{pattern} matches {path}");
        info
    }

    #[test]
    fn a_matched_path_gives_back_its_template() {
        let mut out = String::new();
        for (pattern, path) in [
            ("/api/v1/sales/{sale}/queue/status", "/api/v1/sales/s_1/queue/status"),
            ("/api/v1/holds/{hold}", "/api/v1/holds/5f0c"),
            ("/admin/v1/sales/{sale}/sessions/{session}", "/admin/v1/sales/ab/sessions/ab"),
            ("/healthz", "/healthz"),
        ] {
            assert!(write_template(&matched(pattern, path), &mut out));
            assert_eq!(out, pattern);
        }
        // A segment the router decodes is still a slice of the path.
        assert!(write_template(&matched("/api/v1/sales/{sale}", "/api/v1/sales/a%20b"), &mut out));
        assert_eq!(out, "/api/v1/sales/{sale}");
    }
}
