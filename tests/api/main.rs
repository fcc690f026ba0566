//! API tests against real Postgres and Redis (started by scripts/services.sh).

mod helpers;

mod errors;
mod holds;
mod lottery;
mod operations;
mod payments;
mod sales;
mod waiting_room;
