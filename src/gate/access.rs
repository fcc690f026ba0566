//! Access rules: CIDR allow and deny lists, global and per sale (SPEC §4a).
//!
//! A source is judged by the most specific rule that contains it (the
//! longest prefix), global and the sale's rules together; when an allow
//! and a deny rule are equally specific, deny wins. A denied source gets
//! 403 `access_denied` on challenge, join, status and hold; an allowed one
//! (a site's own monitoring) skips the proof of work; everyone else is
//! unlisted and goes the normal way.
//!
//! The rules live in Postgres (`access_rules`, migrations/0006; this module
//! owns the table) beside the global ones from `[access]` in the
//! configuration. Every instance reloads them about once a second, so a
//! change through the admin API reaches the whole fleet within that.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};

/// What the rules say of a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An allow rule is the most specific match: no challenge.
    Allowed,
    /// A deny rule is the most specific match: 403 `access_denied`.
    Denied,
    /// No rule matches.
    Unlisted,
}

/// Allow and deny lists of one scope, as the API shows and takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleLists {
    /// Networks that may skip the challenge (`"203.0.113.0/24"`,
    /// `"2001:db8::/32"`, or a single address). At most 1,000 rules in all.
    #[serde(default)]
    #[schema(max_items = 1000, pattern = r"^[0-9A-Fa-f:.]{2,45}(/[0-9]{1,3})?$")]
    pub allow: Vec<String>,
    /// Networks refused with 403 `access_denied`.
    #[serde(default)]
    #[schema(max_items = 1000, pattern = r"^[0-9A-Fa-f:.]{2,45}(/[0-9]{1,3})?$")]
    pub deny: Vec<String>,
}

/// Parsed rules of one scope.
#[derive(Debug, Clone, Default)]
struct Rules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

/// Most rules in one scope.
const MAX_RULES: usize = 1000;

fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 network (like 203.0.113.0/24 or 2001:db8::/32)"))
}

impl Rules {
    fn parse(lists: &RuleLists) -> Result<Rules, String> {
        if lists.allow.len() + lists.deny.len() > MAX_RULES {
            return Err(format!("at most {MAX_RULES} rules per scope"));
        }
        Ok(Rules {
            allow: lists.allow.iter().map(|t| parse_net(t)).collect::<Result<_, _>>()?,
            deny: lists.deny.iter().map(|t| parse_net(t)).collect::<Result<_, _>>()?,
        })
    }

    fn lists(&self) -> RuleLists {
        RuleLists {
            allow: self.allow.iter().map(ToString::to_string).collect(),
            deny: self.deny.iter().map(ToString::to_string).collect(),
        }
    }

    /// The longest matching prefix of each list.
    fn longest(&self, ip: IpAddr) -> (Option<u8>, Option<u8>) {
        let longest = |nets: &[IpNet]| nets.iter().filter(|n| n.contains(&ip)).map(IpNet::prefix_len).max();
        (longest(&self.allow), longest(&self.deny))
    }
}

/// The verdict of the most specific rule among `scopes`.
fn judge(scopes: &[&Rules], ip: IpAddr) -> Verdict {
    let ip = ip.to_canonical();
    let (mut allow, mut deny) = (None, None);
    for rules in scopes {
        let (a, d) = rules.longest(ip);
        allow = allow.max(a);
        deny = deny.max(d);
    }
    match (allow, deny) {
        (_, Some(d)) if allow.is_none_or(|a| d >= a) => Verdict::Denied,
        (Some(_), _) => Verdict::Allowed,
        _ => Verdict::Unlisted,
    }
}

#[derive(Default)]
struct Loaded {
    global: Rules,
    sales: HashMap<String, Rules>,
}

/// This instance's copy of the access rules.
pub struct AccessRules {
    configured: Rules,
    loaded: RwLock<Arc<Loaded>>,
}

impl AccessRules {
    /// The rules of the configuration; the stored ones follow with the
    /// first [`AccessRules::reload`].
    pub fn new(configured: &RuleLists) -> anyhow::Result<Self> {
        let configured = Rules::parse(configured).map_err(|e| anyhow::anyhow!("access: {e}"))?;
        Ok(AccessRules { configured, loaded: RwLock::new(Arc::new(Loaded::default())) })
    }

    /// What the rules say of `ip` for `sale` (or globally).
    pub fn judge(&self, sale: Option<&str>, ip: IpAddr) -> Verdict {
        let loaded = self.loaded.read().map(|l| l.clone()).unwrap_or_default();
        let per_sale = sale.and_then(|s| loaded.sales.get(s));
        match per_sale {
            Some(rules) => judge(&[&self.configured, &loaded.global, rules], ip),
            None => judge(&[&self.configured, &loaded.global], ip),
        }
    }

