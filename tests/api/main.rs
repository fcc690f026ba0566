//! API tests against real Postgres and Redis (started by scripts/services.sh).

mod helpers;

mod errors;
mod holds;
mod operations;
mod payments;
