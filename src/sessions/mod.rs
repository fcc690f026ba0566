//! Sessions (SPEC §3): timed entry and event series. A sale may have many
//! sessions, each a time range with its own units and stages, behind the
//! sale's one waiting room; a hold names its session.
//!
//! Sessions are listed explicitly or generated from a recurrence in the
//! sale's IANA time zone (stored in UTC, shown in local time too): every day
//! of a date range (optionally some weekdays, minus exceptions), from a
//! local start time to a local end time every N minutes. A local time that
//! does not exist on a day (the hour skipped when clocks go forward) has no
//! session; one that exists twice (clocks go back) starts at the first.
//!
//! Units are numbered stage by stage across the sale, session by session
//! within a stage, so a stage stays one id range of the sale and a session
//! is one id range per stage (`session_ranges`, see migrations/0008). This
//! module owns `sale_sessions`, `session_ranges` and `session_bookings`.
//!
//! A session's life: `on_sale` ⇄ `paused` → `closed` (by an admin, or by
//! the clock once it has ended) | `cancelled` (its holds released and its
//! orders cancelled with `order.refund_due`); the units of a closed or
//! cancelled session are `withdrawn`: they never return to stock.

pub mod routes;

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};

/// Most sessions a sale may have.
pub const MAX_SESSIONS: usize = 10_000;

/// `sessions` of a new sale: listed, generated, or both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionsSpec {
    /// IANA time zone the sale's sessions are generated and shown in
    /// (e.g. `Europe/Amsterdam`).
    #[schema(example = "Europe/Amsterdam")]
    pub time_zone: String,
    /// Explicit sessions.
    #[serde(default, deserialize_with = "crate::extractor::objects::optional_list")]
    pub list: Option<Vec<SessionSpec>>,
    /// Sessions generated from a recurrence.
    #[serde(default, deserialize_with = "crate::extractor::objects::optional")]
    pub recurrence: Option<Recurrence>,
    /// `sale` (default): the per-user limit counts across all sessions;
    /// `session`: it counts per session.
    pub per_user_limit: Option<LimitScope>,
    /// A buyer cannot hold or own two sessions whose times overlap
    /// (enforced by Postgres); off by default.
    pub no_overlap: Option<bool>,
}

/// Where the per-user limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitScope {
    /// Across the whole sale.
    Sale,
    /// In each session.
    Session,
}

/// One explicit session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// Start (RFC 3339).
    pub starts_at: DateTime<Utc>,
    /// End, after the start.
    pub ends_at: DateTime<Utc>,
    /// Units of this session; the sale's `units.count` when omitted.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub capacity: Option<i64>,
}

/// Sessions every `every_minutes` from `start` to `end` (local times) on
/// every day from `from` to `to` (inclusive).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    /// First day (`YYYY-MM-DD`).
    #[schema(value_type = String, format = Date)]
    pub from: NaiveDate,
    /// Last day, at most 3 years after `from`.
    #[schema(value_type = String, format = Date)]
    pub to: NaiveDate,
    /// Local start of the first session of a day (`HH:MM`).
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "10:00")]
    pub start: String,
    /// Local time by which the day's last session ends (`HH:MM`).
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "18:00")]
    pub end: String,
    /// Minutes from one session's start to the next.
    #[schema(minimum = 5, maximum = 1440)]
    pub every_minutes: i64,
    /// Length of a session; `every_minutes` when omitted.
    #[schema(minimum = 5, maximum = 1440)]
    pub duration_minutes: Option<i64>,
    /// Only these weekdays (1 = Monday … 7 = Sunday); every day when omitted.
    pub weekdays: Option<Vec<u8>>,
    /// Days without sessions.
    #[schema(value_type = Option<Vec<String>>)]
    pub except: Option<Vec<NaiveDate>>,
    /// Units of each generated session; the sale's `units.count` when omitted.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub capacity: Option<i64>,
}

/// A session that passed validation (in time order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Units.
    pub capacity: i32,
}

/// Sessions that passed validation.
#[derive(Debug, Clone)]
pub struct ValidSessions {
    /// IANA name.
    pub time_zone: String,
    /// In time order; code = index + 1.
    pub sessions: Vec<Planned>,
    /// The per-user limit counts per session.
    pub limit_per_session: bool,
    /// Overlapping sessions are refused to one buyer.
    pub no_overlap: bool,
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::Invalid(message.into())
}

