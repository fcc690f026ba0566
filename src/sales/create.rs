//! Creating a sale: validating its definition, splitting stages into exact
//! counts and writing one row per unit in a handful of bulk statements.

use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use super::{state, AdmissionMode, Sale, SaleAccess, SaleMode, Seating, SALE_COLUMNS};
use crate::error::{AppError, AppResult};
use crate::prices::{self, ValidPrices};
use crate::sessions::{self, SessionRange, ValidSessions};

/// Largest sale floodgate accepts in one definition.
const MAX_UNITS: i64 = 5_000_000;

/// `POST /admin/v1/sales` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSale {
    /// Display name (1 to 200 characters, no control characters).
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// When stage 1 opens; now when omitted.
    pub starts_at: Option<DateTime<Utc>>,
    /// When the sale closes by itself.
    pub ends_at: Option<DateTime<Utc>>,
    /// `fifo` (default) or `lottery`.
    pub mode: Option<SaleMode>,
    /// The units: `{"count": n}` or `{"sections": [...]}`.
    #[serde(deserialize_with = "crate::extractor::objects::required")]
    #[schema(value_type = UnitsChoice)]
    pub units: UnitsSpec,
    /// Percentages per stage, summing to 100; `[100]` when omitted.
    #[schema(min_items = 1, max_items = 100, maximum = 100, minimum = 0)]
    pub stages: Option<Vec<i64>>,
    /// Optional scheduled opening per stage (index 0 is stage 1, ignored).
    pub stage_opens_at: Option<Vec<Option<DateTime<Utc>>>>,
    /// Units one visitor may hold or own; 4 when omitted.
    #[schema(minimum = 1, maximum = 1000)]
    pub per_user_limit: Option<i64>,
    /// Hold lifetime; 600 when omitted.
    #[schema(minimum = 1, maximum = 86400)]
    pub hold_ttl_seconds: Option<i64>,
    /// Shuffle the pre-queue at the start; true when omitted.
    pub shuffle_prequeue: Option<bool>,
    /// Turn the waiting room off (joins are admitted at once); on by default.
    pub waiting_room: Option<bool>,
    /// Admission control settings.
    #[serde(default, deserialize_with = "crate::extractor::objects::optional")]
    pub admission: Option<AdmissionSpec>,
    /// Proof of work asked of each new place (SPEC §4a); off when omitted.
    #[serde(default, deserialize_with = "crate::extractor::objects::optional")]
    pub challenge: Option<ChallengeSpec>,
    /// `public` (default) or `invite`: only signed-in users whose login
    /// token names this sale in a `sale` claim, one place each.
    pub access: Option<SaleAccess>,
    /// Price categories (SPEC §3); none: the units have no price.
    #[serde(default, deserialize_with = "crate::extractor::objects::optional")]
    pub prices: Option<crate::prices::PricesSpec>,
    /// Sessions (timed entry, event series); `units.count` is then each
    /// session's capacity unless a session says otherwise, and `stages`
    /// split every session.
    #[serde(default, deserialize_with = "crate::extractor::objects::optional")]
    pub sessions: Option<crate::sessions::SessionsSpec>,
}

/// Proof-of-work settings of a sale.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeSpec {
    /// Leading zero bits of SHA-256 asked of a new source, 0 to 32 (0:
    /// off). A browser solves 16 in well under a second.
    #[schema(minimum = 0, maximum = 32)]
    pub difficulty_bits: Option<i64>,
    /// The most a source taking many places is asked for, up to 40, not
    /// below `difficulty_bits`; `difficulty_bits + 12` when omitted (at
    /// most 40).
    #[schema(minimum = 0, maximum = 40)]
    pub max_difficulty_bits: Option<i64>,
}

