//! The audit: recomputes invariants I1–I3 of a sale from its rows and says
//! what it found, including that it found nothing.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::error::AppResult;
use crate::sales::Sale;

/// One check and what it found.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// Short name.
    pub name: &'static str,
    /// Invariant it guards (SPEC §2).
    pub invariant: &'static str,
    /// What it verifies.
    pub description: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// Violations found.
    pub violations: i64,
    /// Up to 20 examples of violations.
    pub examples: Vec<String>,
}

/// The audit report of a sale.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditReport {
    /// The sale.
    pub sale_id: String,
    /// Every check passed.
    pub ok: bool,
    /// When the audit ran.
    pub checked_at: DateTime<Utc>,
    /// Units by state; their sum equals `total`.
    pub units: UnitTotals,
    /// The checks of invariants I1–I3, and of prices.
    pub checks: Vec<Check>,
    /// How the waiting room in Redis compares with Postgres (repairable
    /// drift, not an invariant; see `reconcile`).
    pub waiting_room: Option<WaitingRoomReport>,
}

/// The Redis comparison part of the audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingRoomReport {
    /// Every comparison matched.
    pub ok: bool,
    /// The comparisons.
    pub checks: Vec<Check>,
}

/// Unit totals seen by the audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitTotals {
    /// Units of the sale.
    pub total: i64,
    /// Released and free.
    pub available: i64,
    /// In active holds.
    pub held: i64,
    /// In confirmed orders.
    pub sold: i64,
    /// Not yet released.
    pub unreleased: i64,
    /// Out of stock for good (units of closed or cancelled sessions).
    pub withdrawn: i64,
}

async fn examples(db: &PgPool, sale: &str, sql: &'static str) -> AppResult<(i64, Vec<String>)> {
    let rows: Vec<(String,)> = sqlx::query_as(sql).bind(sale).fetch_all(db).await?;
    let count = rows.len() as i64;
    Ok((count, rows.into_iter().take(20).map(|(s,)| s).collect()))
}

/// The row-level checks: name, invariant, what holds, and a query listing
/// what breaks it (`$1` is the sale).
const CHECKS: [(&str, &str, &str, &str); 10] = [
    (
        "held_units_in_active_holds",
        "I1",
        "every held unit belongs to an active hold",
        "SELECT 'unit ' || u.id FROM units u LEFT JOIN holds h ON h.id = u.hold_id \
         WHERE u.sale_id = $1 AND u.status = 'held' AND (h.id IS NULL OR h.state <> 'active')",
    ),
    (
        "sold_units_in_confirmed_orders",
        "I1",
        "every sold unit belongs to a confirmed order of its hold",
        "SELECT 'unit ' || u.id FROM units u LEFT JOIN orders o ON o.id = u.order_id \
         WHERE u.sale_id = $1 AND u.status = 'sold' \
           AND (o.id IS NULL OR o.state <> 'confirmed' OR o.hold_id <> u.hold_id)",
    ),
    (
        "no_unit_held_or_sold_twice",
        "I1",
        "no unit appears in two active holds or confirmed orders",
        "SELECT 'unit ' || unit || ' in ' || count(*) || ' holds or orders' FROM ( \
             SELECT unnest(unit_ids) AS unit FROM holds WHERE sale_id = $1 AND state = 'active' \
             UNION ALL \
             SELECT unnest(unit_ids) FROM orders WHERE sale_id = $1 AND state = 'confirmed') x \
         GROUP BY unit HAVING count(*) > 1",
    ),
    (
        "holds_all_or_nothing",
        "I2",
        "every active hold, and every hold of a confirmed order, owns exactly its quantity of units",
        "SELECT 'hold ' || h.id || ' has ' || count(u.id) || ' of ' || h.quantity FROM holds h \
         LEFT JOIN units u ON u.sale_id = h.sale_id AND u.hold_id = h.id AND u.status IN ('held', 'sold') \
         WHERE h.sale_id = $1 AND (h.state = 'active' OR EXISTS ( \
             SELECT 1 FROM orders o WHERE o.hold_id = h.id AND o.state = 'confirmed')) \
         GROUP BY h.id, h.quantity HAVING count(u.id) <> h.quantity",
    ),
    (
        "per_user_limit",
        "I3",
        "no buyer holds or owns more units than the per-user limit (per session where it counts per session)",
        "SELECT x.key || ' has ' || sum(x.q) FROM ( \
             SELECT coalesce(allowance_key, visitor_id) AS key, quantity AS q FROM holds \
             WHERE sale_id = $1 AND state = 'active' \
             UNION ALL \
             SELECT coalesce(h.allowance_key, o.visitor_id), o.quantity FROM orders o JOIN holds h ON h.id = o.hold_id \
             WHERE o.sale_id = $1 AND o.state = 'confirmed') x \
         GROUP BY x.key HAVING sum(x.q) > (SELECT per_user_limit FROM sales WHERE id = $1)",
    ),
    (
        "purchase_counts_match",
        "I3",
        "each buyer's running count equals their active holds plus confirmed orders",
        "SELECT coalesce(p.visitor_id, x.visitor_id) || ': counted ' || coalesce(p.units, 0) \
                || ', actual ' || coalesce(x.q, 0) \
         FROM (SELECT visitor_id, units FROM user_purchases WHERE sale_id = $1) p \
         FULL JOIN ( \
             SELECT key AS visitor_id, sum(q)::int AS q FROM ( \
                 SELECT coalesce(allowance_key, visitor_id) AS key, quantity AS q FROM holds \
                 WHERE sale_id = $1 AND state = 'active' \
                 UNION ALL \
                 SELECT coalesce(h.allowance_key, o.visitor_id), o.quantity FROM orders o \
                 JOIN holds h ON h.id = o.hold_id WHERE o.sale_id = $1 AND o.state = 'confirmed') y \
             GROUP BY key) x ON x.visitor_id = p.visitor_id \
         WHERE coalesce(p.units, 0) <> coalesce(x.q, 0)",
    ),
    (
        "units_in_their_session",
        "I1",
        "every held or sold unit is in the session its hold was placed in",
        "SELECT 'unit ' || u.id || ' of session ' || coalesce(u.session::text, '-') || ' in a hold for ' \
                || coalesce(h.session::text, '-') \
         FROM units u JOIN holds h ON h.id = u.hold_id \
         WHERE u.sale_id = $1 AND u.status IN ('held', 'sold') AND u.session IS DISTINCT FROM h.session",
    ),
    (
        "no_overlapping_sessions",
        "sessions",
        "where the sale refuses overlapping sessions, no buyer holds or owns two sessions that overlap",
        "SELECT a.visitor_id || ': sessions ' || a.session || ' and ' || b.session \
         FROM sales s \
         JOIN holds a ON a.sale_id = s.id AND a.session IS NOT NULL \
         JOIN holds b ON b.sale_id = s.id AND b.visitor_id = a.visitor_id AND b.session > a.session \
         JOIN sale_sessions sa ON sa.sale_id = s.id AND sa.code = a.session \
         JOIN sale_sessions sb ON sb.sale_id = s.id AND sb.code = b.session \
         WHERE s.id = $1 AND s.no_overlap \
           AND (a.state = 'active' OR EXISTS (SELECT 1 FROM orders o WHERE o.hold_id = a.id AND o.state = 'confirmed')) \
           AND (b.state = 'active' OR EXISTS (SELECT 1 FROM orders o WHERE o.hold_id = b.id AND o.state = 'confirmed')) \
           AND tstzrange(sa.starts_at, sa.ends_at) && tstzrange(sb.starts_at, sb.ends_at)",
    ),
    (
        "prices_complete",
        "prices",
        "in a sale with prices every unit has a price category of the sale",
        "SELECT 'unit ' || u.id FROM units u JOIN sales s ON s.id = u.sale_id \
         LEFT JOIN price_categories c ON c.sale_id = u.sale_id AND c.code = u.category \
         WHERE u.sale_id = $1 AND s.currency IS NOT NULL AND c.code IS NULL",
    ),
    (
        "orders_paid_their_price",
        "prices",
        "every order of a sale with prices was confirmed for the sum of its units' prices, in the sale's currency",
        "SELECT 'order ' || o.id || ': ' || coalesce(o.amount::text, 'no amount') || ' ' || coalesce(o.currency, '') \
                || ', units cost ' || coalesce(sum(c.amount)::text, '?') \
         FROM orders o JOIN sales s ON s.id = o.sale_id \
         LEFT JOIN units u ON u.sale_id = o.sale_id AND u.id = ANY(o.unit_ids) \
         LEFT JOIN price_categories c ON c.sale_id = u.sale_id AND c.code = u.category \
         WHERE o.sale_id = $1 AND s.currency IS NOT NULL \
         GROUP BY o.id, o.amount, o.currency, s.currency \
         HAVING o.amount IS DISTINCT FROM sum(c.amount) OR o.currency IS DISTINCT FROM s.currency",
    ),
];