/// Checks a sessions spec; `default_capacity` is the sale's `units.count`.
pub fn validate(spec: SessionsSpec, default_capacity: i64) -> AppResult<ValidSessions> {
    let tz: Tz = spec
        .time_zone
        .trim()
        .parse()
        .map_err(|_| invalid(format!("sessions.time_zone: {} is not an IANA time zone", spec.time_zone)))?;
    let capacity = |field: &str, value: Option<i64>| -> AppResult<i32> {
        let value = value.unwrap_or(default_capacity);
        if !(1..=1_000_000).contains(&value) {
            return Err(invalid(format!("{field} must be between 1 and 1000000")));
        }
        Ok(value as i32)
    };
    let mut sessions = Vec::new();
    for (i, s) in spec.list.unwrap_or_default().into_iter().enumerate() {
        if s.ends_at <= s.starts_at {
            return Err(invalid(format!("sessions.list[{i}].ends_at must be after its starts_at")));
        }
        let capacity = capacity(&format!("sessions.list[{i}].capacity"), s.capacity)?;
        sessions.push(Planned { starts_at: s.starts_at, ends_at: s.ends_at, capacity });
    }
    if let Some(recurrence) = spec.recurrence {
        let capacity = capacity("sessions.recurrence.capacity", recurrence.capacity)?;
        sessions.extend(generate(&recurrence, tz, capacity)?);
    }
    if sessions.is_empty() {
        return Err(invalid("sessions must list or generate at least one session"));
    }
    if sessions.len() > MAX_SESSIONS {
        return Err(invalid(format!("a sale has at most {MAX_SESSIONS} sessions, these are {}", sessions.len())));
    }
    sessions.sort_by_key(|s| (s.starts_at, s.ends_at));
    Ok(ValidSessions {
        time_zone: tz.name().to_owned(),
        sessions,
        limit_per_session: spec.per_user_limit == Some(LimitScope::Session),
        no_overlap: spec.no_overlap.unwrap_or(false),
    })
}

fn local_time(field: &str, value: &str) -> AppResult<NaiveTime> {
    NaiveTime::parse_from_str(value.trim(), "%H:%M").map_err(|_| invalid(format!("{field} must be a time HH:MM")))
}

/// The sessions a recurrence describes, in `tz`.
pub fn generate(r: &Recurrence, tz: Tz, capacity: i32) -> AppResult<Vec<Planned>> {
    let (start, end) =
        (local_time("sessions.recurrence.start", &r.start)?, local_time("sessions.recurrence.end", &r.end)?);
    if !(5..=1440).contains(&r.every_minutes) {
        return Err(invalid("sessions.recurrence.every_minutes must be between 5 and 1440"));
    }
    let duration = r.duration_minutes.unwrap_or(r.every_minutes);
    if !(5..=1440).contains(&duration) {
        return Err(invalid("sessions.recurrence.duration_minutes must be between 5 and 1440"));
    }
    if r.to < r.from || (r.to - r.from).num_days() > 3 * 366 {
        return Err(invalid("sessions.recurrence.to must be on or after from, at most 3 years later"));
    }
    if end <= start {
        return Err(invalid("sessions.recurrence.end must be after start (same day)"));
    }
    let weekdays: Option<HashSet<Weekday>> = match &r.weekdays {
        None => None,
        Some(days) => Some(
            days.iter()
                .map(|&d| {
                    Weekday::try_from(d.wrapping_sub(1))
                        .map_err(|_| invalid("sessions.recurrence.weekdays are 1 (Monday) to 7 (Sunday)"))
                })
                .collect::<AppResult<_>>()?,
        ),
    };
    let except: HashSet<NaiveDate> = r.except.iter().flatten().copied().collect();
    let (every, length) = (Duration::minutes(r.every_minutes), Duration::minutes(duration));
    let mut sessions = Vec::new();
    for day in r.from.iter_days().take_while(|d| *d <= r.to) {
        if except.contains(&day) || weekdays.as_ref().is_some_and(|w| !w.contains(&day.weekday())) {
            continue;
        }
        let mut at = day.and_time(start);
        while at + length <= day.and_time(end) {
            // earliest(): the first of an hour that exists twice; None for
            // one that does not exist (skipped).
            if let Some(local) = tz.from_local_datetime(&at).earliest() {
                let starts_at = local.with_timezone(&Utc);
                sessions.push(Planned { starts_at, ends_at: starts_at + length, capacity });
            }
            at += every;
            if sessions.len() > MAX_SESSIONS {
                return Err(invalid(format!("a sale has at most {MAX_SESSIONS} sessions")));
            }
        }
    }
    Ok(sessions)
}