/// Valid proof-of-work settings: `(difficulty_bits, max_difficulty_bits)`.
pub fn validate_challenge(spec: &ChallengeSpec, base: (i16, i16)) -> AppResult<(i16, i16)> {
    let bits = in_range("challenge.difficulty_bits", spec.difficulty_bits, base.0.into(), 0, 32)?;
    let default_max = if spec.difficulty_bits.is_some() { (bits + 12).min(40) } else { i32::from(base.1) };
    let max =
        in_range("challenge.max_difficulty_bits", spec.max_difficulty_bits, i64::from(default_max.max(bits)), 0, 40)?;
    if max < bits {
        return Err(AppError::Invalid(
            "challenge.max_difficulty_bits must not be below challenge.difficulty_bits".into(),
        ));
    }
    Ok((bits as i16, max as i16))
}

/// The units of a sale: exactly one of the two (read as this struct, so a
/// body with both or neither gets a message that says so; documented as
/// [`UnitsChoice`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitsSpec {
    /// General admission: this many numbered units.
    pub count: Option<i64>,
    /// Reserved seating: sections of rows of seats.
    #[serde(default, deserialize_with = "crate::extractor::objects::optional_list")]
    pub sections: Option<Vec<SectionSpec>>,
}

/// The units of a sale.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documentation only: the body is read as `UnitsSpec`
pub enum UnitsChoice {
    /// General admission.
    Count(CountedUnits),
    /// Reserved seating.
    Sections(SectionedUnits),
}

/// General admission: numbered units.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only
pub struct CountedUnits {
    /// This many numbered units.
    #[schema(minimum = 1, maximum = 5_000_000)]
    count: i64,
}

/// Reserved seating: sections of rows of seats.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documentation only
pub struct SectionedUnits {
    /// Sections of rows of seats (at most 5,000,000 seats in all).
    #[schema(min_items = 1, max_items = 200)]
    sections: Vec<SectionSpec>,
}

/// A block of reserved seats, labelled `name/row/seat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SectionSpec {
    /// Section name: 1 to 32 characters, no `/`, no control characters.
    #[schema(min_length = 1, max_length = 32)]
    pub name: String,
    /// Rows, numbered from 1.
    #[schema(minimum = 1, maximum = 10_000)]
    pub rows: i64,
    /// Seats per row, numbered from 1.
    #[schema(minimum = 1, maximum = 10_000)]
    pub seats_per_row: i64,
}

/// Admission settings of the waiting room.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdmissionSpec {
    /// Visitors admitted per second (0: only by hand).
    #[schema(minimum = 0, maximum = 100_000)]
    pub admit_per_second: Option<i64>,
    /// Admitted visitors not yet finished, at most.
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub max_active: Option<i64>,
    /// Time an admitted visitor has to hold.
    #[schema(minimum = 1, maximum = 86_400)]
    pub admission_ttl_seconds: Option<i64>,
    /// Silence after which a waiting visitor loses their place.
    #[schema(minimum = 3, maximum = 86_400)]
    pub abandon_after_seconds: Option<i64>,
    /// `fixed` (default) or `adaptive`: the rate follows the hold path's
    /// health, starting at `admit_per_second`.
    pub mode: Option<AdmissionMode>,
    /// Adaptive mode: the rate never goes above this (0: no ceiling but
    /// `max_active` a second).
    #[schema(minimum = 0, maximum = 1_000_000)]
    pub max_admit_per_second: Option<i64>,
    /// Adaptive mode: the hold p99 the rate keeps under, in milliseconds.
    #[schema(minimum = 1, maximum = 60_000)]
    pub hold_p99_target_ms: Option<i64>,
}

/// A definition that passed validation.
struct ValidSale {
    name: String,
    mode: SaleMode,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    seating: Seating,
    total: i32,
    sections: Vec<Section>,
    stages: Vec<StagePlan>,
    per_user_limit: i32,
    hold_ttl_seconds: i32,
    shuffle_prequeue: bool,
    waiting_room: bool,
    admission: ValidAdmission,
    challenge: (i16, i16),
    access: SaleAccess,
    prices: Option<ValidPrices>,
    sessions: Option<(ValidSessions, Vec<SessionRange>)>,
}

