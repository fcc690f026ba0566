//! Prices (SPEC §3): a sale's price categories and which units each covers.
//!
//! A sale may define categories (`name`, `amount` in the currency's minor
//! units, one ISO 4217 `currency` for the sale); then every unit has exactly
//! one. A category covers reserved-seating sections, stages, or unit-id
//! ranges; a single category with none of them covers every unit. Each of
//! these is a contiguous id range (units are numbered section by section,
//! stage by stage), so the categories resolve into a partition of
//! `1..=total` into ranges, checked here: no unit without a price, none with
//! two. Stored in `price_categories` and `price_ranges`
//! (migrations/0007), which this module owns; `units.category` is written
//! with the units, from the same ranges.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;

use crate::error::{AppError, AppResult};

/// Most categories a sale may have.
const MAX_CATEGORIES: usize = 100;

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// In the currency's minor units (cents for EUR), as payment providers count.
    #[schema(minimum = 0)]
    pub amount: i64,
    /// ISO 4217 code.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
}

/// `prices` of a new sale.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PricesSpec {
    /// ISO 4217 code (three capital letters), one for the whole sale.
    #[schema(pattern = "^[A-Z]{3}$", example = "EUR")]
    pub currency: String,
    /// The categories; together they cover every unit exactly once.
    #[serde(deserialize_with = "crate::extractor::objects::required_list")]
    #[schema(min_items = 1, max_items = 100)]
    pub categories: Vec<CategorySpec>,
}

/// One price category and the units it covers: `sections`, `stages` or
/// `units` (at most one; none: every unit, for a sale of one price).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    /// Name buyers see and holds may ask for (1 to 32 characters).
    #[schema(min_length = 1, max_length = 32)]
    pub name: String,
    /// Price of one unit in minor units.
    #[schema(minimum = 0, maximum = 100_000_000_000_i64)]
    pub amount: i64,
    /// Reserved seating: these sections.
    #[schema(min_items = 1)]
    pub sections: Option<Vec<String>>,
    /// These stages (1-based): "early bird" in stage 1.
    #[schema(min_items = 1)]
    pub stages: Option<Vec<i64>>,
    /// These unit-id ranges (general admission numbers, inclusive).
    #[serde(default, deserialize_with = "crate::extractor::objects::optional_list")]
    #[schema(min_items = 1)]
    pub units: Option<Vec<UnitRange>>,
}

/// Unit ids `from..=to`.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitRange {
    /// First unit id (1-based).
    #[schema(minimum = 1)]
    pub from: i64,
    /// Last unit id, inclusive.
    #[schema(minimum = 1)]
    pub to: i64,
}

/// A unit-id range of a category, as stored: `first..=last` in `category`
/// (1-based code, the category's place in the list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceRange {
    /// First unit id.
    pub first: i32,
    /// Last unit id.
    pub last: i32,
    /// Category code.
    pub category: i16,
}

/// Prices that passed validation.
#[derive(Debug, Clone)]
pub struct ValidPrices {
    /// ISO 4217 code.
    pub currency: String,
    /// Name and amount per category, code = index + 1.
    pub categories: Vec<(String, i64)>,
    /// The partition of `1..=total`, by first unit.
    pub ranges: Vec<PriceRange>,
}

/// What the units of a new sale look like, for resolving categories:
/// sections by name with their id ranges, stages' id ranges.
pub struct Layout<'a> {
    /// Units in all.
    pub total: i32,
    /// (name, first id, last id) per section; empty for general admission.
    pub sections: &'a [(String, i32, i32)],
    /// (first id, last id) per stage.
    pub stages: &'a [(i32, i32)],
}

fn invalid(message: String) -> AppError {
    AppError::Invalid(message)
}