/// A session's unit range in one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRange {
    /// First unit id.
    pub first: i32,
    /// Units in it.
    pub count: i32,
    /// Stage (1-based).
    pub stage: i16,
    /// Session code (1-based).
    pub session: i32,
}

/// Lays the sessions' units out stage by stage: each session's capacity is
/// split by `percents` (exact, remainder to the last stage); the ranges and
/// the total per stage.
pub fn layout(sessions: &[Planned], percents: &[i32]) -> (Vec<SessionRange>, Vec<i32>) {
    let splits: Vec<Vec<i32>> = sessions
        .iter()
        .map(|s| crate::sales::create::split_stages(s.capacity, percents).iter().map(|p| p.count).collect())
        .collect();
    let mut ranges = Vec::new();
    let mut per_stage = vec![0; percents.len()];
    let mut next = 1;
    for (stage, total) in per_stage.iter_mut().enumerate() {
        for (i, split) in splits.iter().enumerate() {
            let count = split[stage];
            if count > 0 {
                ranges.push(SessionRange { first: next, count, stage: stage as i16 + 1, session: i as i32 + 1 });
                next += count;
            }
            *total += count;
        }
    }
    (ranges, per_stage)
}

/// Stores a new sale's sessions and their ranges.
pub async fn insert(
    tx: &mut PgConnection,
    sale_id: &str,
    valid: &ValidSessions,
    ranges: &[SessionRange],
) -> AppResult<()> {
    let starts: Vec<DateTime<Utc>> = valid.sessions.iter().map(|s| s.starts_at).collect();
    let ends: Vec<DateTime<Utc>> = valid.sessions.iter().map(|s| s.ends_at).collect();
    let capacities: Vec<i32> = valid.sessions.iter().map(|s| s.capacity).collect();
    sqlx::query(
        "INSERT INTO sale_sessions (sale_id, code, starts_at, ends_at, capacity) \
         SELECT $1, s.ord, s.starts_at, s.ends_at, s.capacity \
         FROM unnest($2::timestamptz[], $3::timestamptz[], $4::int[]) WITH ORDINALITY AS s(starts_at, ends_at, capacity, ord)",
    )
    .bind(sale_id)
    .bind(&starts)
    .bind(&ends)
    .bind(&capacities)
    .execute(&mut *tx)
    .await?;
    let firsts: Vec<i32> = ranges.iter().map(|r| r.first).collect();
    let lasts: Vec<i32> = ranges.iter().map(|r| r.first + r.count - 1).collect();
    let codes: Vec<i32> = ranges.iter().map(|r| r.session).collect();
    sqlx::query(
        "INSERT INTO session_ranges (sale_id, first_unit, last_unit, session) \
         SELECT $1, r.f, r.l, r.s FROM unnest($2::int[], $3::int[], $4::int[]) AS r(f, l, s)",
    )
    .bind(sale_id)
    .bind(&firsts)
    .bind(&lasts)
    .bind(&codes)
    .execute(tx)
    .await?;
    Ok(())
}

crate::text_enum! {
    /// Where a session is in its life (`sale_sessions.state`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum SessionState {
        /// Holds are possible (while the sale is on sale).
        OnSale => "on_sale",
        /// Holds stopped by an admin for now.
        Paused => "paused",
        /// Over (by an admin, or ended): its free units are withdrawn.
        Closed => "closed",
        /// Cancelled: its orders cancelled and refunded, nothing back to stock.
        Cancelled => "cancelled",
    }
}