/// Admission settings after validation.
#[derive(Debug, Clone, Copy)]
pub struct ValidAdmission {
    /// Visitors admitted per second.
    pub admit_per_second: i32,
    /// Admitted-but-unfinished cap.
    pub max_active: i32,
    /// Admission lifetime.
    pub admission_ttl_seconds: i32,
    /// Abandonment threshold.
    pub abandon_after_seconds: i32,
    /// Fixed or adaptive rate.
    pub mode: AdmissionMode,
    /// Ceiling of the adaptive rate.
    pub ceiling: Option<i32>,
    /// Hold p99 target of the adaptive rate.
    pub hold_p99_target_ms: i32,
}

impl ValidAdmission {
    /// The settings a sale has now.
    pub fn of(sale: &Sale) -> Self {
        ValidAdmission {
            admit_per_second: sale.admit_per_second,
            max_active: sale.max_active,
            admission_ttl_seconds: sale.admission_ttl_seconds,
            abandon_after_seconds: sale.abandon_after_seconds,
            mode: sale.admission_mode,
            ceiling: sale.admit_ceiling,
            hold_p99_target_ms: sale.hold_p99_target_ms,
        }
    }
}

/// A stage's exact share of the unit ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// Percentage given.
    pub percent: i32,
    /// Units in it.
    pub count: i32,
    /// First unit id (count 0: one past the previous stage).
    pub first: i32,
    /// Last unit id.
    pub last: i32,
    /// Scheduled opening.
    pub opens_at: Option<DateTime<Utc>>,
}

/// Splits `total` units by `percents` into exact counts; the remainder of the
/// rounding goes to the last stage.
pub fn split_stages(total: i32, percents: &[i32]) -> Vec<StagePlan> {
    let mut plans = Vec::with_capacity(percents.len());
    let mut next = 1;
    for (i, &percent) in percents.iter().enumerate() {
        let count = if i + 1 == percents.len() {
            total - (next - 1)
        } else {
            (i64::from(total) * i64::from(percent) / 100) as i32
        };
        plans.push(StagePlan { percent, count, first: next, last: next + count - 1, opens_at: None });
        next += count;
    }
    plans
}

fn in_range(field: &str, value: Option<i64>, default: i64, min: i64, max: i64) -> AppResult<i32> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(AppError::Invalid(format!("{field} must be between {min} and {max}, got {value}")));
    }
    Ok(value as i32)
}

/// Checks an admission spec, with defaults for what it leaves out.
pub fn validate_admission(spec: &AdmissionSpec, base: Option<ValidAdmission>) -> AppResult<ValidAdmission> {
    let base = base.unwrap_or(ValidAdmission {
        admit_per_second: 50,
        max_active: 500,
        admission_ttl_seconds: 300,
        abandon_after_seconds: 60,
        mode: AdmissionMode::Fixed,
        ceiling: None,
        hold_p99_target_ms: 50,
    });
    let ceiling = match spec.max_admit_per_second {
        None => base.ceiling,
        Some(0) => None,
        Some(_) => Some(in_range("admission.max_admit_per_second", spec.max_admit_per_second, 0, 1, 1_000_000)?),
    };
    Ok(ValidAdmission {
        admit_per_second: in_range(
            "admission.admit_per_second",
            spec.admit_per_second,
            base.admit_per_second.into(),
            0,
            100_000,
        )?,
        max_active: in_range("admission.max_active", spec.max_active, base.max_active.into(), 1, 10_000_000)?,
        admission_ttl_seconds: in_range(
            "admission.admission_ttl_seconds",
            spec.admission_ttl_seconds,
            base.admission_ttl_seconds.into(),
            1,
            86_400,
        )?,
        abandon_after_seconds: in_range(
            "admission.abandon_after_seconds",
            spec.abandon_after_seconds,
            base.abandon_after_seconds.into(),
            3,
            86_400,
        )?,
        mode: spec.mode.unwrap_or(base.mode),
        ceiling,
        hold_p99_target_ms: in_range(
            "admission.hold_p99_target_ms",
            spec.hold_p99_target_ms,
            base.hold_p99_target_ms.into(),
            1,
            60_000,
        )?,
    })
}

