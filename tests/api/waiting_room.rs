//! The waiting room under real concurrency (issue 4): distinct join numbers,
//! FIFO admission, idempotent joins, token checks (I4), `max_active`, one
//! admission rate across instances, abandonment, the pre-queue shuffle (I8),
//! rate limits, closed and paused sales, and polling hints.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use floodgate::tokens::Purpose;
use futures::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{
    assert_error, body_json, eventually, lose_waiting_room_data, patiently, retry_after, sale_json, spawn_app,
    spawn_app_with, spawn_sibling, TestApp,
};

// --- helpers of this file ----------------------------------------------------

/// A sale with the waiting room on; `admission` and `extra` override defaults.
fn wr_sale(units: i64, admission: Value, extra: Value) -> Value {
    let mut sale = sale_json(units, json!({ "waiting_room": true, "admission": admission }));
    if let (Some(base), Some(extra)) = (sale.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    sale
}

/// Waits until the sale clock has started the sale: it is on sale, the
/// pre-queue is frozen (and shuffled) and the seed is revealed.
async fn wait_started(app: &TestApp, sale: &str) -> Value {
    eventually(Duration::from_secs(10), || async move {
        let body = app.admin_get_sale(sale).await;
        (body["state"] == "on_sale" && body["seed"].is_string()).then_some(body)
    })
    .await
    .unwrap_or_else(|| panic!("sale {sale} did not start"))
}

/// The join number `n` a queue token carries.
fn number(app: &TestApp, sale: &str, token: &str) -> u64 {
    let claims = app.state.tokens.verify(token, Purpose::Queue, Some(sale)).expect("a valid queue token");
    claims.n.expect("queue token carries n")
}

/// Joins anonymously (patiently); returns (queue token, n, body, refused attempts).
async fn join_patiently(app: &TestApp, sale: &str) -> (String, u64, Value, u32) {
    let url = app.url(&format!("/api/v1/sales/{sale}/queue"));
    let (response, refused) = patiently("join", || app.client.post(&url)).await;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::CREATED, "join: {text:?}");
    let body: Value = serde_json::from_str(&text).expect("join answer is JSON");
    let token = body["queue_token"].as_str().expect("queue_token").to_owned();
    let n = number(app, sale, &token);
    (token, n, body, refused)
}

/// Joins anonymously; returns (queue token, n, body).
async fn join_ok(app: &TestApp, sale: &str) -> (String, u64, Value) {
    let (token, n, body, _) = join_patiently(app, sale).await;
    (token, n, body)
}

/// `count` concurrent anonymous joins, sorted by join number.
///
/// Every visitor ends up with a distinct number, and the numbers are exactly
/// the next `count` ones unless the server shed some attempts under load
/// (retried): an attempt whose answer was lost after it took a number leaves
/// a gap, so then they lie within the next `count + refused`.
async fn join_many(app: &TestApp, sale: &str, count: usize) -> Vec<(u64, String)> {
    let base = joined(app, sale).await;
    let joins = (0..count).map(|_| async move {
        let (token, n, _, refused) = join_patiently(app, sale).await;
        (n, token, refused)
    });
    let results = join_all(joins).await;
    let refused: u64 = results.iter().map(|(_, _, r)| u64::from(*r)).sum();
    let mut visitors: Vec<(u64, String)> = results.into_iter().map(|(n, token, _)| (n, token)).collect();
    visitors.sort_by_key(|(n, _)| *n);
    let numbers: Vec<u64> = visitors.iter().map(|(n, _)| *n).collect();
    let distinct: HashSet<u64> = numbers.iter().copied().collect();
    assert_eq!(distinct.len(), count, "{} visitors share a number", count - distinct.len());
    let (lowest, highest) = (numbers[0], numbers[count - 1]);
    let limit = base + count as u64 + refused;
    assert!(lowest > base && highest <= limit, "numbers {lowest}..={highest} after {base}, {refused} refused");
    if refused == 0 {
        assert_eq!((lowest, highest), (base + 1, base + count as u64), "exactly the next {count} numbers");
    } else {
        eprintln!("join_many: the server shed {refused} of {count} joins (retried); numbers up to {highest}");
    }
    visitors
}

/// Join numbers handed out so far (the sale's `queue.joined`).
async fn joined(app: &TestApp, sale: &str) -> u64 {
    app.admin_get_sale(sale).await["queue"]["joined"].as_u64().expect("queue.joined")
}

/// A status poll (patiently) that must answer 200; returns (Retry-After, body).
async fn status_ok(app: &TestApp, sale: &str, token: &str) -> (Option<u64>, Value) {
    let url = app.url(&format!("/api/v1/sales/{sale}/queue/status"));
    let (response, _) = patiently("status", || app.client.get(&url).bearer_auth(token)).await;
    let status = response.status();
    let retry_after = retry_after(&response);
    let body = body_json(response).await;
    assert_eq!(status, StatusCode::OK, "status: {body}");
    (retry_after, body)
}