/// Checks `spec` against the sale's units and resolves it into ranges.
pub fn validate(spec: PricesSpec, layout: &Layout) -> AppResult<ValidPrices> {
    let currency = spec.currency.trim().to_owned();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(invalid("prices.currency must be an ISO 4217 code of three capital letters, e.g. EUR".into()));
    }
    if spec.categories.is_empty() || spec.categories.len() > MAX_CATEGORIES {
        return Err(invalid(format!("prices.categories must list 1 to {MAX_CATEGORIES} categories")));
    }
    let single = spec.categories.len() == 1;
    let mut categories = Vec::with_capacity(spec.categories.len());
    let mut ranges = Vec::new();
    for (i, category) in spec.categories.into_iter().enumerate() {
        let field = format!("prices.categories[{i}]");
        let name = category.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 32 {
            return Err(invalid(format!("{field}.name must be 1 to 32 characters")));
        }
        crate::error::plain_text(&format!("{field}.name"), &name)?;
        if categories.iter().any(|(n, _)| *n == name) {
            return Err(invalid(format!("{field}.name: category {name} is listed twice")));
        }
        if !(0..=100_000_000_000).contains(&category.amount) {
            return Err(invalid(format!("{field}.amount must be between 0 and 100000000000 minor units")));
        }
        let code = i as i16 + 1;
        for (first, last) in covered(&field, &category, layout, single)? {
            ranges.push(PriceRange { first, last, category: code });
        }
        categories.push((name, category.amount));
    }
    ranges.sort_by_key(|r| r.first);
    check_partition(&ranges, layout.total, &categories)?;
    Ok(ValidPrices { currency, categories, ranges })
}

/// The id ranges one category names.
fn covered(field: &str, spec: &CategorySpec, layout: &Layout, single: bool) -> AppResult<Vec<(i32, i32)>> {
    match (&spec.sections, &spec.stages, &spec.units) {
        (None, None, None) if single => Ok(vec![(1, layout.total)]),
        (None, None, None) => {
            Err(invalid(format!("{field} must name its units: sections, stages or units (one of them)")))
        }
        (Some(sections), None, None) => {
            if layout.sections.is_empty() {
                return Err(invalid(format!("{field}.sections: this sale has no sections (general admission)")));
            }
            sections
                .iter()
                .map(|name| {
                    let found = layout.sections.iter().find(|(n, _, _)| n == name.trim());
                    found
                        .map(|(_, first, last)| (*first, *last))
                        .ok_or_else(|| invalid(format!("{field}.sections: no section named {name}")))
                })
                .collect()
        }
        (None, Some(stages), None) => stages
            .iter()
            .map(|&stage| {
                let index = usize::try_from(stage - 1).ok().filter(|&i| i < layout.stages.len());
                index
                    .map(|i| layout.stages[i])
                    .ok_or_else(|| invalid(format!("{field}.stages: the sale has no stage {stage}")))
            })
            // An empty stage (0 units) covers nothing.
            .filter(|r| !matches!(r, Ok((first, last)) if last < first))
            .collect(),
        (None, None, Some(units)) => units
            .iter()
            .map(|r| {
                if r.from < 1 || r.to < r.from || r.to > i64::from(layout.total) {
                    return Err(invalid(format!(
                        "{field}.units: {}..{} is not a range of unit ids within 1..{}",
                        r.from, r.to, layout.total
                    )));
                }
                Ok((r.from as i32, r.to as i32))
            })
            .collect(),
        _ => Err(invalid(format!("{field} names its units by one of sections, stages or units, not several"))),
    }
}

/// Every unit in exactly one range.
fn check_partition(ranges: &[PriceRange], total: i32, categories: &[(String, i64)]) -> AppResult<()> {
    let name = |r: &PriceRange| categories.get(r.category as usize - 1).map(|(n, _)| n.as_str()).unwrap_or("?");
    let mut next = 1;
    for (i, range) in ranges.iter().enumerate() {
        if range.first > next {
            return Err(invalid(format!(
                "prices.categories: units {next}..{} have no price category; every unit needs one",
                range.first - 1
            )));
        }
        if range.first < next {
            let other = ranges[..i].iter().rev().find(|r| r.last >= range.first).map(name).unwrap_or("?");
            return Err(invalid(format!(
                "prices.categories: unit {} is in both {other} and {}; a unit has one price category",
                range.first,
                name(range)
            )));
        }
        next = range.last + 1;
    }
    if next <= total {
        return Err(invalid(format!(
            "prices.categories: units {next}..{total} have no price category; every unit needs one"
        )));
    }
    Ok(())
}

