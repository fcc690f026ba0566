//! API tests against real Postgres and Redis (started by scripts/services.sh).

mod helpers;

mod balancer;
mod cluster;
mod errors;
mod events;
mod gate;
mod holds;
mod lottery;
mod operations;
mod payments;
mod prices;
mod recovery;
mod sales;
mod sessions;
mod waiting_room;