/// Polls a visitor's status until `check` accepts it. An admin change is
/// copied to Redis at once, but a sale clock tick that read the row just
/// before may copy the old values over it once more (for one clock period).
async fn status_until(app: &TestApp, sale: &str, token: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..40 {
        last = status_ok(app, sale, token).await.1;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("status never became as expected: {last}");
}

/// Admits `count` by hand and returns the admin answer.
async fn admit_ok(app: &TestApp, sale: &str, count: i64) -> Value {
    let response = app.admit(sale, count).await;
    let status = response.status();
    let body = body_json(response).await;
    assert_eq!(status, StatusCode::OK, "admit: {body}");
    body
}

/// Checks every visitor's status after exactly the first `k` join numbers
/// were admitted (FIFO, nobody abandoned).
async fn assert_fifo_standing(app: &TestApp, sale: &str, visitors: &[(u64, String)], k: u64) {
    let polls = visitors.iter().map(|(n, token)| async move { (*n, status_ok(app, sale, token).await.1) });
    for (n, body) in join_all(polls).await {
        if n <= k {
            assert_eq!(body["state"], "admitted", "n={n} after admitting {k}: {body}");
            assert_eq!(body["position"], 0, "{body}");
            let token = body["admission_token"].as_str().unwrap_or_else(|| panic!("no admission token: {body}"));
            let claims = app.state.tokens.verify(token, Purpose::Admission, Some(sale)).expect("admission token");
            assert_eq!(claims.n, Some(n), "admission token of n={n}");
            assert!(body["admission_expires_at"].is_string(), "{body}");
        } else {
            assert_eq!(body["state"], "waiting", "n={n} after admitting {k}: {body}");
            assert_eq!(body["position"], n - k, "n={n} after admitting {k}: {body}");
            assert_eq!(body["ahead"], n - k - 1, "n={n} after admitting {k}: {body}");
            assert!(body.get("admission_token").is_none(), "{body}");
        }
    }
}

/// A login token of the site (HS256, `sub`, `exp`).
fn login_token(secret: &str, sub: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": sub, "exp": Utc::now().timestamp() + 3600 }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("login token")
}

// --- 1. distinct numbers and FIFO --------------------------------------------

#[tokio::test]
async fn five_thousand_concurrent_joins_get_distinct_numbers_and_polls_back_off() {
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&wr_sale(100, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;

    let visitors = join_many(&app, &sale, 5000).await;
    assert_eq!(joined(&app, &sale).await, visitors.last().unwrap().0, "the last number is the count");

    // Polling hints (10): nothing admitted yet, so no estimate; the hint
    // grows with the distance from the front and Retry-After matches it.
    let mut previous = 0;
    for rank in [1usize, 10, 100, 1000, 4000] {
        let (n, token) = &visitors[rank - 1];
        let n = *n;
        let (retry, body) = status_ok(&app, &sale, token).await;
        assert_eq!(body["state"], "waiting", "{body}");
        assert_eq!(body["position"], n, "{body}");
        assert_eq!(body["ahead"], n - 1, "{body}");
        assert!(body["estimated_wait_seconds"].is_null(), "nothing admitted yet, so no estimate: {body}");
        let poll = body["poll_after_ms"].as_u64().expect("poll_after_ms");
        assert!(poll >= previous, "poll_after_ms shrank at n={n}: {poll} < {previous}");
        assert_eq!(retry, Some(poll.div_ceil(1000).max(1)), "Retry-After matches poll_after_ms: {body}");
        previous = poll;
    }
    let first = status_ok(&app, &sale, &visitors[0].1).await.1["poll_after_ms"].as_u64().unwrap();
    assert!(previous > first, "visitor 4000 polls less often than visitor 1 ({previous} vs {first})");

    // Admission follows the numbers: a sample around the edge and across the line.
    let admitted = admit_ok(&app, &sale, 1234).await;
    assert_eq!(admitted["admitted"], 1234, "{admitted}");
    let sample: Vec<&(u64, String)> =
        visitors.iter().filter(|(n, _)| *n % 97 == 0 || (1230..=1240).contains(n) || *n == 1 || *n == 5000).collect();
    let polls = sample.iter().map(|(n, token)| {
        let (app, sale) = (&app, &sale);
        async move { (*n, status_ok(app, sale, token).await.1) }
    });
    for (n, body) in join_all(polls).await {
        if n <= 1234 {
            assert_eq!(body["state"], "admitted", "n={n}: {body}");
        } else {
            assert_eq!(body["state"], "waiting", "n={n}: {body}");
            assert_eq!(body["position"], n - 1234, "n={n}: {body}");
        }
    }
}

#[tokio::test]
async fn visitors_are_admitted_strictly_in_join_order() {
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&wr_sale(100, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;
    let visitors = join_many(&app, &sale, 500).await;

    assert_fifo_standing(&app, &sale, &visitors, 0).await;
    let mut k = 0;
    for batch in [1, 49, 50, 150] {
        let result = admit_ok(&app, &sale, batch).await;
        assert_eq!(result["admitted"], batch, "{result}");
        k += batch as u64;
        assert_eq!(result["serving"], k, "{result}");
        assert_fifo_standing(&app, &sale, &visitors, k).await;
    }
    let summary = app.admin_get_sale(&sale).await;
    assert_eq!(summary["queue"]["admitted"], 250, "{summary}");
    assert_eq!(summary["queue"]["length"], summary["queue"]["joined"].as_u64().unwrap() - 250, "{summary}");
}

// --- 2. idempotent joins -----------------------------------------------------

#[tokio::test]
async fn joining_again_with_the_queue_token_keeps_the_place() {
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;
    join_many(&app, &sale, 3).await;
    let (token, n, first) = join_ok(&app, &sale).await;
    assert_eq!(first["position"], n, "{first}");
    join_many(&app, &sale, 3).await;
    let numbers_before = joined(&app, &sale).await;

    // Bearer, several times at once, and in the body: the same place, 200.
    let again = join_all((0..5).map(|_| app.join(&sale, Some(&token)))).await;
    for response in again {
        assert_eq!(response.status(), StatusCode::OK);
        let body = body_json(response).await;
        assert_eq!(body["position"], first["position"], "{body}");
        assert_eq!(number(&app, &sale, body["queue_token"].as_str().unwrap()), n);
    }
    let response = app
        .client
        .post(app.url(&format!("/api/v1/sales/{sale}/queue")))
        .json(&json!({ "queue_token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["position"], n);
    assert_eq!(joined(&app, &sale).await, numbers_before, "re-joins take no new numbers");
}

#[tokio::test]
async fn a_signed_in_user_gets_one_place_across_devices() {
    const SECRET: &str = "site-login-secret-for-tests";
    let app = spawn_app_with(|s| s.identity.jwt_hs256_secret = Some(SECRET.into())).await;
    let sale =
        app.create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;
    join_many(&app, &sale, 2).await;

    // Ten "devices" of alice join at once: one new place, nine times the same.
    let alice = login_token(SECRET, "alice");
    let responses = join_all((0..10).map(|_| app.join(&sale, Some(&alice)))).await;
    let mut statuses = HashMap::new();
    let mut numbers = HashSet::new();
    for response in responses {
        *statuses.entry(response.status()).or_insert(0) += 1;
        let body = body_json(response).await;
        let token = body["queue_token"].as_str().unwrap_or_else(|| panic!("{body}"));
        let claims = app.state.tokens.verify(token, Purpose::Queue, Some(&sale)).unwrap();
        assert_eq!(claims.sub, "u:alice");
        let n = claims.n.unwrap();
        numbers.insert(n);
        assert_eq!(body["position"], n, "{body}");
    }
    assert_eq!(statuses.get(&StatusCode::CREATED), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&StatusCode::OK), Some(&9), "{statuses:?}");
    assert_eq!(numbers.len(), 1, "one place for alice: {numbers:?}");
    let place = numbers.into_iter().next().unwrap();
    assert_eq!(place, joined(&app, &sale).await, "alice took exactly one number");

    // Later, from yet another device: still 200 and the same place.
    let response = app.join(&sale, Some(&login_token(SECRET, "alice"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["position"], place);
    // Another user gets the next place; a login token signed by someone else is refused.
    let response = app.join(&sale, Some(&login_token(SECRET, "bob"))).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body_json(response).await["position"], place + 1);
    assert_error(
        app.join(&sale, Some(&login_token("not-the-secret", "alice"))).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

/// The same signed-in user twice in one batch of `join.lua` (the batch hands
/// out its new numbers with one increment after looking every visitor up,
/// and answers only for the visitors without a new one): one place, not
/// two, and the new numbers in join order.
#[tokio::test]
async fn one_batch_of_joins_gives_a_user_on_two_devices_one_place() {
    use floodgate::waiting_room::JoinOutcome;
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;
    join_many(&app, &sale, 1).await;
    let row = app.state.sales.get(&app.state.db, &sale).await.expect("sale");
    // Sent together from one task, these reach the batcher before it runs:
    // one script call.
    let users = ["u:carol", "", "u:dave", "u:carol", "", "u:dave", "u:carol"];
    let outcomes =
        join_all(users.iter().map(|user| app.state.waiting_room.join(&row, (!user.is_empty()).then_some(*user), None)))
            .await;
    let mut place = HashMap::new();
    let mut fresh = Vec::new();
    for (user, outcome) in users.iter().zip(outcomes) {
        let (n, new) = match outcome.expect("join") {
            JoinOutcome::New(n, _) => (n, true),
            JoinOutcome::Again(n) => (n, false),
            other => panic!("{user}: {other:?}"),
        };
        if new {
            fresh.push(n);
        }
        if !user.is_empty() {
            assert_eq!(*place.entry(*user).or_insert(n), n, "{user} has one place");
        }
    }
    assert_eq!(
        fresh,
        vec![2, 3, 4, 5],
        "two users and two anonymous visitors take the next four numbers, in join order"
    );
    assert_eq!(joined(&app, &sale).await, 5, "and no more");
}

// --- 3. tokens (I4) ----------------------------------------------------------

#[tokio::test]
async fn forged_tampered_expired_and_misused_tokens_are_refused() {
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    let other =
        app.create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;
    wait_started(&app, &other).await;
    let (first, _, _) = join_ok(&app, &sale).await;
    let (second, _, _) = join_ok(&app, &sale).await;
    let (elsewhere, _, _) = join_ok(&app, &other).await;

    // 401: not a token, no token, a token signed with another secret under
    // our key id, an unknown key id, a tampered payload, an expired token.
    let response = app.client.get(app.url(&format!("/api/v1/sales/{sale}/queue/status"))).send().await.unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_error(app.status(&sale, "not-a-token").await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let claims = json!({ "sub": "v:mallory", "sale": sale, "pur": "queue", "n": 1,
                         "exp": Utc::now().timestamp() + 600, "iat": Utc::now().timestamp() });
    for kid in ["test1", "nope"] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.into());
        let forged = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"guessed")).unwrap();
        assert_error(app.status(&sale, &forged).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (first.split('.').collect(), second.split('.').collect());
    let spliced = format!("{}.{}.{}", a[0], b[1], a[2]);
    assert_error(app.status(&sale, &spliced).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let mut flipped = a[1].to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let tampered = format!("{}.{}.{}", a[0], flipped, a[2]);
    assert_error(app.status(&sale, &tampered).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let expired = app
        .state
        .tokens
        .issue(Purpose::Queue, &sale, "v:late", Some(1), None, Utc::now() - chrono::Duration::seconds(5))
        .unwrap();
    assert_error(app.status(&sale, &expired).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // 403: a genuine token of another sale, or of another purpose.
    assert_error(app.status(&sale, &elsewhere).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_error(app.join(&sale, Some(&elsewhere)).await, StatusCode::FORBIDDEN, "forbidden").await;
    admit_ok(&app, &sale, 1).await;
    let (_, admitted) = status_ok(&app, &sale, &first).await;
    assert_eq!(admitted["state"], "admitted", "{admitted}");
    let admission = admitted["admission_token"].as_str().unwrap().to_owned();
    assert_error(app.status(&sale, &admission).await, StatusCode::FORBIDDEN, "forbidden").await;
    assert_error(app.join(&sale, Some(&admission)).await, StatusCode::FORBIDDEN, "forbidden").await;
    // A queue token cannot stand in for an admission token.
    for token in [&first, &second] {
        let response = app.hold(&sale, token, &json!({ "quantity": 1 }), None).await;
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // The admission token itself works, for its own sale only.
    let response = app.hold(&other, &admission, &json!({ "quantity": 1 }), None).await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = app.hold(&sale, &admission, &json!({ "quantity": 1 }), None).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{}", body_json(response).await);
    assert_eq!(app.unit_counts(&sale).await, (9, 1, 0));
    assert_eq!(app.unit_counts(&other).await, (10, 0, 0));
}

// --- 4. max_active -----------------------------------------------------------

/// One visitor's admission as the visitor saw it: from the answer that first
/// said `admitted` until the moment the visitor let go (sent the release, or
/// the hold's expiry). The real slot spans at least this interval, so at no
/// instant may more than `max_active` of these overlap.
#[derive(Debug, Clone, Copy)]
struct Seen {
    from: Instant,
    until: Option<Instant>,
}

#[tokio::test]
async fn max_active_is_never_exceeded_while_visitors_hold_release_and_expire() {
    const MAX_ACTIVE: usize = 10;
    const VISITORS: usize = 60;
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&wr_sale(
            500,
            json!({ "admit_per_second": 1000, "max_active": MAX_ACTIVE, "admission_ttl_seconds": 60 }),
            json!({ "shuffle_prequeue": false, "hold_ttl_seconds": 1 }),
        ))
        .await;
    wait_started(&app, &sale).await;
    let visitors = join_many(&app, &sale, VISITORS).await;

    let seen: Arc<Mutex<HashMap<u64, Seen>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // The admin view agrees: `active` never above max_active.
    let monitor = {
        let (app, sale, done) = (&app, &sale, done.clone());
        async move {
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let body = app.admin_get_sale(sale).await;
                let active = body["queue"]["active"].as_u64().expect("queue.active");
                assert!(active as usize <= MAX_ACTIVE, "admin sees {active} active: {body}");
                most = most.max(active);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            most
        }
    };

    let runs = visitors.iter().map(|(n, token)| {
        let (app, sale, seen) = (&app, &sale, seen.clone());
        let n = *n;
        async move {
            while Instant::now() < deadline {
                let (_, body) = status_ok(app, sale, token).await;
                let at = Instant::now();
                match body["state"].as_str().unwrap() {
                    "waiting" => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    "admitted" => {}
                    other => panic!("visitor {n} in state {other} before holding: {body}"),
                }
                seen.lock().unwrap().insert(n, Seen { from: at, until: None });
                let admission = body["admission_token"].as_str().expect("admission token");
                let response = app.hold(sale, admission, &json!({ "quantity": 1 }), None).await;
                let hold = body_json(response).await;
                let hold_id = hold["id"].as_str().unwrap_or_else(|| panic!("hold for visitor {n}: {hold}"));
                if n % 2 == 0 {
                    // Pays attention: releases the hold soon.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    seen.lock().unwrap().get_mut(&n).unwrap().until = Some(Instant::now());
                    let response = app.release_hold(hold_id, hold["hold_token"].as_str().unwrap()).await;
                    assert_eq!(response.status(), StatusCode::OK);
                } else {
                    // Walks away: the hold expires after a second.
                    let expires: chrono::DateTime<Utc> = hold["expires_at"].as_str().unwrap().parse().unwrap();
                    let left = (expires - Utc::now()).to_std().unwrap_or_default();
                    seen.lock().unwrap().get_mut(&n).unwrap().until = Some(Instant::now() + left);
                }
                // The slot is used up: the visitor's admission is over.
                let over = eventually(Duration::from_secs(5), || async move {
                    let (_, body) = status_ok(app, sale, token).await;
                    (body["state"] == "expired").then_some(())
                })
                .await;
                assert!(over.is_some(), "visitor {n}'s admission did not end after the hold finished");
                return true;
            }
            false
        }
    });
    let runs = async {
        let finished = join_all(runs).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        finished
    };
    let (finished, most_active) = futures::join!(runs, monitor);

    let seen: Vec<Seen> = seen.lock().unwrap().values().copied().collect();
    for (i, a) in seen.iter().enumerate() {
        let overlapping =
            seen.iter().filter(|b| b.from <= a.from && b.until.is_none_or(|until| until > a.from)).count();
        assert!(overlapping <= MAX_ACTIVE, "{overlapping} visitors admitted at once (when #{i} was): {seen:?}");
    }
    let served = finished.iter().filter(|f| **f).count();
    assert!(seen.len() > MAX_ACTIVE, "only {} visitors were ever admitted", seen.len());
    assert_eq!(served, VISITORS, "every visitor got a turn as slots freed (most active {most_active})");
    let summary = app.admin_get_sale(&sale).await;
    assert!(summary["queue"]["admitted"].as_u64().unwrap() >= VISITORS as u64, "{summary}");
    app.assert_audit_clean(&sale).await;
}

// --- 5. two instances, one rate ----------------------------------------------

#[tokio::test]
async fn two_instances_admit_at_the_configured_rate_not_double() {
    let app = spawn_app().await;
    let sibling = spawn_sibling(&app).await;
    let sale = app
        .create_sale_ok(&wr_sale(
            100,
            json!({ "admit_per_second": 0, "max_active": 100_000 }),
            json!({ "shuffle_prequeue": false }),
        ))
        .await;
    wait_started(&app, &sale).await;
    // Joins through both instances.
    let joins = (0..400).map(|i| {
        let (instance, sale) = (if i % 2 == 0 { &app } else { &sibling }, &sale);
        async move {
            let (token, n, _) = join_ok(instance, sale).await;
            (n, token)
        }
    });
    let visitors: HashMap<u64, String> = join_all(joins).await.into_iter().collect();
    assert_eq!(visitors.len(), 400, "distinct numbers through either instance");
    // The sale is live for both instances (their clocks, every 200 ms, have
    // long put it in their tickers' lists by now).
    for instance in [&app, &sibling] {
        let live = floodgate::jobs::clock_tick(&instance.state).await.expect("clock tick");
        assert!(live.contains(&sale));
    }

    let response = app.patch_sale(&sale, &json!({ "admission": { "admit_per_second": 20 } })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let started = Instant::now();
    let before = app.admin_get_sale(&sale).await["queue"]["admitted"].as_u64().unwrap();
    // A measurement window, not a wait for a condition.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = app.admin_get_sale(&sale).await["queue"]["admitted"].as_u64().unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = after - before;
    assert!(
        (35..=90).contains(&admitted),
        "admitted {admitted} in {elapsed:.2}s at 20/s with two instances ticking (expected about {:.0})",
        20.0 * elapsed
    );

    // Stop the inflow (a sibling's clock may still copy the old rate once),
    // then everyone stands in number order, as either instance tells it:
    // admitted up to the serving number, waiting behind it. The serving
    // number is read before and after the polls to bracket any late tick.
    let response = app.patch_sale(&sale, &json!({ "admission": { "admit_per_second": 0 } })).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Waiting visitors are answered from each instance's copy of the line,
    // refreshed every 50 ms: once the line has stood still for longer than
    // that, every copy is current and every place exact.
    let serving = || async { app.admin_get_sale(&sale).await["queue"]["serving"].as_u64().unwrap() };
    let mut serving_before = serving().await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let now = serving().await;
        if now == serving_before {
            break;
        }
        serving_before = now;
    }
    assert!(serving_before >= after.min(400), "serving {serving_before}, admitted {after}");
    let polls = visitors.iter().map(|(n, token)| {
        let (instance, sale) = (if n % 2 == 0 { &app } else { &sibling }, &sale);
        async move { (*n, status_ok(instance, sale, token).await.1) }
    });
    let standings = join_all(polls).await;
    let serving_after = app.admin_get_sale(&sale).await["queue"]["serving"].as_u64().unwrap();
    assert!(serving_after - serving_before <= 10, "admission went on at speed: {serving_before} -> {serving_after}");
    for (n, body) in standings {
        if n <= serving_before {
            assert_eq!(body["state"], "admitted", "n={n}, serving {serving_before}: {body}");
        } else if n > serving_after {
            assert_eq!(body["state"], "waiting", "n={n}, serving {serving_after}: {body}");
            let position = body["position"].as_u64().unwrap();
            assert!((n - serving_after..=n - serving_before).contains(&position), "n={n}: {body}");
        } else {
            assert!(body["state"] == "admitted" || body["state"] == "waiting", "n={n}: {body}");
        }
    }
}

// --- 6. abandonment ----------------------------------------------------------

/// Admission ticks this app ran for `sale` (`floodgate_admission_ticks_total`).
async fn admission_ticks(app: &TestApp, sale: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    let series = format!("floodgate_admission_ticks_total{{sale=\"{sale}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&series)).and_then(|n| n.trim().parse().ok()).unwrap_or(0)
}

/// An idle sale (nobody waiting, nobody admitted) is ticked once per
/// `jobs.idle_tick_ms`, not every admission tick; a join on the instance
/// wakes it, so its visitor is admitted at the next tick, not after the idle
/// period (the longest allowed here, 15 s: a lost wake-up would admit the
/// visitor 14 s after the join, past the 8 s this test waits).
#[tokio::test]
async fn an_idle_sale_is_not_ticked_until_a_join_wakes_it() {
    let app = spawn_app_with(|s| s.jobs.idle_tick_ms = floodgate::configuration::MAX_IDLE_TICK_MS).await;
    let sale = app
        .create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 100 }), json!({ "shuffle_prequeue": false })))
        .await;
    wait_started(&app, &sale).await;
    // The first tick finds nobody: from then on the count stands still.
    let idle = eventually(Duration::from_secs(10), || async {
        let ticks = admission_ticks(&app, &sale).await;
        (ticks > 0).then_some(ticks)
    })
    .await
    .expect("the sale was ticked");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(admission_ticks(&app, &sale).await, idle, "an idle sale is skipped (ticks every 50 ms otherwise)");

    let (token, n, _) = join_ok(&app, &sale).await;
    let admitted = eventually(Duration::from_secs(8), || async {
        let body = status_ok(&app, &sale, &token).await.1;
        (body["state"] == "admitted").then_some(body)
    })
    .await
    .expect("the join woke the sale and its visitor was admitted");
    assert_eq!(admitted["entry"], n, "{admitted}");
    assert!(admission_ticks(&app, &sale).await > idle);
}

/// The sale clock copies an idle sale's unchanged row to Redis once per
/// five idle periods (10 s here), not every clock tick (200 ms). A sale
/// whose data Redis lost is not idle: its next idle tick (2 s) finds it
/// unknown, and the clock tick after that copies it back, some 8 s before
/// the periodic copy would.
#[tokio::test]
async fn an_idle_sale_is_not_copied_every_clock_tick_but_soon_when_redis_lost_it() {
    let app = spawn_app_with(|s| s.jobs.idle_tick_ms = 2000).await;
    let sale = app
        .create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 100 }), json!({ "shuffle_prequeue": false })))
        .await;
    wait_started(&app, &sale).await;
    eventually(Duration::from_secs(10), || async { (admission_ticks(&app, &sale).await > 0).then_some(()) })
        .await
        .expect("the sale was ticked, and found idle");
    // The instance's own connection: a single Redis or the cluster.
    let redis = || app.state.redis().connection().expect("a Redis connection");
    let meta = format!("{}:{{{sale}}}:meta", app.settings.redis.key_prefix);
    let aps = || async {
        redis::cmd("HGET").arg(&meta).arg("aps").query_async::<Option<String>>(&mut redis()).await.expect("HGET")
    };
    assert_eq!(aps().await.as_deref(), Some("100"), "copied when it started");
    redis::cmd("HDEL").arg(&meta).arg("aps").query_async::<()>(&mut redis()).await.expect("HDEL");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(aps().await, None, "an idle sale's unchanged row is not copied every 200 ms");

    lose_waiting_room_data(&app.settings).await;
    let back = eventually(Duration::from_secs(6), aps).await;
    assert_eq!(back.as_deref(), Some("100"), "a sale Redis lost is copied back after its next idle tick");
}

#[tokio::test]
async fn visitors_who_stop_polling_are_skipped_and_use_no_capacity() {
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&wr_sale(
            100,
            json!({ "admit_per_second": 0, "abandon_after_seconds": 3 }),
            json!({ "shuffle_prequeue": false }),
        ))
        .await;
    wait_started(&app, &sale).await;
    let mut visitors = Vec::new();
    for _ in 0..10 {
        let (token, n, _) = join_ok(&app, &sale).await;
        visitors.push((n, token));
    }
    assert!(visitors.windows(2).all(|w| w[0].0 < w[1].0), "one after another: {visitors:?}");

    // 1..=5 go quiet; 6..=10 poll every half second for over 4 s (last-seen
    // times are whole seconds, so 4 s surely exceeds the 3 s threshold).
    let quiet_since = Instant::now();
    let pollers = visitors[5..].iter().map(|(n, token)| {
        let (app, sale) = (&app, &sale);
        async move {
            while quiet_since.elapsed() < Duration::from_millis(4200) {
                let (_, body) = status_ok(app, sale, token).await;
                assert_eq!(body["state"], "waiting", "visitor {n}: {body}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    });
    join_all(pollers).await;

    let result = admit_ok(&app, &sale, 5).await;
    assert_eq!(result["admitted"], 5, "{result}");
    assert_eq!(result["abandoned"], 5, "{result}");
    for (rank, (n, token)) in visitors.iter().enumerate() {
        let (_, body) = status_ok(&app, &sale, token).await;
        let expected = if rank < 5 { "expired" } else { "admitted" };
        assert_eq!(body["state"], expected, "visitor {n}: {body}");
    }
    let summary = app.admin_get_sale(&sale).await;
    assert_eq!(summary["queue"]["abandoned"], 5, "{summary}");
    assert_eq!(summary["queue"]["admitted"], 5, "{summary}");
    assert_eq!(summary["queue"]["active"], 5, "abandoned visitors hold no slot: {summary}");
}

/// An admission holds its `max_active` slot from the moment a status answer
/// shows it to the visitor (issue 11, item 5): one that nobody has seen yet
/// (its visitor sleeps between polls) holds it only for the reveal grace
/// (`REVEAL_GRACE`, 10 s, in src/waiting_room/mod.rs), so the line moves on
/// without them; one that was seen holds it for the whole admission window.
/// The sleeper keeps the place: back (within the abandonment time), they
/// wait at the front and get the next free slot before anyone behind them.
#[tokio::test]
async fn an_unseen_admission_frees_its_slot_after_the_grace_and_a_seen_one_keeps_it() {
    const GRACE: Duration = Duration::from_secs(10);
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&wr_sale(
            100,
            json!({ "admit_per_second": 50, "max_active": 1, "admission_ttl_seconds": 300,
                    "abandon_after_seconds": 300 }),
            json!({ "shuffle_prequeue": false }),
        ))
        .await;
    wait_started(&app, &sale).await;
    // The sleeper takes the only slot at the next tick and does not poll.
    let before_sleeper = Instant::now();
    let (sleeper, _, _) = join_ok(&app, &sale).await;
    let (second, _, _) = join_ok(&app, &sale).await;
    let (third, _, _) = join_ok(&app, &sale).await;

    // `second` waits while the sleeper's grace lasts, then gets the slot.
    let seen = loop {
        let (_, body) = status_ok(&app, &sale, &second).await;
        if body["state"] == "admitted" {
            break before_sleeper.elapsed();
        }
        assert_eq!(body["state"], "waiting", "{body}");
        assert!(before_sleeper.elapsed() < GRACE * 3, "the unseen admission kept its slot: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(seen >= GRACE - Duration::from_millis(500), "the slot was free after {seen:?}, before the grace ran out");

    // That answer showed `second` the admission: the slot is theirs for the
    // window now, so `third` waits well past another grace.
    let (_, second_view) = status_ok(&app, &sale, &second).await;
    let shown = Instant::now();
    while shown.elapsed() < GRACE + Duration::from_secs(2) {
        let (_, body) = status_ok(&app, &sale, &third).await;
        assert_eq!(body["state"], "waiting", "a seen admission lost its slot after {:?}: {body}", shown.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The one slot is `second`'s: the sleeper, back now, is not admitted
    // beside them but waits at the front of the line.
    let (_, body) = status_ok(&app, &sale, &sleeper).await;
    assert_eq!(body["state"], "waiting", "max_active 1 would be exceeded, or the place lost: {body}");
    assert_eq!((body["position"].as_u64(), body["ahead"].as_u64()), (Some(1), Some(0)), "{body}");
    let summary = app.admin_get_sale(&sale).await;
    assert_eq!(summary["queue"]["active"], 1, "{summary}");

    // `second` holds and lets go: the freed slot is the sleeper's, not `third`'s.
    let admission = second_view["admission_token"].as_str().expect("admission_token");
    let response = app.hold(&sale, admission, &json!({ "quantity": 1 }), None).await;
    let status = response.status();
    let hold = body_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "hold: {hold}");
    let (id, token) = (hold["id"].as_str().expect("id"), hold["hold_token"].as_str().expect("hold_token"));
    assert!(app.release_hold(id, token).await.status().is_success());
    let body = eventually(GRACE, || async {
        let (_, body) = status_ok(&app, &sale, &sleeper).await;
        (body["state"] == "admitted").then_some(body)
    })
    .await
    .expect("the sleeper got the freed slot");
    assert!(body["admission_token"].is_string(), "{body}");
    let (_, body) = status_ok(&app, &sale, &third).await;
    assert_eq!(body["state"], "waiting", "the sleeper came first: {body}");
}

// --- 7. pre-queue shuffle (I8) -------------------------------------------------

#[tokio::test]
async fn the_prequeue_is_shuffled_reproducibly_from_the_revealed_seed() {
    let app = spawn_app().await;
    let starts_at = Utc::now() + chrono::Duration::seconds(3);
    let sale = app
        .create_sale_ok(&wr_sale(
            100,
            json!({ "admit_per_second": 0 }),
            json!({ "shuffle_prequeue": true, "starts_at": starts_at }),
        ))
        .await;
    let visitors = join_many(&app, &sale, 50).await;

    let before = body_json(app.get_sale(&sale).await).await;
    assert_eq!(before["state"], "scheduled", "{before}");
    assert!(before["seed"].is_null(), "the seed stays secret before the start: {before}");
    let commitment = before["seed_commitment"].as_str().expect("commitment").to_owned();
    for (_, token) in visitors.iter().take(5) {
        let (_, body) = status_ok(&app, &sale, token).await;
        assert_eq!(body["state"], "waiting", "{body}");
        assert_eq!(body["prequeue"], true, "{body}");
        assert!(body["estimated_wait_seconds"].is_null(), "{body}");
        assert_eq!(body["entry"], number(&app, &sale, token), "the entry is the join number: {body}");
    }
    assert!(before["queue"]["shuffled_entries"].is_null(), "entries are fixed at the start: {before}");
    // Nobody can be admitted, not even by hand, before the order is drawn
    // (and the admin is told so: never a 200 that admitted nobody).
    assert_error(app.admit(&sale, 3).await, StatusCode::CONFLICT, "prequeue_not_ready").await;
    assert!(Utc::now() < starts_at, "the checks before the start ran late");

    // After the start the public sale reveals the seed that matches the commitment.
    let after = eventually(Duration::from_secs(10), || async {
        let body = body_json(app.get_sale(&sale).await).await;
        body["seed"].is_string().then_some(body)
    })
    .await
    .expect("seed revealed after the start");
    assert_eq!(after["state"], "on_sale");
    assert_eq!(after["seed_commitment"], commitment.as_str());
    let seed = after["seed"].as_str().unwrap();
    assert_eq!(hex::encode(Sha256::digest(seed.as_bytes())), commitment, "sha256(seed) is the commitment");
    // The pre-queue is every number handed out before the start (50 unless
    // the server shed a join under load, see `join_many`).
    let prequeue = joined(&app, &sale).await;
    assert_eq!(after["queue"]["shuffled_entries"], prequeue, "the sale says how many entries were shuffled");
    let order = floodgate::fairness::shuffled_order(seed, prequeue as u32);
    assert_ne!(order, (1..=prequeue as u32).collect::<Vec<u32>>(), "the pre-queue was shuffled");
    let place: HashMap<u64, u64> = order.iter().enumerate().map(|(i, n)| (u64::from(*n), i as u64 + 1)).collect();

    // Everybody stands where the recomputed order puts them.
    let polls = visitors.iter().map(|(n, token)| {
        let (app, sale) = (&app, &sale);
        async move { (*n, status_ok(app, sale, token).await.1) }
    });
    for (n, body) in join_all(polls).await {
        assert_eq!(body["state"], "waiting", "{body}");
        assert_eq!(body["prequeue"], false, "{body}");
        assert_eq!(body["position"], place[&n], "visitor {n}: {body}");
        assert_eq!(body["entry"], n, "{body}");
    }
    // A later joiner queues FIFO behind the pre-queue.
    let (late, late_n, late_body) = join_ok(&app, &sale).await;
    assert_eq!(late_n, prequeue + 1);
    assert_eq!(late_body["position"], prequeue + 1, "{late_body}");
    assert_eq!(late_body["prequeue"], false, "{late_body}");

    let result = admit_ok(&app, &sale, 10).await;
    assert_eq!(result["admitted"], 10, "{result}");
    let polls = visitors.iter().map(|(n, token)| {
        let (app, sale) = (&app, &sale);
        async move { (*n, status_ok(app, sale, token).await.1) }
    });
    let mut admitted = Vec::new();
    for (n, body) in join_all(polls).await {
        if place[&n] <= 10 {
            assert_eq!(body["state"], "admitted", "visitor {n} at place {}: {body}", place[&n]);
            admitted.push(n as u32);
        } else {
            assert_eq!(body["state"], "waiting", "visitor {n} at place {}: {body}", place[&n]);
            assert_eq!(body["position"], place[&n] - 10, "{body}");
        }
    }
    admitted.sort_unstable();
    let ours: HashSet<u64> = visitors.iter().map(|(n, _)| *n).collect();
    let mut first_ten: Vec<u32> = order[..10].iter().copied().filter(|n| ours.contains(&u64::from(*n))).collect();
    first_ten.sort_unstable();
    assert_eq!(admitted, first_ten, "exactly the first 10 of the recomputed order");
    assert_eq!(status_ok(&app, &sale, &late).await.1["position"], prequeue + 1 - 10);
}

// --- 8. rate limits ----------------------------------------------------------

#[tokio::test]
async fn joins_over_the_per_ip_rate_get_429_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limits.join_per_second = 2).await;
    let sale = app.create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 0 }), json!({}))).await;
    let responses = join_all((0..20).map(|_| app.join(&sale, None))).await;
    let (mut created, mut limited) = (0, 0);
    for response in responses {
        match response.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after(&response).expect("Retry-After on 429");
                assert!((1..=5).contains(&wait), "Retry-After {wait}");
                assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
                limited += 1;
            }
            other => panic!("unexpected {other}: {}", body_json(response).await),
        }
    }
    assert!((1..=6).contains(&created), "burst of 4 at 2/s: {created} got in");
    assert_eq!(created + limited, 20);
    assert!(limited >= 14, "{limited} limited");
}

#[tokio::test]
async fn behind_a_proxy_only_its_forwarded_address_counts_not_the_clients_claim() {
    let app = spawn_app_with(|s| {
        s.rate_limits.join_per_second = 2;
        s.rate_limits.trusted_proxies = 1;
    })
    .await;
    let sale = app.create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 0 }), json!({}))).await;
    let url = app.url(&format!("/api/v1/sales/{sale}/queue"));
    // One client behind the proxy (which appended 127.0.0.7) writes a new
    // address of its own into every request: the limit still counts one.
    let spoofing = (0..20).map(|i| {
        let request = app.client.post(&url).header("X-Forwarded-For", format!("127.1.0.{i}, 127.0.0.7"));
        async move { request.send().await.expect("request").status() }
    });
    let statuses = join_all(spoofing).await;
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(limited >= 14, "the spoofed entries were believed: {statuses:?}");
    // Another client behind the same proxy has its own budget.
    let other = app.client.post(&url).header("X-Forwarded-For", "127.0.0.8").send().await.unwrap();
    assert_eq!(other.status(), StatusCode::CREATED);
}