/// Stores validated prices of a new sale (its units are written with their
/// categories from the same ranges, see [`unit_categories`]).
pub async fn insert(tx: &mut PgConnection, sale_id: &str, prices: &ValidPrices) -> AppResult<()> {
    let (names, amounts): (Vec<&str>, Vec<i64>) = prices.categories.iter().map(|(n, a)| (n.as_str(), *a)).unzip();
    sqlx::query(
        "INSERT INTO price_categories (sale_id, code, name, amount) \
         SELECT $1, c.ord, c.name, c.amount FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS c(name, amount, ord)",
    )
    .bind(sale_id)
    .bind(&names)
    .bind(&amounts)
    .execute(&mut *tx)
    .await?;
    let firsts: Vec<i32> = prices.ranges.iter().map(|r| r.first).collect();
    let lasts: Vec<i32> = prices.ranges.iter().map(|r| r.last).collect();
    let codes: Vec<i16> = prices.ranges.iter().map(|r| r.category).collect();
    sqlx::query(
        "INSERT INTO price_ranges (sale_id, first_unit, last_unit, category) \
         SELECT $1, r.f, r.l, r.c FROM unnest($2::int[], $3::int[], $4::smallint[]) AS r(f, l, c)",
    )
    .bind(sale_id)
    .bind(&firsts)
    .bind(&lasts)
    .bind(&codes)
    .execute(tx)
    .await?;
    Ok(())
}

/// The first unit id of each range and its category, for the bulk insert of
/// units: `categories[width_bucket(id, starts)]` is a unit's category
/// (`[1]`/`[NULL]` for a sale without prices).
pub fn unit_categories(prices: Option<&ValidPrices>) -> (Vec<i32>, Vec<Option<i16>>) {
    match prices {
        Some(p) => (p.ranges.iter().map(|r| r.first).collect(), p.ranges.iter().map(|r| Some(r.category)).collect()),
        None => (vec![1], vec![None]),
    }
}

/// A category of a sale as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Category {
    /// Code (1-based).
    pub code: i16,
    /// Name.
    pub name: String,
    /// Price of one unit.
    pub amount: i64,
}

