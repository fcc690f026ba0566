//! floodgate: a flash-sale ticketing server with a virtual waiting room.
//!
//! Visitors join a fair queue in Redis, are admitted at the rate Postgres can
//! absorb, claim units from one-row-per-unit inventory with
//! `FOR UPDATE SKIP LOCKED`, hold them while they pay, and either confirm
//! them into an order through a signed payment webhook or let them go back on
//! sale. Postgres is the only truth for units; Redis holds the waiting room.
//! The binary is stateless: run as many instances as you like.
//!
//! # Layout
//!
//! A request goes HTTP → a `routes.rs` handler (extracts, checks who asks
//! through [`extractor`], calls one domain function) → the domain module
//! (`inventory`, `waiting_room`, `payments`, …), which owns its SQL or its
//! Redis keys. Each `routes.rs` declares its handlers once with
//! `domain_routes!`, which gives it `configure` (for [`startup`]) and `Api`
//! (for [`openapi`]).
//!
//! - [`startup`]: the composition root: `Application::build(settings)`,
//!   routes, middleware, graceful shutdown. Nothing imports it.
//! - [`state`]: the shared [`state::AppState`] of one instance.
//! - [`extractor`]: who is asking: the admin key, the bearer tokens and the
//!   client's budget and access verdict as `FromRequest` extractors.
//! - [`configuration`]: layered settings (`config/*.toml`, `FLOODGATE__*`).
//! - [`error`]: the one error type and its JSON body.
//! - [`store`]: the Postgres pool and the per-thread Redis connections, with
//!   bounded waits.
//! - [`per_thread`]: one value per worker thread, made on that thread.
//! - [`tokens`]: signed queue, admission and hold tokens; login JWTs.
//! - [`sales`]: sale definitions, stages, availability; admin CRUD;
//!   `sales::lifecycle` makes every change of a sale's state.
//! - [`release`]: staged releases.
//! - [`sessions`]: timed entry and event series: a sale's sessions, their
//!   recurrence, calendar and life cycle.
//! - [`waiting_room`]: the Redis queue, admission control, status polling
//!   (scripts in `lua/`), batched joins and per-instance line snapshots; the
//!   only code that knows Redis keys and scripts. Its `reconcile` repairs
//!   Redis from the Postgres truth.
//! - [`gate`]: what a place costs: proof-of-work challenges, adaptive
//!   difficulty, CIDR access rules, invite-only sales (SPEC §4a).
//! - [`adaptive`]: the admission rate that follows the hold path's health.
//! - [`fairness`]: the documented seeded shuffle behind pre-queues and
//!   lotteries.
//! - [`lottery`]: the lottery draw.
//! - [`inventory`]: holds: `place_hold` (one statement, migrations/0004),
//!   placed in batches of whatever arrives together (`place_holds`,
//!   migrations/0009), release, expiry; `inventory::audit` checks invariants
//!   I1–I3.
//! - [`prices`]: price categories and the units each covers.
//! - [`payments`]: the signed webhook, confirmation (amount-checked; the
//!   common case one `confirm_payment` statement, migrations/0011), late
//!   payments.
//! - [`signature`]: `Floodgate-Signature`, for the provider's webhook and our
//!   own event deliveries.
//! - [`orders`]: orders and cancellation.
//! - [`idempotency`]: `Idempotency-Key` records.
//! - [`events`]: the transactional outbox.
//! - [`jobs`]: admission ticker, expiry sweeper, sale clock.
//! - [`rate_limit`]: per-IP limits and load shedding.
//! - [`metrics`], [`telemetry`], [`ops`], [`openapi`]: operations.
//! - [`web_pages`]: the embedded buyer pages from `web/`.
//! - [`demo`]: the demo sale of the dev run command.

#[macro_use]
mod text_enum;
#[macro_use]
mod routes_macro;

pub mod adaptive;
pub mod configuration;
pub mod demo;
pub mod error;
pub mod events;
pub mod extractor;
pub mod fairness;
pub mod gate;
pub mod idempotency;
pub mod inventory;
pub mod jobs;
pub mod lottery;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod per_thread;
pub mod prices;
pub mod rate_limit;
pub mod release;
pub mod sales;
pub mod sessions;
pub mod signature;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod waiting_room;
pub mod web_pages;
