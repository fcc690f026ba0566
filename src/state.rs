//! The shared state of one instance: what every handler and background job
//! can reach. Built by `startup` (the composition root); handlers take it
//! as `web::Data<AppState>` and pass domain functions only the parts they use.

use sqlx::PgPool;

use crate::adaptive::HoldHealth;
use crate::configuration::Settings;
use crate::gate::access::AccessRules;
use crate::gate::challenge::Challenger;
use crate::inventory::{ClaimHints, HoldBatches};
use crate::rate_limit::RateLimits;
use crate::sales::{AvailabilityCache, SaleCache};
use crate::store::Redis;
use crate::tokens::{LoginVerifier, TokenSigner};
use crate::waiting_room::WaitingRoom;

/// Shared state of every handler and background job of one instance.
pub struct AppState {
    /// The settings it was built with.
    pub settings: Settings,
    /// Postgres pool.
    pub db: PgPool,
    /// The waiting room (and its Redis pool).
    pub waiting_room: WaitingRoom,
    /// Signer of queue, admission and hold tokens.
    pub tokens: TokenSigner,
    /// Issuer and verifier of proof-of-work challenges.
    pub challenges: Challenger,
    /// CIDR allow and deny rules.
    pub access: AccessRules,
    /// Verifier of the site's login tokens, when configured.
    pub login: Option<LoginVerifier>,
    /// Sale rows, about a second old at most.
    pub sales: SaleCache,
    /// Unit counts per sale, about a second old at most.
    pub availability: AvailabilityCache,
    /// Per-IP limits and the in-flight ceiling.
    pub limits: RateLimits,
    /// Where this instance's claims of each sale start.
    pub claim_hints: ClaimHints,
    /// "Best available" holds placed together (one statement per batch).
    pub hold_batches: HoldBatches,
    /// The hold path's health, for adaptive admission.
    pub hold_health: HoldHealth,
}

impl AppState {
    /// The Redis side.
    pub fn redis(&self) -> &Redis {
        &self.waiting_room.redis
    }
}