/// A session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    /// Code (1-based, in time order).
    pub code: i32,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// Units.
    pub capacity: i32,
    /// State.
    #[sqlx(try_from = "String")]
    pub state: SessionState,
}

/// One page of a sale's sessions starting in `[from, to)`, after code
/// `after`, at most `limit`.
pub async fn page(
    db: &PgPool,
    sale_id: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    after: i32,
    limit: i64,
) -> AppResult<Vec<Session>> {
    let statement = sqlx::query_as(
        "SELECT code, starts_at, ends_at, capacity, state FROM sale_sessions \
         WHERE sale_id = $1 AND starts_at >= coalesce($2, '-infinity') AND starts_at < coalesce($3, 'infinity') \
           AND code > $4 ORDER BY starts_at, code LIMIT $5",
    )
    .bind(sale_id)
    .bind(from)
    .bind(to)
    .bind(after)
    .bind(limit);
    crate::store::with_pg(db, "sessions_page", async |conn| statement.fetch_all(conn).await.map_err(AppError::from))
        .await
}

/// The session a hold or an order is for, in its answer (flattened: the
/// fields `session`, `session_starts_at`, `session_ends_at`, absent for a
/// sale without sessions).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SessionRef {
    /// The session's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// When it starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_starts_at: Option<DateTime<Utc>>,
    /// When it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_ends_at: Option<DateTime<Utc>>,
}

impl SessionRef {
    /// Session `code` of a sale with its times (empty without a session).
    pub async fn load(conn: &mut PgConnection, sale_id: &str, code: Option<i32>) -> AppResult<SessionRef> {
        let Some(code) = code else {
            return Ok(SessionRef::default());
        };
        let times: Option<(DateTime<Utc>, DateTime<Utc>)> =
            sqlx::query_as("SELECT starts_at, ends_at FROM sale_sessions WHERE sale_id = $1 AND code = $2")
                .bind(sale_id)
                .bind(code)
                .fetch_optional(conn)
                .await?;
        Ok(SessionRef {
            session: Some(code.to_string()),
            session_starts_at: times.map(|t| t.0),
            session_ends_at: times.map(|t| t.1),
        })
    }
}

/// What an admin can do to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionAction {
    /// Stop holds in it for now.
    Pause,
    /// Go on after a pause.
    Resume,
    /// End it: its free units are withdrawn; held units may still be paid.
    Close,
    /// Cancel it: holds released, orders cancelled and refunded, every unit
    /// withdrawn.
    Cancel,
}

/// The state `action` leads to from `state`; 409 `invalid_transition` else.
pub fn next_state(state: SessionState, action: SessionAction) -> AppResult<SessionState> {
    use SessionState::*;
    match (action, state) {
        (SessionAction::Pause, OnSale | Paused) => Ok(Paused),
        (SessionAction::Resume, OnSale | Paused) => Ok(OnSale),
        (SessionAction::Close, OnSale | Paused | Closed) => Ok(Closed),
        (SessionAction::Cancel, _) => Ok(Cancelled),
        (action, state) => {
            let done = match action {
                SessionAction::Pause => "paused",
                SessionAction::Resume => "resumed",
                SessionAction::Close => "closed",
                SessionAction::Cancel => "cancelled",
            };
            Err(AppError::conflict("invalid_transition", format!("a {} session cannot be {done}", state.as_str())))
        }
    }
}

/// Applies `action` to session `code` of `sale_id` in one transaction;
/// returns the session after it.
#[tracing::instrument(name = "session action", skip(db))]
pub async fn act(db: &PgPool, sale_id: &str, code: i32, action: SessionAction) -> AppResult<Session> {
    let mut tx = db.begin().await?;
    let session: Session = sqlx::query_as(
        "SELECT code, starts_at, ends_at, capacity, state FROM sale_sessions WHERE sale_id = $1 AND code = $2 FOR UPDATE",
    )
    .bind(sale_id)
    .bind(code)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(AppError::NotFound("session"))?;
    let new_state = next_state(session.state, action)?;
    if new_state != session.state {
        sqlx::query("UPDATE sale_sessions SET state = $3 WHERE sale_id = $1 AND code = $2")
            .bind(sale_id)
            .bind(code)
            .bind(new_state.as_str())
            .execute(&mut *tx)
            .await?;
        if matches!(new_state, SessionState::Closed | SessionState::Cancelled) {
            withdraw_free_units(&mut tx, sale_id, code).await?;
        }
        if new_state == SessionState::Cancelled {
            cancel_holds_and_orders(&mut tx, sale_id, code).await?;
        }
    }
    tx.commit().await?;
    Ok(Session { state: new_state, ..session })
}