fn validate(new: NewSale) -> AppResult<ValidSale> {
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::Invalid("name must be 1 to 200 characters".into()));
    }
    crate::error::plain_text("name", &name)?;
    let mode = new.mode.unwrap_or(SaleMode::Fifo);
    let starts_at = new.starts_at.unwrap_or_else(Utc::now);
    if let Some(ends_at) = new.ends_at {
        if ends_at <= starts_at {
            return Err(AppError::Invalid("ends_at must be after starts_at".into()));
        }
    }
    let (seating, mut total, sections) = validate_units(new.units)?;
    let mut stages = validate_stages(total as i32, new.stages, new.stage_opens_at)?;
    let sessions = match new.sessions {
        None => None,
        Some(spec) => {
            let (valid, ranges, units) = validate_sessions(spec, seating, total, &mut stages)?;
            total = units;
            Some((valid, ranges))
        }
    };
    let waiting_room = new.waiting_room.unwrap_or(true);
    if mode == SaleMode::Lottery && !waiting_room {
        return Err(AppError::Invalid("a lottery takes its entries through the waiting room".into()));
    }
    let admission = validate_admission(&new.admission.unwrap_or_default(), None)?;
    let challenge = validate_challenge(&new.challenge.unwrap_or_default(), (0, 0))?;
    let access = new.access.unwrap_or(SaleAccess::Public);
    if challenge.0 > 0 && !waiting_room {
        return Err(AppError::Invalid("proof of work guards the waiting room: challenge needs waiting_room".into()));
    }
    if access == SaleAccess::Invite && !waiting_room {
        return Err(AppError::Invalid("an invite-only sale gives its places through the waiting room".into()));
    }
    let prices = new.prices.map(|spec| validate_prices(spec, total as i32, &sections, &stages)).transpose()?;
    Ok(ValidSale {
        name,
        mode,
        starts_at,
        ends_at: new.ends_at,
        seating,
        total: total as i32,
        sections,
        stages,
        per_user_limit: in_range("per_user_limit", new.per_user_limit, 4, 1, 1000)?,
        hold_ttl_seconds: in_range("hold_ttl_seconds", new.hold_ttl_seconds, 600, 1, 86_400)?,
        shuffle_prequeue: new.shuffle_prequeue.unwrap_or(true),
        waiting_room,
        admission,
        challenge,
        access,
        prices,
        sessions,
    })
}

/// Sessions of a general-admission sale (`capacity`: its `units.count`),
/// with the stages re-cut to the sessions' layout; the sessions, their unit
/// ranges and the sale's total.
fn validate_sessions(
    spec: sessions::SessionsSpec,
    seating: Seating,
    capacity: i64,
    stages: &mut [StagePlan],
) -> AppResult<(ValidSessions, Vec<SessionRange>, i64)> {
    if seating != Seating::General {
        return Err(AppError::Invalid(
            "sessions are general admission: units.count is each session's capacity (no sections)".into(),
        ));
    }
    let valid = sessions::validate(spec, capacity)?;
    let total: i64 = valid.sessions.iter().map(|s| i64::from(s.capacity)).sum();
    if total > MAX_UNITS {
        return Err(AppError::Invalid(format!("a sale has at most {MAX_UNITS} units, its sessions have {total}")));
    }
    let percents: Vec<i32> = stages.iter().map(|s| s.percent).collect();
    let (ranges, per_stage) = sessions::layout(&valid.sessions, &percents);
    let mut next = 1;
    for (plan, count) in stages.iter_mut().zip(per_stage) {
        (plan.count, plan.first, plan.last) = (count, next, next + count - 1);
        next += count;
    }
    Ok((valid, ranges, total))
}

/// Price categories resolved against the sale's sections and stages.
fn validate_prices(
    spec: prices::PricesSpec,
    total: i32,
    sections: &[Section],
    stages: &[StagePlan],
) -> AppResult<ValidPrices> {
    let mut first = 1;
    let sections: Vec<(String, i32, i32)> = sections
        .iter()
        .map(|(name, rows, seats)| {
            let range = (name.clone(), first, first + rows * seats - 1);
            first += rows * seats;
            range
        })
        .collect();
    let stages: Vec<(i32, i32)> = stages.iter().map(|s| (s.first, s.last)).collect();
    prices::validate(spec, &prices::Layout { total, sections: &sections, stages: &stages })
}

