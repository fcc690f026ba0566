//! The gate: what a place in line costs (SPEC §4a).
//!
//! Three levers, each per sale, checked before a join reaches the waiting
//! room:
//!
//! - **Proof of work** ([`challenge`]). A sale with `challenge.difficulty_bits`
//!   above 0 asks every new place for a solved challenge: `GET
//!   /api/v1/sales/{sale}/challenge` hands one out, the client finds a nonce
//!   such that SHA-256(`challenge` ":" `nonce`) starts with that many zero
//!   bits, and joins with both. A join carrying a queue token of the sale
//!   keeps its place without one.
//! - **Access rules** ([`access`]): CIDR allow and deny lists, global and per
//!   sale. Denied sources get 403 `access_denied` on challenge, join, status
//!   and hold; allowed ones are handed difficulty 0.
//! - **Invite-only sales** (`access: "invite"`): a join needs the site's
//!   login token with a `sale` claim naming the sale; each `sub` has one
//!   place (the waiting room keys signed-in users' places by user id).
//!
//! ## Adaptive difficulty
//!
//! A source that takes many places pays more for each. Counting is per
//! sale and per source, when a challenge is handed out (a script could
//! otherwise collect a thousand cheap challenges before using any), over
//! the current and the previous minute, in Redis so every instance sees the
//! same counts (`lua/source.lua`; nothing is stored per waiting visitor).
//! With `a` challenges handed to the client's address and `n` to its network
//! (IPv4 /24, IPv6 /64) before this one, the challenge asks for
//!
//! ```text
//! bits = min(max_difficulty_bits, difficulty_bits + max(extra(a, 1), extra(n, 4)))
//! extra(c, free) = 0 when c < free, else the least k with free * 2^k >= c + 1
//! ```
//!
//! one more bit, twice the expected work, for every doubling of the places
//! taken beyond a free allowance (1 per address, 4 per network): the 1000th
//! place from one address costs 2^10 times the first, a family sharing an
//! address pays at most twice the base for its second and four times for
//! its third and fourth, and a second network is not affected at all.

pub mod access;
pub mod challenge;
pub mod routes;

use std::net::IpAddr;

use chrono::Utc;

use self::access::Verdict;
use self::challenge::{Challenger, Issued, Refusal, Serial, Ticket};
use crate::error::{AppError, AppResult};
use crate::sales::Sale;
use crate::waiting_room::sources::SourceCounts;
use crate::waiting_room::WaitingRoom;

/// Places an address takes before its challenges get harder.
pub const FREE_PER_ADDRESS: u64 = 1;
/// Places a network (IPv4 /24, IPv6 /64) takes before its challenges get
/// harder.
pub const FREE_PER_NETWORK: u64 = 4;

/// Bits added for `before` places taken with `free` of them free.
pub fn extra_bits(before: u64, free: u64) -> u8 {
    if before < free {
        return 0;
    }
    let (free, need) = (u128::from(free.max(1)), u128::from(before) + 1);
    let mut bits = 0u8;
    while free << bits < need {
        bits += 1;
    }
    bits
}

/// The difficulty of a challenge for a source with `counts` (see the module
/// doc).
pub fn difficulty(base: u8, max: u8, counts: SourceCounts) -> u8 {
    let extra = extra_bits(counts.address, FREE_PER_ADDRESS).max(extra_bits(counts.network, FREE_PER_NETWORK));
    base.saturating_add(extra).min(max.max(base))
}

/// The address and network (IPv4 /24, IPv6 /64) a client is counted under.
pub fn source_of(ip: IpAddr) -> (String, String) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            (v4.to_string(), format!("{a}.{b}.{c}.0/24"))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            (v6.to_string(), format!("{network}/64"))
        }
    }
}

/// A sale's proof-of-work settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChallengeSettings {
    /// Leading zero bits asked of a new source; 0: no proof of work.
    pub difficulty_bits: u8,
    /// The most a busy source is asked for.
    pub max_difficulty_bits: u8,
}

impl ChallengeSettings {
    /// The settings of `sale`.
    pub fn of(sale: &Sale) -> Self {
        let clamp = |bits: i16| u8::try_from(bits.clamp(0, 255)).unwrap_or(0);
        ChallengeSettings {
            difficulty_bits: clamp(sale.challenge_bits),
            max_difficulty_bits: clamp(sale.challenge_max_bits),
        }
    }
}

