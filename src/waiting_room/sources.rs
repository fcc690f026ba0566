//! What the gate (`crate::gate`) keeps in Redis: challenges handed out per
//! source and minute, and counters of challenge outcomes per sale. Keys
//! carry the sale's hash tag like every other waiting-room key.

use chrono::Utc;
use redis::AsyncCommands;
use serde::Serialize;
use utoipa::ToSchema;

use super::WaitingRoom;
use crate::error::AppResult;
use crate::gate::challenge::Serial;

/// Challenges handed to a source before this one, in the last minute or two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCounts {
    /// To its address.
    pub address: u64,
    /// To its network (IPv4 /24, IPv6 /64).
    pub network: u64,
}

/// A network and the challenges it was handed lately.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BusySource {
    /// IPv4 /24 or IPv6 /64.
    pub network: String,
    /// Challenges handed out to it in this minute and the last.
    pub challenges: u64,
}

/// What the gate did for a sale, across all instances.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct GateStats {
    /// Challenges handed out.
    pub challenges_issued: u64,
    /// Joins with a solved challenge.
    pub challenges_solved: u64,
    /// Joins refused, by code (`challenge_required`, `challenge_failed`,
    /// `challenge_expired`, `challenge_reused`, `access_denied`, `not_invited`).
    pub refused: std::collections::BTreeMap<String, u64>,
    /// The networks handed the most challenges in the last minute or two.
    pub busiest_sources: Vec<BusySource>,
}

fn minute() -> i64 {
    Utc::now().timestamp().div_euclid(60)
}

impl WaitingRoom {
    /// Counts a challenge handed to `address` in `network` for `sale` and
    /// answers how many they were handed before it, and its serial
    /// (`lua/source.lua`).
    pub async fn count_source(&self, sale: &str, address: &str, network: &str) -> AppResult<(SourceCounts, Serial)> {
        let keys = self.keys(sale);
        let m = minute();
        let mut invocation = self.scripts.source.prepare_invoke();
        invocation
            .key(keys.key(&format!("addr:{m}")))
            .key(keys.key(&format!("net:{m}")))
            .key(keys.key(&format!("addr:{}", m - 1)))
            .key(keys.key(&format!("net:{}", m - 1)))
            .key(keys.key("gate"))
            .key(keys.key(&format!("ch:{m}")))
            .arg(address)
            .arg(network);
        let (address, network, n): (u64, u64, u64) =
            self.redis.run("count_source", |mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        Ok((SourceCounts { address, network }, Serial { minute: m, n }))
    }

    /// Counts one outcome of the gate for `sale` (a refusal's code, or
    /// `solved`).
    pub async fn count_gate(&self, sale: &str, outcome: &str, by: u64) -> AppResult<()> {
        let key = self.keys(sale).key("gate");
        let outcome = outcome.to_owned();
        self.redis.run("count_gate", |mut c| async move { c.hincr::<_, _, _, ()>(&key, outcome, by).await }).await
    }

    /// The gate's counters and busiest networks of `sale`.
    pub async fn gate_stats(&self, sale: &str) -> AppResult<GateStats> {
        let keys = self.keys(sale);
        let m = minute();
        let (gate, now, before) =
            (keys.key("gate"), keys.key(&format!("net:{m}")), keys.key(&format!("net:{}", m - 1)));
        type Ranked = Vec<(String, f64)>;
        let (counters, now, before): (Vec<(String, u64)>, Ranked, Ranked) = self
            .redis
            .run("gate_stats", |mut c| async move {
                redis::pipe()
                    .hgetall(&gate)
                    .zrevrange_withscores(&now, 0, 19)
                    .zrevrange_withscores(&before, 0, 19)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let mut stats = GateStats::default();
        for (field, count) in counters {
            match field.as_str() {
                "issued" => stats.challenges_issued = count,
                "solved" => stats.challenges_solved = count,
                _ => {
                    stats.refused.insert(field, count);
                }
            }
        }
        // The top of each minute, merged: exact for every network that is
        // busy in both, a lower bound for the others.
        let mut busiest = std::collections::HashMap::<String, u64>::new();
        for (network, count) in now.into_iter().chain(before) {
            *busiest.entry(network).or_default() += count as u64;
        }
        let mut busiest: Vec<BusySource> =
            busiest.into_iter().map(|(network, challenges)| BusySource { network, challenges }).collect();
        busiest.sort_by(|a, b| b.challenges.cmp(&a.challenges).then_with(|| a.network.cmp(&b.network)));
        busiest.truncate(10);
        stats.busiest_sources = busiest;
        Ok(stats)
    }
}
