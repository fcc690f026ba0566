//! The demo sale of the dev run command.

use secrecy::ExposeSecret;

use crate::error::AppResult;
use crate::prices::{CategorySpec, PricesSpec};
use crate::sales::create::{create_sale, AdmissionSpec, ChallengeSpec, NewSale, UnitsSpec};
use crate::sales::SaleMode;
use crate::state::AppState;

/// Proof of work of the demo sale: 2^17 hashes on average, about half a
/// second in a desktop browser (the Chromium test measures 150-300k hashes
/// a second in a Web Worker here), a second or two on a phone; the browser
/// test runs at this difficulty and loadtest/RESULTS.md has its solve times.
pub const DEMO_DIFFICULTY: i64 = 17;

/// Name of the demo sale; seeded once.
const DEMO_NAME: &str = "Demo: Spring tour, Tokyo";

/// Early-bird prices in stage 1, the regular price after (yen have no
/// minor unit: amounts are whole yen).
fn demo_prices() -> PricesSpec {
    let category = |name: &str, amount, stages| CategorySpec {
        name: name.into(),
        amount,
        sections: None,
        stages: Some(stages),
        units: None,
    };
    PricesSpec {
        currency: "JPY".into(),
        categories: vec![category("Early bird", 6800, vec![1]), category("Regular", 8800, vec![2, 3])],
    }
}

/// Creates the demo sale unless it exists, and prints how to use it.
pub async fn seed(state: &AppState) -> AppResult<()> {
    let existing: Option<(String,)> = sqlx::query_as("SELECT id FROM sales WHERE name = $1 AND state <> 'closed'")
        .bind(DEMO_NAME)
        .fetch_optional(&state.db)
        .await?;
    let id = match existing {
        Some((id,)) => id,
        None => {
            let sale = create_sale(
                &state.db,
                NewSale {
                    name: DEMO_NAME.into(),
                    starts_at: None,
                    ends_at: None,
                    mode: Some(SaleMode::Fifo),
                    units: UnitsSpec { count: Some(1000), sections: None },
                    stages: Some(vec![30, 40, 30]),
                    stage_opens_at: None,
                    per_user_limit: Some(4),
                    hold_ttl_seconds: Some(300),
                    shuffle_prequeue: Some(true),
                    waiting_room: Some(true),
                    admission: Some(AdmissionSpec {
                        admit_per_second: Some(2),
                        max_active: Some(50),
                        admission_ttl_seconds: Some(300),
                        abandon_after_seconds: Some(60),
                        ..AdmissionSpec::default()
                    }),
                    challenge: Some(ChallengeSpec {
                        difficulty_bits: Some(DEMO_DIFFICULTY),
                        max_difficulty_bits: None,
                    }),
                    access: None,
                    prices: Some(demo_prices()),
                    sessions: None,
                },
            )
            .await?;
            sale.id
        }
    };
    let base = &state.settings.server.public_url;
    let admin_key = state.settings.admin.keys.first().map(|k| k.expose_secret()).unwrap_or("");
    println!("floodgate demo sale: {base}/s/{id}");
    println!("  sales page:    {base}/");
    println!("  sale (API):    {base}/api/v1/sales/{id}");
    println!("  admin stats:   curl -H 'Authorization: Bearer {admin_key}' {base}/admin/v1/sales/{id}");
    println!(
        "  next stage:    curl -X POST -H 'Authorization: Bearer {admin_key}' {base}/admin/v1/sales/{id}/stages/next"
    );
    println!("  dev admin key: {admin_key}");
    Ok(())
}