/// Counts the sale's units by state and checks they add up (I1).
async fn balance(db: &PgPool, sale: &Sale) -> AppResult<(UnitTotals, Check)> {
    let (total, available, held, sold, unreleased, withdrawn): (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), \
                count(*) FILTER (WHERE u.status = 'available' AND u.id <= s.released_upto), \
                count(*) FILTER (WHERE u.status = 'held'), \
                count(*) FILTER (WHERE u.status = 'sold'), \
                count(*) FILTER (WHERE u.status = 'available' AND u.id > s.released_upto), \
                count(*) FILTER (WHERE u.status = 'withdrawn') \
         FROM units u JOIN sales s ON s.id = u.sale_id WHERE u.sale_id = $1 GROUP BY s.released_upto",
    )
    .bind(&sale.id)
    .fetch_optional(db)
    .await?
    .unwrap_or((0, 0, 0, 0, 0, 0));
    let ok = total == i64::from(sale.total_units) && available + held + sold + unreleased + withdrawn == total;
    let check = Check {
        name: "units_balance",
        invariant: "I1",
        description: "available + held + sold + unreleased + withdrawn = total units of the sale",
        ok,
        violations: i64::from(!ok),
        examples: if ok {
            Vec::new()
        } else {
            vec![format!("{available} + {held} + {sold} + {unreleased} + {withdrawn} vs total {}", sale.total_units)]
        },
    };
    Ok((UnitTotals { total, available, held, sold, unreleased, withdrawn }, check))
}

/// Runs every check on `sale`. Each check is one statement, so it reads one
/// consistent snapshot even while the sale is selling.
pub async fn audit(db: &PgPool, sale: &Sale) -> AppResult<AuditReport> {
    let (units, balanced) = balance(db, sale).await?;
    let mut checks = vec![balanced];
    for (name, invariant, description, sql) in CHECKS {
        let (violations, examples) = examples(db, &sale.id, sql).await?;
        checks.push(Check { name, invariant, description, ok: violations == 0, violations, examples });
    }
    let ok = checks.iter().all(|c| c.ok);
    if !ok {
        tracing::error!(sale = %sale.id, "audit found invariant violations");
    }
    Ok(AuditReport { sale_id: sale.id.clone(), ok, checked_at: Utc::now(), units, checks, waiting_room: None })
}