/// The free units of a session leave the stock for good.
async fn withdraw_free_units(tx: &mut PgConnection, sale_id: &str, code: i32) -> AppResult<u64> {
    Ok(sqlx::query(
        "UPDATE units u SET status = 'withdrawn' FROM session_ranges r \
         WHERE r.sale_id = $1 AND r.session = $2 AND u.sale_id = r.sale_id \
           AND u.id BETWEEN r.first_unit AND r.last_unit AND u.status = 'available'",
    )
    .bind(sale_id)
    .bind(code)
    .execute(tx)
    .await?
    .rows_affected())
}

/// A cancelled session's active holds are released and its confirmed
/// orders cancelled (`order.cancelled` and `order.refund_due`); their units
/// are withdrawn (the session's state is `cancelled` already).
async fn cancel_holds_and_orders(tx: &mut PgConnection, sale_id: &str, code: i32) -> AppResult<()> {
    crate::inventory::release_session_holds(tx, sale_id, code).await?;
    crate::orders::cancel_session_orders(tx, sale_id, code, "session_cancelled").await
}

/// Books a hold's session for its buyer where the sale refuses overlapping
/// sessions (a no-op otherwise); `false` when Postgres refuses it because the
/// buyer holds or owns an overlapping session. Leaves `conn`'s transaction
/// aborted on a refusal: call it inside a savepoint.
pub async fn rebook(conn: &mut PgConnection, hold_id: uuid::Uuid) -> AppResult<bool> {
    let booked = sqlx::query(
        "INSERT INTO session_bookings (hold_id, sale_id, visitor_id, session, during) \
         SELECT h.id, h.sale_id, h.visitor_id, h.session, tstzrange(ss.starts_at, ss.ends_at) \
         FROM holds h JOIN sales s ON s.id = h.sale_id \
         JOIN sale_sessions ss ON ss.sale_id = h.sale_id AND ss.code = h.session \
         WHERE h.id = $1 AND s.no_overlap",
    )
    .bind(hold_id)
    .execute(conn)
    .await;
    match booked {
        Ok(_) => Ok(true),
        Err(e) if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23P01") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A hold let go (or its order cancelled) no longer books its session.
pub async fn unbook(conn: &mut PgConnection, hold_id: uuid::Uuid) -> AppResult<()> {
    sqlx::query("DELETE FROM session_bookings WHERE hold_id = $1").bind(hold_id).execute(conn).await?;
    Ok(())
}

/// Closes the sessions that have ended (the clock, every instance: one
/// conditional statement, so they do not get in each other's way) and
/// withdraws their free units. Returns how many closed.
pub async fn close_ended(db: &PgPool) -> AppResult<u64> {
    let statement = sqlx::query(
        "WITH ended AS ( \
             UPDATE sale_sessions SET state = 'closed' \
             WHERE state IN ('on_sale', 'paused') AND ends_at <= now() RETURNING sale_id, code) \
         UPDATE units u SET status = 'withdrawn' FROM session_ranges r JOIN ended e \
             ON e.sale_id = r.sale_id AND e.code = r.session \
         WHERE u.sale_id = r.sale_id AND u.id BETWEEN r.first_unit AND r.last_unit AND u.status = 'available'",
    );
    crate::store::with_pg(db, "close_sessions", async |conn| {
        statement.execute(conn).await.map(|r| r.rows_affected()).map_err(AppError::from)
    })
    .await
}

/// A session's start in the sale's time zone, as RFC 3339 with its offset.
pub fn local(at: DateTime<Utc>, time_zone: &str) -> Option<String> {
    let tz: Tz = time_zone.parse().ok()?;
    Some(at.with_timezone(&tz).to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recurrence(from: &str, to: &str) -> Recurrence {
        Recurrence {
            from: from.parse().unwrap(),
            to: to.parse().unwrap(),
            start: "10:00".into(),
            end: "18:00".into(),
            every_minutes: 30,
            duration_minutes: None,
            weekdays: None,
            except: None,
            capacity: None,
        }
    }

    #[test]
    fn a_recurrence_is_exact_across_a_daylight_saving_change() {
        // Amsterdam leaves summer time on 2026-10-25: 10:00 local is 08:00Z
        // the day before and 09:00Z that day.
        let tz: Tz = "Europe/Amsterdam".parse().unwrap();
        let sessions = generate(&recurrence("2026-10-24", "2026-10-25"), tz, 50).unwrap();
        assert_eq!(sessions.len(), 32, "16 half-hour slots from 10:00 to 18:00 on each day");
        assert_eq!(sessions[0].starts_at.to_rfc3339(), "2026-10-24T08:00:00+00:00");
        assert_eq!(sessions[16].starts_at.to_rfc3339(), "2026-10-25T09:00:00+00:00");
        assert_eq!(sessions[31].ends_at.to_rfc3339(), "2026-10-25T17:00:00+00:00");
        assert_eq!(local(sessions[16].starts_at, "Europe/Amsterdam").unwrap(), "2026-10-25T10:00:00+01:00");
    }

    #[test]
    fn skipped_and_repeated_local_hours_and_exceptions() {
        // 2026-03-29 02:00 does not exist in Amsterdam; 2026-10-25 02:30 exists twice.
        let tz: Tz = "Europe/Amsterdam".parse().unwrap();
        let mut night = recurrence("2026-03-29", "2026-03-29");
        (night.start, night.end, night.every_minutes) = ("01:30".into(), "03:30".into(), 30);
        let starts: Vec<String> =
            generate(&night, tz, 1).unwrap().iter().map(|s| s.starts_at.format("%H:%M").to_string()).collect();
        assert_eq!(starts, ["00:30", "01:00"], "01:30 and 03:00 local; 02:00 and 02:30 do not exist that night");
        let mut back = recurrence("2026-10-25", "2026-10-25");
        (back.start, back.end, back.every_minutes) = ("02:30".into(), "03:00".into(), 30);
        let first = generate(&back, tz, 1).unwrap();
        assert_eq!(first[0].starts_at.to_rfc3339(), "2026-10-25T00:30:00+00:00", "the first 02:30 (summer time)");
        let mut weekdays = recurrence("2026-12-21", "2026-12-27");
        (weekdays.weekdays, weekdays.except) = (Some(vec![1, 2, 3, 4, 5]), Some(vec!["2026-12-25".parse().unwrap()]));
        assert_eq!(generate(&weekdays, tz, 1).unwrap().len(), 4 * 16, "Mon-Thu: Friday the 25th is an exception");
    }

    #[test]
    fn units_are_laid_out_stage_by_stage_and_session_by_session() {
        let at = |h| Utc.with_ymd_and_hms(2027, 1, 1, h, 0, 0).unwrap();
        let sessions: Vec<Planned> = [(10, 10), (11, 20)]
            .iter()
            .map(|&(h, c)| Planned { starts_at: at(h), ends_at: at(h + 1), capacity: c })
            .collect();
        let (ranges, per_stage) = layout(&sessions, &[30, 70]);
        let got: Vec<(i32, i32, i16, i32)> = ranges.iter().map(|r| (r.first, r.count, r.stage, r.session)).collect();
        assert_eq!(got, [(1, 3, 1, 1), (4, 6, 1, 2), (10, 7, 2, 1), (17, 14, 2, 2)]);
        assert_eq!(per_stage, [9, 21]);
    }

    #[test]
    fn session_actions_follow_the_life_cycle() {
        use SessionState::*;
        assert_eq!(next_state(OnSale, SessionAction::Pause).unwrap(), Paused);
        assert_eq!(next_state(Paused, SessionAction::Resume).unwrap(), OnSale);
        assert_eq!(next_state(Paused, SessionAction::Close).unwrap(), Closed);
        assert_eq!(next_state(Closed, SessionAction::Cancel).unwrap(), Cancelled);
        assert!(next_state(Closed, SessionAction::Resume).is_err());
        assert!(next_state(Cancelled, SessionAction::Close).is_err());
    }
}