/// A validated section: name, rows, seats per row.
type Section = (String, i32, i32);

/// General admission (`count`) or reserved seating (`sections`): the
/// seating, the total and the sections as (name, rows, seats per row).
fn validate_units(units: UnitsSpec) -> AppResult<(Seating, i64, Vec<Section>)> {
    Ok(match (units.count, units.sections) {
        (Some(count), None) => {
            if !(1..=MAX_UNITS).contains(&count) {
                return Err(AppError::Invalid(format!("units.count must be between 1 and {MAX_UNITS}")));
            }
            (Seating::General, count, Vec::new())
        }
        (None, Some(sections)) => {
            if sections.is_empty() || sections.len() > 200 {
                return Err(AppError::Invalid("units.sections must list 1 to 200 sections".into()));
            }
            let mut total = 0i64;
            let mut valid = Vec::with_capacity(sections.len());
            for section in sections {
                let name = section.name.trim().to_owned();
                if name.is_empty() || name.len() > 32 || name.contains('/') {
                    return Err(AppError::Invalid("section names must be 1 to 32 characters without '/'".into()));
                }
                crate::error::plain_text("section name", &name)?;
                if valid.iter().any(|(n, _, _)| *n == name) {
                    return Err(AppError::Invalid(format!("section {name} is listed twice")));
                }
                if !(1..=10_000).contains(&section.rows) || !(1..=10_000).contains(&section.seats_per_row) {
                    return Err(AppError::Invalid("rows and seats_per_row must be between 1 and 10000".into()));
                }
                total += section.rows * section.seats_per_row;
                if total > MAX_UNITS {
                    return Err(AppError::Invalid(format!("a sale has at most {MAX_UNITS} units")));
                }
                valid.push((name, section.rows as i32, section.seats_per_row as i32));
            }
            (Seating::Reserved, total, valid)
        }
        _ => return Err(AppError::Invalid("units needs exactly one of count or sections".into())),
    })
}

/// Stage percentages (default `[100]`) split into exact unit ranges, with
/// their scheduled openings.
fn validate_stages(
    total: i32,
    percents: Option<Vec<i64>>,
    opens_at: Option<Vec<Option<DateTime<Utc>>>>,
) -> AppResult<Vec<StagePlan>> {
    let percents = percents.unwrap_or_else(|| vec![100]);
    if percents.is_empty() || percents.len() > 20 {
        return Err(AppError::Invalid("stages must list 1 to 20 percentages".into()));
    }
    if percents.iter().any(|p| !(1..=100).contains(p)) || percents.iter().sum::<i64>() != 100 {
        return Err(AppError::Invalid("stages must be percentages of 1 to 100 summing to 100".into()));
    }
    let percents: Vec<i32> = percents.iter().map(|&p| p as i32).collect();
    let mut stages = split_stages(total, &percents);
    if let Some(opens) = opens_at {
        if opens.len() > stages.len() {
            return Err(AppError::Invalid("stage_opens_at has more entries than stages".into()));
        }
        for (plan, at) in stages.iter_mut().zip(opens).skip(1) {
            plan.opens_at = at;
        }
    }
    Ok(stages)
}

/// A fresh fairness seed and its published commitment, `sha256(seed)` of
/// the seed's hex text, so anyone can check it with `sha256sum`.
pub fn new_seed() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let seed = hex::encode(bytes);
    let commitment = hex::encode(Sha256::digest(seed.as_bytes()));
    (seed, commitment)
}

fn new_sale_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("s_{}", &id[..14])
}

