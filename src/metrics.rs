//! Prometheus metrics: one process-wide recorder, a request-duration
//! histogram per route template, and the names every module records under.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Request duration histogram, labelled by route template, method, status.
pub const HTTP_REQUEST_DURATION: &str = "floodgate_http_request_duration_seconds";
/// Requests shed by the per-instance ceiling or a per-IP limit.
pub const REQUESTS_SHED: &str = "floodgate_requests_shed_total";
/// Queue joins by outcome (`new`, `again`).
pub const QUEUE_JOINS: &str = "floodgate_queue_joins_total";
/// Visitors admitted by the ticker or by hand.
pub const ADMISSIONS: &str = "floodgate_admissions_total";
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
/// Redis script latency by script.
pub const REDIS_DURATION: &str = "floodgate_redis_duration_seconds";

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

const DIFFICULTY_BUCKETS: [f64; 12] = [0.0, 4.0, 8.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0, 28.0, 32.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle, installing it on first call.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency_buckets)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(CHALLENGE_DIFFICULTY.into()), &DIFFICULTY_BUCKETS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, which floodgate never does.
            let _ = metrics::set_global_recorder(recorder);
            describe();
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
    describe_counter!(ORDERS, "Orders by outcome (confirmed, cancelled, refund_required).");
    describe_counter!(HOLD_EXPIRIES, "Holds expired by the sweeper.");
    describe_gauge!(UNITS, "Units by state, per sale.");
    describe_gauge!(PG_POOL, "Postgres pool connections by state.");
    describe_gauge!(REDIS_POOL, "Shared Redis connections (multiplexed, cloned per request).");
    describe_histogram!(REDIS_DURATION, Unit::Seconds, "Redis script latency by script.");
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

/// Middleware recording [`HTTP_REQUEST_DURATION`] for every request.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let response = next.call(req).await?;
    // Templates, not raw paths, keep label cardinality bounded.
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".into());
    let status = status_label(response.status());
    ::metrics::histogram!(HTTP_REQUEST_DURATION, "route" => route, "method" => method, "status" => status)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// The method as a static label (no allocation per request).
fn method_label(method: &actix_web::http::Method) -> &'static str {
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
