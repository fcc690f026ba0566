//! Per-IP rate limits on the public hot paths, and a per-instance ceiling on
//! requests in flight that sheds load with 429 before latency collapses (with
//! the body-size limit, in one middleware: [`admit_request`]).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::configuration::RateLimitSettings;
use crate::error::{error_response, AppError};

/// Which per-IP budget a request draws from.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// Queue joins.
    Join,
    /// Status polls.
    Status,
    /// Hold attempts.
    Hold,
}

/// The limiters of one instance.
pub struct RateLimits {
    join: Option<DefaultKeyedRateLimiter<IpAddr>>,
    status: Option<DefaultKeyedRateLimiter<IpAddr>>,
    hold: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted_proxies: usize,
    /// Requests in flight and the ceiling ([`admit_request`]).
    in_flight: InFlight,
}

/// Requests in flight on this instance.
struct InFlight {
    current: AtomicUsize,
    max: usize,
}

fn limiter(per_second: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = NonZeroU32::new(per_second.saturating_mul(2)).unwrap_or(rate);
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

impl RateLimits {
    /// Limiters from settings; a rate of 0 turns that limit off.
    pub fn new(settings: &RateLimitSettings) -> Self {
        RateLimits {
            join: limiter(settings.join_per_second),
            status: limiter(settings.status_per_second),
            hold: limiter(settings.hold_per_second),
            trusted_proxies: settings.trusted_proxies as usize,
            in_flight: InFlight { current: AtomicUsize::new(0), max: settings.max_in_flight.max(1) },
        }
    }

    /// The client's IP: the peer, or behind `trusted_proxies` proxies the
    /// `X-Forwarded-For` entry that many places from the right (the one the
    /// outermost trusted proxy wrote; everything left of it is the
    /// client's own claim). Several headers count as one list, in order.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        if self.trusted_proxies > 0 {
            let entries: Vec<&str> = req
                .headers()
                .get_all("x-forwarded-for")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .collect();
            if let Some(entry) = entries.len().checked_sub(self.trusted_proxies).and_then(|i| entries.get(i)) {
                if let Ok(ip) = entry.parse() {
                    return Some(ip);
                }
            }
        }
        req.peer_addr().map(|a| a.ip())
    }

    /// 429 with `Retry-After` when the budget for `limit` of the client at
    /// `ip` (see [`RateLimits::client_ip`]) is spent.
    pub fn check_ip(&self, limit: Limit, ip: Option<IpAddr>) -> Result<(), AppError> {
        let limiter = match limit {
            Limit::Join => &self.join,
            Limit::Status => &self.status,
            Limit::Hold => &self.hold,
        };
        let (Some(limiter), Some(ip)) = (limiter, ip) else {
            return Ok(());
        };
        limiter.check_key(&ip).map_err(|not_until| {
            ::metrics::counter!(crate::metrics::REQUESTS_SHED, "why" => "per_ip").increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::TooManyRequests { retry_after_seconds: wait.as_secs() + 1 }
        })
    }

    /// Drops limiter state of idle clients (called periodically).
    pub fn forget_idle(&self) {
        for limiter in [&self.join, &self.status, &self.hold].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

struct Slot<'a>(&'a InFlight);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.current.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Middleware: refuses at once what this instance will not run: a body
/// announced larger than `server.max_body_bytes` (413, before it is read;
/// extractors enforce the limit again for chunked bodies), and any request
/// past `max_in_flight` running ones (429), so queued work never grows
/// without bound. One layer for both: each `from_fn` layer costs every
/// request a boxed future.
pub async fn admit_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<actix_web::web::Data<crate::state::AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let limit = state.settings.server.max_body_bytes;
    let announced =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|len| len > limit) {
        let response = actix_web::ResponseError::error_response(&AppError::PayloadTooLarge(limit));
        return Ok(req.into_response(response));
    }
    let in_flight = &state.limits.in_flight;
    let now = in_flight.current.fetch_add(1, Ordering::Relaxed) + 1;
    let slot = Slot(in_flight);
    // Operations endpoints are never shed: they are how operators see trouble.
    let exempt = matches!(req.path(), "/healthz" | "/readyz" | "/metrics");
    if now > in_flight.max && !exempt {
        drop(slot);
        ::metrics::counter!(crate::metrics::REQUESTS_SHED, "why" => "ceiling").increment(1);
        let mut response =
            error_response(StatusCode::TOO_MANY_REQUESTS, "overloaded", "this server is at capacity; retry shortly");
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return Ok(req.into_response(response));
    }
    let response = next.call(req).await;
    drop(slot);
    Ok(response?.map_into_boxed_body())
}