/// The categories of a sale, in their order (empty: no prices).
pub async fn categories(db: &PgPool, sale_id: &str) -> AppResult<Vec<Category>> {
    Ok(sqlx::query_as("SELECT code, name, amount FROM price_categories WHERE sale_id = $1 ORDER BY code")
        .bind(sale_id)
        .fetch_all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(name: &str, amount: i64) -> CategorySpec {
        CategorySpec { name: name.into(), amount, sections: None, stages: None, units: None }
    }

    fn spec(categories: Vec<CategorySpec>) -> PricesSpec {
        PricesSpec { currency: "EUR".into(), categories }
    }

    const GA: Layout<'static> = Layout { total: 100, sections: &[], stages: &[(1, 30), (31, 70), (71, 100)] };

    #[test]
    fn one_category_covers_every_unit() {
        let prices = validate(spec(vec![category("Standard", 4500)]), &GA).expect("valid");
        assert_eq!(prices.ranges, vec![PriceRange { first: 1, last: 100, category: 1 }]);
    }

    #[test]
    fn stages_sections_and_ranges_resolve_to_a_partition() {
        let early = CategorySpec { stages: Some(vec![1]), ..category("Early bird", 3000) };
        let late = CategorySpec { stages: Some(vec![3, 2]), ..category("Regular", 4500) };
        let prices = validate(spec(vec![early, late]), &GA).expect("valid");
        let codes: Vec<(i32, i32, i16)> = prices.ranges.iter().map(|r| (r.first, r.last, r.category)).collect();
        assert_eq!(codes, vec![(1, 30, 1), (31, 70, 2), (71, 100, 2)]);

        let sections = [("A".to_owned(), 1, 50), ("B".to_owned(), 51, 80), ("C".to_owned(), 81, 100)];
        let layout = Layout { total: 100, sections: &sections, stages: &[(1, 100)] };
        let front = CategorySpec { sections: Some(vec!["A".into(), "C".into()]), ..category("Front", 9000) };
        let back = CategorySpec { sections: Some(vec!["B".into()]), ..category("Back", 5000) };
        let prices = validate(spec(vec![front, back]), &layout).expect("valid");
        assert_eq!(prices.ranges.iter().map(|r| r.category).collect::<Vec<_>>(), vec![1, 2, 1]);
    }

    #[test]
    fn gaps_overlaps_and_bad_values_are_refused_with_the_field() {
        let refused = |spec: PricesSpec, layout: &Layout| match validate(spec, layout) {
            Err(AppError::Invalid(message)) => message,
            other => panic!("not refused: {other:?}"),
        };
        let range = |from, to| Some(vec![UnitRange { from, to }]);
        let gap = spec(vec![
            CategorySpec { units: range(1, 40), ..category("A", 1) },
            CategorySpec { units: range(51, 100), ..category("B", 1) },
        ]);
        assert!(refused(gap, &GA).contains("units 41..50 have no price category"));
        let overlap = spec(vec![
            CategorySpec { units: range(1, 60), ..category("A", 1) },
            CategorySpec { units: range(50, 100), ..category("B", 1) },
        ]);
        assert!(refused(overlap, &GA).contains("unit 50 is in both A and B"));
        let mut lower = spec(vec![category("A", 1)]);
        lower.currency = "eur".into();
        assert!(refused(lower, &GA).contains("prices.currency"));
        assert!(refused(spec(vec![category("A", -1)]), &GA).contains("prices.categories[0].amount"));
        let unnamed = spec(vec![category("A", 1), category("B", 2)]);
        assert!(refused(unnamed, &GA).contains("prices.categories[0] must name its units"));
        let sections = spec(vec![CategorySpec { sections: Some(vec!["A".into()]), ..category("A", 1) }]);
        assert!(refused(sections, &GA).contains("has no sections"));
        let stage = spec(vec![CategorySpec { stages: Some(vec![4]), ..category("A", 1) }]);
        assert!(refused(stage, &GA).contains("no stage 4"));
        let twice = spec(vec![
            CategorySpec { units: range(1, 50), ..category("A", 1) },
            CategorySpec { units: range(51, 100), ..category("A", 1) },
        ]);
        assert!(refused(twice, &GA).contains("listed twice"));
        let both = spec(vec![CategorySpec { units: range(1, 100), stages: Some(vec![1]), ..category("A", 1) }]);
        assert!(refused(both, &GA).contains("not several"));
    }

    #[test]
    fn units_get_their_category_by_width_bucket_of_the_range_starts() {
        let early = CategorySpec { stages: Some(vec![1]), ..category("Early", 1) };
        let rest = CategorySpec { stages: Some(vec![2, 3]), ..category("Rest", 2) };
        let prices = validate(spec(vec![early, rest]), &GA).expect("valid");
        let (starts, codes) = unit_categories(Some(&prices));
        // width_bucket(id, starts) = how many starts are <= id.
        let category_of = |id: i32| codes[starts.iter().filter(|&&s| s <= id).count() - 1];
        assert_eq!(
            (category_of(1), category_of(30), category_of(31), category_of(100)),
            (Some(1), Some(1), Some(2), Some(2))
        );
    }
}