// --- 9. closed, sold out and paused sales -----------------------------------

#[tokio::test]
async fn closed_sales_refuse_joins_and_tell_waiting_visitors() {
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&wr_sale(10, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;
    let (first, _, _) = join_ok(&app, &sale).await;
    let (second, _, _) = join_ok(&app, &sale).await;

    // Paused: the line stands still, holds are refused, status says so.
    let response = app.patch_sale(&sale, &json!({ "action": "pause" })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = status_until(&app, &sale, &second, |b| b["paused"] == true).await;
    assert_eq!(body["state"], "waiting", "{body}");
    assert!(body["estimated_wait_seconds"].is_null(), "{body}");
    admit_ok(&app, &sale, 1).await;
    let body = status_until(&app, &sale, &first, |b| b["paused"] == true).await;
    assert_eq!(body["state"], "admitted", "{body}");
    let admission = body["admission_token"].as_str().unwrap().to_owned();
    assert_error(
        app.hold(&sale, &admission, &json!({ "quantity": 1 }), None).await,
        StatusCode::CONFLICT,
        "sale_paused",
    )
    .await;
    let response = app.patch_sale(&sale, &json!({ "action": "resume" })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = status_until(&app, &sale, &second, |b| b["paused"] == false).await;
    assert_eq!(body["state"], "waiting", "{body}");
    let response = app.hold(&sale, &admission, &json!({ "quantity": 1 }), None).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Closed: no new joins or re-joins; waiting visitors learn it.
    let response = app.patch_sale(&sale, &json!({ "action": "close" })).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_error(app.join(&sale, None).await, StatusCode::GONE, "sale_closed").await;
    assert_error(app.join(&sale, Some(&second)).await, StatusCode::GONE, "sale_closed").await;
    status_until(&app, &sale, &second, |b| b["state"] == "closed").await;
}

#[tokio::test]
async fn sold_out_sales_refuse_joins() {
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&wr_sale(1, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;
    let (buyer, _, _) = join_ok(&app, &sale).await;
    let (waiting, _, _) = join_ok(&app, &sale).await;
    admit_ok(&app, &sale, 1).await;
    let admission = status_ok(&app, &sale, &buyer).await.1["admission_token"].as_str().unwrap().to_owned();
    let response = app.hold(&sale, &admission, &json!({ "quantity": 1 }), None).await;
    let hold = body_json(response).await;
    let response = app.dev_checkout(hold["id"].as_str().unwrap(), hold["hold_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", body_json(response).await);

    let sold_out = eventually(Duration::from_secs(5), || async {
        let response = app.join(&sale, None).await;
        (response.status() == StatusCode::GONE).then_some(response)
    })
    .await
    .expect("joins refused once sold out");
    assert_error(sold_out, StatusCode::GONE, "sold_out").await;
    status_until(&app, &sale, &waiting, |b| b["state"] == "sold_out").await;
}

// --- adaptive admission ----------------------------------------------------------

/// The admission rate in force (the adaptive controller's).
async fn effective_rate(app: &TestApp, sale: &str) -> f64 {
    let body = app.admin_get_sale(sale).await;
    body["admission"]["effective_admit_per_second"].as_f64().unwrap_or_else(|| panic!("no effective rate: {body}"))
}

#[tokio::test]
async fn adaptive_admission_rises_while_holds_are_healthy_and_backs_off_when_they_are_slow() {
    let app = spawn_app().await;
    let admission = json!({ "admit_per_second": 4, "max_active": 100_000, "mode": "adaptive",
                            "max_admit_per_second": 30, "hold_p99_target_ms": 200 });
    let sale = app.create_sale_ok(&wr_sale(1000, admission, json!({ "shuffle_prequeue": false }))).await;
    let view = wait_started(&app, &sale).await;
    assert_eq!(view["admission"]["mode"], "adaptive", "{view}");
    join_many(&app, &sale, 300).await;

    // Healthy (no slow hold) with a line waiting: the rate climbs from 4.
    let risen = eventually(Duration::from_secs(20), || async {
        let rate = effective_rate(&app, &sale).await;
        (rate >= 7.0).then_some(rate)
    })
    .await
    .expect("the adaptive rate rises while the hold path is healthy");
    assert!(risen <= 30.0, "never above the ceiling: {risen}");

    // One buyer's hold made slow for real: another transaction holds their
    // purchase-count row (as a concurrent hold of theirs would), so the hold
    // waits 800 ms, far over the 200 ms target.
    app.hold_ok(&sale, "v:slow", &json!({ "quantity": 1 })).await;
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("SELECT units FROM user_purchases WHERE sale_id = $1 AND visitor_id = 'v:slow' FOR UPDATE")
        .bind(&sale)
        .fetch_one(&mut *blocker)
        .await
        .unwrap();
    let before = effective_rate(&app, &sale).await;
    let token = app.admission_token(&sale, "v:slow");
    let one = json!({ "quantity": 1 });
    let slow_hold = app.hold(&sale, &token, &one, None);
    let release = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        blocker.commit().await.unwrap();
    };
    let (response, ()) = tokio::join!(slow_hold, release);
    assert_eq!(response.status(), StatusCode::CREATED);
    let lowered = eventually(Duration::from_secs(5), || async {
        let rate = effective_rate(&app, &sale).await;
        (rate <= before * 0.8).then_some(rate)
    })
    .await;
    assert!(lowered.is_some(), "a slow hold path lowers the rate (it was {before})");
    let stats = app.admin_get_sale(&sale).await;
    assert!(stats["queue"]["admitted"].as_u64().unwrap() > 0, "{stats}");
}

// --- the waiting room without Postgres ---------------------------------------------

#[tokio::test]
async fn visitors_in_line_do_not_notice_postgres_going_away() {
    let app = spawn_app().await;
    let sale =
        app.create_sale_ok(&wr_sale(100, json!({ "admit_per_second": 0 }), json!({ "shuffle_prequeue": false }))).await;
    wait_started(&app, &sale).await;
    let (token, n, _) = join_ok(&app, &sale).await;
    status_ok(&app, &sale, &token).await;

    // This instance can no longer reach Postgres (its pool is closed: every
    // query fails as in an outage), and the cached sale row goes stale.
    app.state.db.close().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, body) = status_ok(&app, &sale, &token).await;
    assert_eq!(body["state"], "waiting", "{body}");
    let (_, m, _) = join_ok(&app, &sale).await;
    assert!(m > n, "a new visitor still gets a place");

    // What needs Postgres says so, with Retry-After.
    let admission = app.admission_token(&sale, "v:buyer");
    let hold = app.hold(&sale, &admission, &json!({ "quantity": 1 }), None).await;
    assert_eq!(hold.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(hold.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn admitting_by_hand_before_the_prequeue_order_is_written_says_so() {
    let app = spawn_app().await;
    let starts_at = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let sale =
        app.create_sale_ok(&wr_sale(100, json!({ "admit_per_second": 0 }), json!({ "starts_at": starts_at }))).await;
    for _ in 0..3 {
        join_ok(&app, &sale).await;
    }
    // The pre-queue is still open, its order not drawn: admitting now would
    // pick by join number. Never a 200 that admitted nobody.
    let response = app.admit(&sale, 2).await;
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert_error(response, StatusCode::CONFLICT, "prequeue_not_ready").await;
    assert_eq!(app.admin_get_sale(&sale).await["queue"]["admitted"], 0);
}

#[tokio::test]
async fn an_expired_hold_does_not_free_the_slot_of_its_buyers_next_hold() {
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&wr_sale(
            10,
            json!({ "admit_per_second": 0, "max_active": 10 }),
            json!({ "shuffle_prequeue": false, "hold_ttl_seconds": 4 }),
        ))
        .await;
    wait_started(&app, &sale).await;
    let (token, _, _) = join_ok(&app, &sale).await;
    admit_ok(&app, &sale, 1).await;
    let (_, body) = status_ok(&app, &sale, &token).await;
    let admission = body["admission_token"].as_str().expect("admitted").to_owned();
    let first = app.hold(&sale, &admission, &json!({ "quantity": 1 }), None).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = body_json(first).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let second = app.hold(&sale, &admission, &json!({ "quantity": 1 }), None).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let second = body_json(second).await;

    // The first hold expires while the second is still on.
    let (id, hold_token) = (first["id"].as_str().unwrap(), first["hold_token"].as_str().unwrap());
    let expired = eventually(Duration::from_secs(5), || async {
        (body_json(app.get_hold(id, hold_token).await).await["state"] == "expired").then_some(())
    })
    .await;
    assert!(expired.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let summary = app.admin_get_sale(&sale).await;
    let held =
        body_json(app.get_hold(second["id"].as_str().unwrap(), second["hold_token"].as_str().unwrap()).await).await;
    assert_eq!(held["state"], "held", "the second hold outlives the first: {held}");
    assert_eq!(summary["queue"]["active"], 1, "the buyer still holds, their slot counts: {summary}");
}