/// Validates and stores a sale with all its units in one transaction.
pub async fn create_sale(db: &PgPool, new: NewSale) -> AppResult<Sale> {
    let sale = validate(new)?;
    let id = new_sale_id();
    let (seed, commitment) = new_seed();
    let now = Utc::now();
    let initial_state =
        if sale.mode == SaleMode::Lottery || sale.starts_at > now { state::SCHEDULED } else { state::ON_SALE };

    let mut tx = db.begin().await?;
    // Writing a million unit rows is legitimately long; the request-sized
    // default statement timeout is for everything else.
    sqlx::query("SET LOCAL statement_timeout = '300s'").execute(&mut *tx).await?;
    let row = insert_sale(&mut tx, &id, &sale, (&seed, &commitment), initial_state).await?;
    insert_stages(&mut tx, &id, &sale).await?;
    if let Some(prices) = &sale.prices {
        prices::insert(&mut tx, &id, prices).await?;
    }
    match &sale.sessions {
        Some((valid, ranges)) => {
            sessions::insert(&mut tx, &id, valid, ranges).await?;
            insert_session_units(&mut tx, &id, &sale, ranges).await?;
        }
        None => insert_units(&mut tx, &id, &sale).await?,
    }
    tx.commit().await?;
    // Fresh statistics right away: planning the claim on the stale ones of
    // an empty table (before autovacuum catches up) picked a plan that ran
    // at 17 % of the pgbench claim ceiling instead of 80 % (loadtest/RESULTS.md).
    sqlx::query("ANALYZE units").execute(db).await?;
    Ok(row)
}

/// The sale's row.
async fn insert_sale(
    tx: &mut PgConnection,
    id: &str,
    sale: &ValidSale,
    (seed, commitment): (&str, &str),
    initial_state: &str,
) -> AppResult<Sale> {
    Ok(sqlx::query_as::<_, Sale>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO sales (id, name, mode, state, starts_at, ends_at, seating, total_units, per_user_limit, \
         hold_ttl_seconds, shuffle_prequeue, released_upto, released_stages, waiting_room, admit_per_second, \
         max_active, admission_ttl_seconds, abandon_after_seconds, seed, seed_commitment, admission_mode, \
         admit_ceiling, hold_p99_target_ms, challenge_bits, challenge_max_bits, access, currency, time_zone, \
         session_count, limit_per_session, no_overlap) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,1,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,\
         $27,$28,$29,$30) \
         RETURNING {SALE_COLUMNS}"
    )))
    .bind(id)
    .bind(&sale.name)
    .bind(sale.mode.as_str())
    .bind(initial_state)
    .bind(sale.starts_at)
    .bind(sale.ends_at)
    .bind(sale.seating.as_str())
    .bind(sale.total)
    .bind(sale.per_user_limit)
    .bind(sale.hold_ttl_seconds)
    .bind(sale.shuffle_prequeue)
    .bind(sale.stages[0].last)
    .bind(sale.waiting_room)
    .bind(sale.admission.admit_per_second)
    .bind(sale.admission.max_active)
    .bind(sale.admission.admission_ttl_seconds)
    .bind(sale.admission.abandon_after_seconds)
    .bind(seed)
    .bind(commitment)
    .bind(sale.admission.mode.as_str())
    .bind(sale.admission.ceiling)
    .bind(sale.admission.hold_p99_target_ms)
    .bind(sale.challenge.0)
    .bind(sale.challenge.1)
    .bind(sale.access.as_str())
    .bind(sale.prices.as_ref().map(|p| p.currency.as_str()))
    .bind(sale.sessions.as_ref().map(|(s, _)| s.time_zone.as_str()))
    .bind(sale.sessions.as_ref().map_or(0, |(s, _)| s.sessions.len() as i32))
    .bind(sale.sessions.as_ref().is_some_and(|(s, _)| s.limit_per_session))
    .bind(sale.sessions.as_ref().is_some_and(|(s, _)| s.no_overlap))
    .fetch_one(tx)
    .await?)
}