/// Hands a challenge for `sale` to a client at `ip`: difficulty 0 when the
/// sale asks for none or the source is allowed, else by the adaptive rule.
pub async fn hand_out(
    challenger: &Challenger,
    waiting_room: &WaitingRoom,
    sale: &Sale,
    ip: Option<IpAddr>,
    verdict: Verdict,
) -> AppResult<Issued> {
    let settings = ChallengeSettings::of(sale);
    let now = Utc::now();
    if settings.difficulty_bits == 0 {
        // Nothing to check at the join: no count, no serial.
        return Ok(challenger.issue(&sale.id, 0, now, Serial { minute: 0, n: 0 }));
    }
    let (address, network) = ip.map(source_of).unwrap_or_else(|| ("unknown".into(), "unknown".into()));
    let (counts, serial) = waiting_room.count_source(&sale.id, &address, &network).await?;
    let bits = match verdict {
        Verdict::Allowed => 0,
        _ => difficulty(settings.difficulty_bits, settings.max_difficulty_bits, counts),
    };
    ::metrics::counter!(crate::metrics::CHALLENGES_ISSUED, "sale" => sale.id.clone()).increment(1);
    ::metrics::histogram!(crate::metrics::CHALLENGE_DIFFICULTY).record(f64::from(bits));
    Ok(challenger.issue(&sale.id, bits, now, serial))
}

/// What a new place needs to get past the gate: `None` when the sale asks
/// no proof of work (or the source is allowed), else the ticket of a
/// genuine, unexpired solution for the join script's single-use check.
pub fn check_solution(
    challenger: &Challenger,
    sale: &Sale,
    solution: Option<(&str, &str)>,
    verdict: Verdict,
) -> Result<Option<Ticket>, Refusal> {
    if ChallengeSettings::of(sale).difficulty_bits == 0 || verdict == Verdict::Allowed {
        return Ok(None);
    }
    let (challenge, nonce) = solution.ok_or(Refusal::Required)?;
    challenger.verify(&sale.id, challenge, nonce, Utc::now()).map(Some)
}

/// The answer to a refused challenge, counted per reason.
pub async fn refuse(waiting_room: &WaitingRoom, sale: &str, refusal: Refusal) -> AppError {
    count_refusal(waiting_room, sale, refusal.code()).await;
    let message = match refusal {
        Refusal::Required => "this sale asks for a solved challenge: GET the sale's /challenge, solve it, join with {\"challenge\", \"nonce\"}",
        Refusal::Failed => "the challenge is not genuine or the nonce does not solve it",
        Refusal::Expired => "the challenge has expired or belongs to another sale; fetch a new one",
        Refusal::Reused => "this challenge has already been used to join; fetch a new one",
    };
    match refusal {
        Refusal::Reused => AppError::conflict(refusal.code(), message),
        _ => AppError::forbidden(refusal.code(), message),
    }
}

/// Counts a refused join in the metrics and the sale's gate statistics.
pub async fn count_refusal(waiting_room: &WaitingRoom, sale: &str, code: &'static str) {
    ::metrics::counter!(crate::metrics::JOINS_REFUSED, "sale" => sale.to_owned(), "reason" => code).increment(1);
    // Statistics only: a refusal stays a refusal when Redis is away.
    if let Err(e) = waiting_room.count_gate(sale, code, 1).await {
        tracing::debug!(error = %e, "gate counter not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_doubling_beyond_the_allowance_adds_a_bit() {
        assert_eq!(extra_bits(0, 1), 0);
        assert_eq!(extra_bits(1, 1), 1);
        assert_eq!(extra_bits(2, 1), 2);
        assert_eq!(extra_bits(3, 1), 2);
        assert_eq!(extra_bits(4, 1), 3);
        assert_eq!(extra_bits(999, 1), 10);
        assert_eq!(extra_bits(3, 4), 0);
        assert_eq!(extra_bits(4, 4), 1);
        assert_eq!(extra_bits(8, 4), 2);
        assert_eq!(extra_bits(999, 4), 8);
        assert_eq!(extra_bits(u64::MAX - 1, 1), 64);
    }

    #[test]
    fn difficulty_is_capped_and_takes_the_harder_count() {
        let counts = |address, network| SourceCounts { address, network };
        assert_eq!(difficulty(12, 30, counts(0, 0)), 12);
        assert_eq!(difficulty(12, 30, counts(999, 999)), 22);
        assert_eq!(difficulty(12, 30, counts(0, 999)), 20);
        assert_eq!(difficulty(12, 16, counts(999, 999)), 16);
        // A cap below the base never lowers it.
        assert_eq!(difficulty(12, 0, counts(5, 5)), 12);
    }

    #[test]
    fn sources_are_counted_by_address_and_network() {
        assert_eq!(source_of("203.0.113.77".parse().expect("ip")), ("203.0.113.77".into(), "203.0.113.0/24".into()));
        assert_eq!(
            source_of("2001:db8:1:2:3:4:5:6".parse().expect("ip")),
            ("2001:db8:1:2:3:4:5:6".into(), "2001:db8:1:2::/64".into())
        );
        assert_eq!(source_of("::ffff:198.51.100.9".parse().expect("ip")).1, "198.51.100.0/24");
    }
}