    /// 403 `access_denied` for a denied source.
    pub fn check(&self, sale: Option<&str>, ip: Option<IpAddr>) -> AppResult<Verdict> {
        let Some(ip) = ip else {
            return Ok(Verdict::Unlisted);
        };
        match self.judge(sale, ip) {
            Verdict::Denied => {
                ::metrics::counter!(crate::metrics::ACCESS_DENIED).increment(1);
                Err(AppError::forbidden("access_denied", "requests from your network are not accepted for this sale"))
            }
            verdict => Ok(verdict),
        }
    }

    /// Reads every stored rule (one small query; the jobs call it about
    /// once a second).
    pub async fn reload(&self, db: &PgPool) -> AppResult<()> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT scope, cidr, action FROM access_rules").fetch_all(db).await?;
        let mut loaded = Loaded::default();
        for (scope, cidr, action) in rows {
            let Ok(net) = parse_net(&cidr) else {
                tracing::warn!(%scope, %cidr, "unreadable access rule skipped");
                continue;
            };
            let rules = if scope.is_empty() { &mut loaded.global } else { loaded.sales.entry(scope).or_default() };
            if action == "allow" {
                rules.allow.push(net);
            } else {
                rules.deny.push(net);
            }
        }
        if let Ok(mut current) = self.loaded.write() {
            *current = Arc::new(loaded);
        }
        Ok(())
    }

    /// The stored lists of a scope (`None`: the global ones), plus for the
    /// global scope the configured ones.
    pub fn lists(&self, sale: Option<&str>) -> (RuleLists, Option<RuleLists>) {
        let loaded = self.loaded.read().map(|l| l.clone()).unwrap_or_default();
        match sale {
            Some(sale) => (loaded.sales.get(sale).map(Rules::lists).unwrap_or_default(), None),
            None => (loaded.global.lists(), Some(self.configured.lists())),
        }
    }

    /// Replaces the stored lists of a scope (`None`: global) and reloads.
    pub async fn replace(&self, db: &PgPool, sale: Option<&str>, lists: &RuleLists) -> AppResult<()> {
        let rules = Rules::parse(lists).map_err(AppError::Invalid)?;
        let scope = sale.unwrap_or("");
        let mut tx = db.begin().await?;
        sqlx::query("DELETE FROM access_rules WHERE scope = $1").bind(scope).execute(&mut *tx).await?;
        for (nets, action) in [(&rules.allow, "allow"), (&rules.deny, "deny")] {
            let cidrs: Vec<String> = nets.iter().map(ToString::to_string).collect();
            sqlx::query(
                "INSERT INTO access_rules (scope, cidr, action) SELECT $1, c, $2 FROM unnest($3::text[]) c \
                 ON CONFLICT (scope, cidr) DO UPDATE SET action = 'deny'",
            )
            .bind(scope)
            .bind(action)
            .bind(&cidrs)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.reload(db).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(allow: &[&str], deny: &[&str]) -> Rules {
        Rules::parse(&RuleLists {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        })
        .expect("valid rules")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn the_most_specific_rule_wins_and_deny_breaks_ties() {
        let r = rules(&["10.1.2.3", "2001:db8::/48"], &["10.0.0.0/8", "2001:db8::/32", "192.0.2.0/24"]);
        assert_eq!(judge(&[&r], ip("10.1.2.3")), Verdict::Allowed);
        assert_eq!(judge(&[&r], ip("10.1.2.4")), Verdict::Denied);
        assert_eq!(judge(&[&r], ip("2001:db8:0:1::7")), Verdict::Allowed);
        assert_eq!(judge(&[&r], ip("2001:db8:1::7")), Verdict::Denied);
        assert_eq!(judge(&[&r], ip("198.51.100.1")), Verdict::Unlisted);
        // IPv4 seen through an IPv6 socket is the same source.
        assert_eq!(judge(&[&r], ip("::ffff:192.0.2.9")), Verdict::Denied);
        let tie = rules(&["192.0.2.0/24"], &["192.0.2.0/24"]);
        assert_eq!(judge(&[&tie], ip("192.0.2.1")), Verdict::Denied);
    }

    #[test]
    fn scopes_are_judged_together() {
        let global = rules(&[], &["192.0.2.0/24"]);
        let sale = rules(&["192.0.2.128/25"], &[]);
        assert_eq!(judge(&[&global, &sale], ip("192.0.2.200")), Verdict::Allowed);
        assert_eq!(judge(&[&global, &sale], ip("192.0.2.1")), Verdict::Denied);
    }

    #[test]
    fn rules_are_refused_with_the_bad_entry_named() {
        let bad = Rules::parse(&RuleLists { allow: vec!["10.0.0.0/33".into()], deny: vec![] });
        assert!(bad.expect_err("refused").contains("10.0.0.0/33"));
        // Host bits are dropped, so a rule reads as the network it covers.
        assert_eq!(rules(&["10.1.2.3/8"], &[]).lists().allow, vec!["10.0.0.0/8".to_string()]);
    }
}