/// One row per stage; stage 1 is released at the start.
async fn insert_stages(tx: &mut PgConnection, id: &str, sale: &ValidSale) -> AppResult<()> {
    for (i, plan) in sale.stages.iter().enumerate() {
        let stage = i as i32 + 1;
        sqlx::query(
            "INSERT INTO sale_stages (sale_id, stage, percent, unit_count, first_unit, last_unit, opens_at, released_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(stage)
        .bind(plan.percent)
        .bind(plan.count)
        .bind(plan.first)
        .bind(plan.last)
        .bind(plan.opens_at)
        .bind((stage == 1).then_some(sale.starts_at))
        .execute(&mut *tx)
        .await?;
    }

    Ok(())
}

/// One row per unit, in a statement per section (or one for general
/// admission).
async fn insert_units(tx: &mut PgConnection, id: &str, sale: &ValidSale) -> AppResult<()> {
    // width_bucket(id, first ids of the stages) is the stage of a unit id,
    // and likewise of the price ranges its category, so each bulk insert
    // assigns both without a per-row subquery.
    let stage_starts: Vec<i32> = sale.stages.iter().map(|s| s.first).collect();
    let (price_starts, categories) = prices::unit_categories(sale.prices.as_ref());
    if sale.sections.is_empty() {
        sqlx::query(
            "INSERT INTO units (sale_id, id, stage, status, category) \
             SELECT $1, g, width_bucket(g, $2::int[]), 'available', ($4::smallint[])[width_bucket(g, $5::int[])] \
             FROM generate_series(1, $3) g",
        )
        .bind(id)
        .bind(&stage_starts)
        .bind(sale.total)
        .bind(&categories)
        .bind(&price_starts)
        .execute(&mut *tx)
        .await?;
    } else {
        let mut offset = 0i32;
        for (name, rows, seats) in &sale.sections {
            sqlx::query(
                "INSERT INTO units (sale_id, id, stage, label, status, category) \
                 SELECT $1, u, width_bucket(u, $2::int[]), $3 || '/' || r || '/' || s, 'available', \
                        ($7::smallint[])[width_bucket(u, $8::int[])] \
                 FROM generate_series(1, $4) r, generate_series(1, $5) s, \
                      LATERAL (SELECT $6 + (r - 1) * $5 + s AS u) ids",
            )
            .bind(id)
            .bind(&stage_starts)
            .bind(name)
            .bind(rows)
            .bind(seats)
            .bind(offset)
            .bind(&categories)
            .bind(&price_starts)
            .execute(&mut *tx)
            .await?;
            offset += rows * seats;
        }
    }
    Ok(())
}

/// The units of a sale with sessions: one statement over the sessions'
/// ranges (stage by stage, session by session).
async fn insert_session_units(
    tx: &mut PgConnection,
    id: &str,
    sale: &ValidSale,
    ranges: &[SessionRange],
) -> AppResult<()> {
    let (price_starts, categories) = prices::unit_categories(sale.prices.as_ref());
    let firsts: Vec<i32> = ranges.iter().map(|r| r.first).collect();
    let counts: Vec<i32> = ranges.iter().map(|r| r.count).collect();
    let stages: Vec<i16> = ranges.iter().map(|r| r.stage).collect();
    let codes: Vec<i32> = ranges.iter().map(|r| r.session).collect();
    sqlx::query(
        "INSERT INTO units (sale_id, id, stage, status, category, session) \
         SELECT $1, r.f + g - 1, r.st, 'available', ($6::smallint[])[width_bucket(r.f + g - 1, $7::int[])], r.se \
         FROM unnest($2::int[], $3::int[], $4::smallint[], $5::int[]) AS r(f, n, st, se), generate_series(1, r.n) g",
    )
    .bind(id)
    .bind(&firsts)
    .bind(&counts)
    .bind(&stages)
    .bind(&codes)
    .bind(&categories)
    .bind(&price_starts)
    .execute(tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_split_exactly_with_remainder_last() {
        let plans = split_stages(1000, &[30, 40, 30]);
        let counts: Vec<i32> = plans.iter().map(|p| p.count).collect();
        assert_eq!(counts, vec![300, 400, 300]);
        assert_eq!((plans[1].first, plans[1].last), (301, 700));

        let plans = split_stages(10, &[33, 33, 34]);
        let counts: Vec<i32> = plans.iter().map(|p| p.count).collect();
        assert_eq!(counts, vec![3, 3, 4]);
        assert_eq!(plans.iter().map(|p| p.count).sum::<i32>(), 10);
        assert_eq!(plans[2].last, 10);
    }

    #[test]
    fn seed_commitment_is_sha256_of_seed_text() {
        let (seed, commitment) = new_seed();
        assert_eq!(seed.len(), 64);
        assert_eq!(commitment, hex::encode(Sha256::digest(seed.as_bytes())));
    }
}
