//! The gate (SPEC §4a, issue 18): proof of work with every refusal code and
//! single use across instances, the adaptive difficulty and its isolation
//! between networks, access rules (IPv4 and IPv6, through the trusted-proxy
//! rule), invite-only sales, and what admins and Prometheus see of it.
//!
//! Other client addresses come from binding the client to another loopback
//! address (127.0.1.1 is another /24 than 127.0.0.1), never from a header,
//! except where a trusted proxy is configured and the test plays that proxy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use floodgate::gate::challenge::{leading_zero_bits, solve};
use floodgate::tokens::Purpose;
use futures::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{
    assert_error, body_json, eventually, sale_json, spawn_app, spawn_app_with, spawn_sibling, TestApp, ADMIN_KEY,
};

/// An on-sale FIFO sale with a waiting room that admits nobody by itself,
/// `extra` overriding the defaults.
fn gated_sale(extra: Value) -> Value {
    let mut sale = sale_json(
        10,
        json!({
            "waiting_room": true,
            "shuffle_prequeue": false,
            "admission": { "admit_per_second": 0, "max_active": 10 },
        }),
    );
    if let (Some(base), Some(extra)) = (sale.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    sale
}

/// A client whose requests come from `ip` (a loopback address).
fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().expect("ip"))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

async fn get_challenge(app: &TestApp, client: &reqwest::Client, sale: &str) -> (String, u8) {
    let response = client.get(app.url(&format!("/api/v1/sales/{sale}/challenge"))).send().await.expect("request");
    let status = response.status();
    let body = body_json(response).await;
    assert_eq!(status, StatusCode::OK, "challenge: {body}");
    let bits = body["difficulty_bits"].as_u64().expect("difficulty_bits") as u8;
    assert!(body["expires_at"].is_string(), "{body}");
    (body["challenge"].as_str().expect("challenge").to_owned(), bits)
}

async fn join_with(app: &TestApp, client: &reqwest::Client, sale: &str, body: &Value) -> reqwest::Response {
    client.post(app.url(&format!("/api/v1/sales/{sale}/queue"))).json(body).send().await.expect("request")
}

/// Fetches, solves and joins; the new place's body.
async fn solve_and_join(app: &TestApp, client: &reqwest::Client, sale: &str) -> Value {
    let (challenge, bits) = get_challenge(app, client, sale).await;
    let nonce = solve(&challenge, bits);
    let response = join_with(app, client, sale, &json!({ "challenge": challenge, "nonce": nonce })).await;
    let status = response.status();
    let body = body_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "join: {body}");
    body
}

async fn put_access(app: &TestApp, path: &str, rules: &Value) -> reqwest::Response {
    app.client.put(app.url(path)).bearer_auth(ADMIN_KEY).json(rules).send().await.expect("request")
}

#[tokio::test]
async fn every_refusal_has_its_code_and_a_solved_challenge_joins_once() {
    let app = spawn_app().await;
    let sale = app.create_sale_ok(&gated_sale(json!({ "challenge": { "difficulty_bits": 8 } }))).await;
    let other = app.create_sale_ok(&gated_sale(json!({ "challenge": { "difficulty_bits": 8 } }))).await;
    let view = body_json(app.get_sale(&sale).await).await;
    assert_eq!(view["challenge"], json!({ "difficulty_bits": 8, "max_difficulty_bits": 20 }));
    let c = &app.client;

    // No solution at all.
    assert_error(app.join(&sale, None).await, StatusCode::FORBIDDEN, "challenge_required").await;
    assert_error(
        join_with(&app, c, &sale, &json!({ "nonce": "1" })).await,
        StatusCode::FORBIDDEN,
        "challenge_required",
    )
    .await;

    let (challenge, bits) = get_challenge(&app, c, &sale).await;
    assert_eq!(bits, 8, "the first challenge of a source asks for the sale's difficulty");
    let nonce = solve(&challenge, bits);
    // The documented rule, recomputed here.
    let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    assert!(leading_zero_bits(&digest) >= 8);

    // A nonce that does not solve it, a tampered challenge, garbage, a
    // nonce that is too long: failed.
    let miss = (0..1000)
        .map(|i| format!("m{i}"))
        .find(|n| leading_zero_bits(&Sha256::digest(format!("{challenge}:{n}").as_bytes())) < 8);
    for (challenge, nonce) in [
        (challenge.clone(), miss.expect("a nonce that misses")),
        (format!("0{}", &challenge[1..]), solve(&format!("0{}", &challenge[1..]), 0)),
        ("not a challenge".to_owned(), "1".to_owned()),
        (challenge.clone(), "1".repeat(33)),
    ] {
        let body = json!({ "challenge": challenge, "nonce": nonce });
        assert_error(join_with(&app, c, &sale, &body).await, StatusCode::FORBIDDEN, "challenge_failed").await;
    }
    // Another sale's challenge, and an expired one (issued three minutes ago).
    let (theirs, their_bits) = get_challenge(&app, c, &other).await;
    let body = json!({ "challenge": theirs, "nonce": solve(&theirs, their_bits) });
    assert_error(join_with(&app, c, &sale, &body).await, StatusCode::FORBIDDEN, "challenge_expired").await;
    let serial = floodgate::gate::challenge::Serial { minute: Utc::now().timestamp() / 60 - 3, n: 1 };
    let old = app.state.challenges.issue(&sale, 8, Utc::now() - chrono::Duration::minutes(3), serial);
    let body = json!({ "challenge": old.challenge, "nonce": solve(&old.challenge, 8) });
    assert_error(join_with(&app, c, &sale, &body).await, StatusCode::FORBIDDEN, "challenge_expired").await;

    // The genuine solution joins, once.
    let solution = json!({ "challenge": challenge, "nonce": nonce });
    let response = join_with(&app, c, &sale, &solution).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let place = body_json(response).await;
    assert_error(join_with(&app, c, &sale, &solution).await, StatusCode::CONFLICT, "challenge_reused").await;

    // The queue token keeps the place without a challenge.
    let token = place["queue_token"].as_str().expect("queue token");
    let again = app.join(&sale, Some(token)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(body_json(again).await["position"], place["position"]);

    // What admins and Prometheus see.
    let gate = app.admin_get_sale(&sale).await["gate"].clone();
    assert_eq!(gate["challenges_solved"], 1, "{gate}");
    assert_eq!(gate["challenges_issued"], 1, "{gate}");
    for (code, count) in
        [("challenge_required", 2), ("challenge_failed", 4), ("challenge_expired", 2), ("challenge_reused", 1)]
    {
        assert_eq!(gate["refused"][code], count, "{code} in {gate}");
    }
    assert_eq!(gate["busiest_sources"][0]["network"], "127.0.0.0/24", "{gate}");
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for name in [
        "floodgate_challenges_issued_total",
        "floodgate_challenge_difficulty_bits_bucket",
        "reason=\"challenge_reused\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn a_challenge_joins_once_across_instances() {
    let app = spawn_app().await;
    let sibling = spawn_sibling(&app).await;
    let sale = app.create_sale_ok(&gated_sale(json!({ "challenge": { "difficulty_bits": 4 } }))).await;
    let (challenge, bits) = get_challenge(&app, &app.client, &sale).await;
    let solution = json!({ "challenge": challenge, "nonce": solve(&challenge, bits) });
    // Twenty joins with one solution at once, half through each instance.
    let sale = &sale;
    let joins = (0..20).map(|i| {
        let instance = if i % 2 == 0 { &app } else { &sibling };
        let solution = solution.clone();
        async move { join_with(instance, &instance.client, sale, &solution).await.status() }
    });
    let mut statuses: HashMap<StatusCode, usize> = HashMap::new();
    for status in join_all(joins).await {
        *statuses.entry(status).or_default() += 1;
    }
    assert_eq!(statuses.get(&StatusCode::CREATED), Some(&1), "{statuses:?}");
    assert_eq!(statuses.get(&StatusCode::CONFLICT), Some(&19), "{statuses:?}");
}

#[tokio::test]
async fn a_realistic_difficulty_is_solved_natively() {
    let app = spawn_app().await;
    let demo = floodgate::demo::DEMO_DIFFICULTY;
    let sale = app.create_sale_ok(&gated_sale(json!({ "challenge": { "difficulty_bits": demo } }))).await;
    let started = std::time::Instant::now();
    let place = solve_and_join(&app, &app.client, &sale).await;
    assert_eq!(place["state"], "waiting");
    println!("solved {demo} bits and joined in {:?}", started.elapsed());
}

#[tokio::test]
async fn the_thousandth_place_from_one_network_costs_2_to_the_10_times_the_first() {
    let app = spawn_app().await;
    let sale = app
        .create_sale_ok(&gated_sale(json!({
            "units": { "count": 2000 },
            "challenge": { "difficulty_bits": 1, "max_difficulty_bits": 16 },
        })))
        .await;
    // One bot on 127.0.0.1 takes a thousand places, ten at a time.
    let bot = client_from("127.0.0.1");
    let mut difficulties = Vec::new();
    for _ in 0..100 {
        let rounds = (0..10).map(|_| async {
            let (challenge, bits) = get_challenge(&app, &bot, &sale).await;
            let nonce = solve(&challenge, bits);
            let response = join_with(&app, &bot, &sale, &json!({ "challenge": challenge, "nonce": nonce })).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            bits
        });
        difficulties.extend(join_all(rounds).await);
    }
    difficulties.sort_unstable();
    let (first, thousandth) = (difficulties[0], difficulties[999]);
    assert_eq!(first, 1);
    assert!(thousandth >= first + 10, "the 1000th place asked {thousandth} bits, the first {first}");
    // Another /24 and another address of the same /24 see different prices:
    // the network's neighbour pays for the network's thousand places too.
    let (_, elsewhere) = get_challenge(&app, &client_from("127.0.1.1"), &sale).await;
    assert_eq!(elsewhere, 1, "a second network is not affected");
    let (_, neighbour) = get_challenge(&app, &client_from("127.0.0.2"), &sale).await;
    assert!(neighbour > 8, "the same /24 pays for its places: {neighbour} bits");
    // Another sale counts its own places.
    let other = app.create_sale_ok(&gated_sale(json!({ "challenge": { "difficulty_bits": 1 } }))).await;
    assert_eq!(get_challenge(&app, &bot, &other).await.1, 1);
}

#[tokio::test]
async fn denied_networks_are_refused_everywhere_and_allowed_ones_skip_the_challenge() {
    let app = spawn_app().await;
    let sibling = spawn_sibling(&app).await;
    let sale = app.create_sale_ok(&gated_sale(json!({ "challenge": { "difficulty_bits": 4 } }))).await;
    let bot = client_from("127.0.0.1");
    let person = client_from("127.0.1.1");
    let place = solve_and_join(&app, &bot, &sale).await;
    let token = place["queue_token"].as_str().expect("token").to_owned();
    let admission = app.admission_token(&sale, "v:bot");

    // Deny the bot's network on this sale through one instance.
    let response =
        put_access(&app, &format!("/admin/v1/sales/{sale}/access"), &json!({ "deny": ["127.0.0.0/24"] })).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["rules"]["deny"], json!(["127.0.0.0/24"]));
    // Both instances refuse it on challenge, join, status and hold (the
    // sibling within about a second).
    for instance in [&app, &sibling] {
        let url = |path: &str| instance.url(&format!("/api/v1/sales/{sale}{path}"));
        let denied = eventually(Duration::from_secs(5), || async {
            let r = bot.get(url("/queue/status")).bearer_auth(&token).send().await.expect("request");
            (r.status() == StatusCode::FORBIDDEN).then_some(r)
        })
        .await
        .expect("the status poll is refused within seconds");
        assert_error(denied, StatusCode::FORBIDDEN, "access_denied").await;
        let challenge = bot.get(url("/challenge")).send().await.expect("request");
        assert_error(challenge, StatusCode::FORBIDDEN, "access_denied").await;
        let join = bot.post(url("/queue")).bearer_auth(&token).send().await.expect("request");
        assert_error(join, StatusCode::FORBIDDEN, "access_denied").await;
        let hold = bot.post(url("/holds")).bearer_auth(&admission).json(&json!({ "quantity": 1 })).send().await;
        assert_error(hold.expect("request"), StatusCode::FORBIDDEN, "access_denied").await;
    }
    // Another network goes on; allowed, it skips the challenge.
    assert_eq!(get_challenge(&app, &person, &sale).await.1, 4);
    put_access(
        &app,
        &format!("/admin/v1/sales/{sale}/access"),
        &json!({ "deny": ["127.0.0.0/24"], "allow": ["127.0.1.1"] }),
    )
    .await;
    assert_eq!(get_challenge(&app, &person, &sale).await.1, 0);
    let response = person.post(app.url(&format!("/api/v1/sales/{sale}/queue"))).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::CREATED, "an allowed source joins without a challenge");

    // Global rules apply to every sale; a more specific allow wins over them.
    let fresh = app.create_sale_ok(&gated_sale(json!({}))).await;
    put_access(&app, "/admin/v1/access", &json!({ "deny": ["127.0.1.0/24"] })).await;
    assert_error(
        person.get(app.url(&format!("/api/v1/sales/{fresh}/challenge"))).send().await.expect("request"),
        StatusCode::FORBIDDEN,
        "access_denied",
    )
    .await;
    assert_eq!(get_challenge(&app, &person, &sale).await.1, 0, "the sale's /32 allow is more specific");
    let global =
        body_json(app.client.get(app.url("/admin/v1/access")).bearer_auth(ADMIN_KEY).send().await.expect("request"))
            .await;
    assert_eq!(global["rules"]["deny"], json!(["127.0.1.0/24"]));

    // Bad rules are refused with the entry named.
    let bad = put_access(&app, "/admin/v1/access", &json!({ "deny": ["10.0.0.0/33"] })).await;
    let body = assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
    assert!(body["error"]["message"].as_str().expect("message").contains("10.0.0.0/33"));
}

#[tokio::test]
async fn rules_judge_the_address_the_trusted_proxy_reports() {
    let app = spawn_app_with(|s| {
        s.rate_limits.trusted_proxies = 1;
        s.access.deny = vec!["2001:db8::/32".into(), "198.51.100.0/24".into()];
        s.access.allow = vec!["2001:db8:beef::/48".into()];
    })
    .await;
    let sale = app.create_sale_ok(&gated_sale(json!({ "challenge": { "difficulty_bits": 2 } }))).await;
    let from = |forwarded: &str| {
        app.client
            .get(app.url(&format!("/api/v1/sales/{sale}/challenge")))
            .header("X-Forwarded-For", forwarded.to_owned())
    };
    for (forwarded, expected) in [
        ("2001:db8::1", Some("access_denied")),
        ("198.51.100.7", Some("access_denied")),
        // The client's own claim left of the proxy's entry changes nothing.
        ("2001:db8::1, 203.0.113.9", None),
        ("2001:db9::1", None),
    ] {
        let response = from(forwarded).send().await.expect("request");
        match expected {
            Some(code) => {
                assert_error(response, StatusCode::FORBIDDEN, code).await;
            }
            None => assert_eq!(response.status(), StatusCode::OK, "{forwarded}"),
        }
    }
    let allowed = body_json(from("2001:db8:beef::5").send().await.expect("request")).await;
    assert_eq!(allowed["difficulty_bits"], 0, "an allowed /48 inside a denied /32 skips the challenge");
    // IPv6 clients are counted by /64: another address of it pays for the first's places.
    for _ in 0..8 {
        let response = from("2001:db9:1:2::1").send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
    }
    let neighbour = body_json(from("2001:db9:1:2::99").send().await.expect("request")).await;
    assert!(neighbour["difficulty_bits"].as_u64().expect("bits") > 2, "{neighbour}");
    let elsewhere = body_json(from("2001:db9:1:3::1").send().await.expect("request")).await;
    assert_eq!(elsewhere["difficulty_bits"], 2, "another /64 is another network");

    // Without a trusted proxy the header is the client's claim and ignored.
    let direct = spawn_app_with(|s| s.access.deny = vec!["198.51.100.0/24".into()]).await;
    let sale = direct.create_sale_ok(&gated_sale(json!({}))).await;
    let response = direct
        .client
        .get(direct.url(&format!("/api/v1/sales/{sale}/challenge")))
        .header("X-Forwarded-For", "198.51.100.7")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

/// A login token of the site, with an optional `sale` claim.
fn login_token(secret: &str, sub: &str, sale: Option<&str>, expires_in: i64) -> String {
    let mut claims = json!({ "sub": sub, "exp": Utc::now().timestamp() + expires_in });
    if let Some(sale) = sale {
        claims["sale"] = json!(sale);
    }
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("login token")
}

#[tokio::test]
async fn an_invite_only_sale_gives_each_invited_user_one_place() {
    const SECRET: &str = "site-login-secret-for-invites";
    let plain = spawn_app().await;
    let refused = plain.create_sale(&gated_sale(json!({ "access": "invite" }))).await;
    assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;

    let app = spawn_app_with(|s| s.identity.jwt_hs256_secret = Some(SECRET.into())).await;
    let sale = app.create_sale_ok(&gated_sale(json!({ "access": "invite" }))).await;
    assert_eq!(body_json(app.get_sale(&sale).await).await["access"], "invite");

    assert_error(app.join(&sale, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let uninvited = login_token(SECRET, "mallory", None, 3600);
    assert_error(app.join(&sale, Some(&uninvited)).await, StatusCode::FORBIDDEN, "not_invited").await;
    let elsewhere = login_token(SECRET, "mallory", Some("s_another"), 3600);
    assert_error(app.join(&sale, Some(&elsewhere)).await, StatusCode::FORBIDDEN, "not_invited").await;
    let expired = login_token(SECRET, "alice", Some(&sale), -120);
    assert_error(app.join(&sale, Some(&expired)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let forged = login_token("someone-else", "alice", Some(&sale), 3600);
    assert_error(app.join(&sale, Some(&forged)).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // Alice on two devices at once, each with its own invite token: one place.
    let (app, sale) = (&app, &sale);
    let devices = (0..2).map(|i| login_token(SECRET, "alice", Some(sale), 3600 + i));
    let responses = join_all(devices.map(|token| async move { app.join(sale, Some(&token)).await })).await;
    let mut numbers = Vec::new();
    let mut created = 0;
    for response in responses {
        created += usize::from(response.status() == StatusCode::CREATED);
        let body = body_json(response).await;
        let claims = app.state.tokens.verify(body["queue_token"].as_str().expect("token"), Purpose::Queue, Some(sale));
        let claims = claims.expect("queue token");
        assert_eq!(claims.sub, "u:alice");
        numbers.push(claims.n);
    }
    assert_eq!(created, 1);
    assert_eq!(numbers[0], numbers[1], "both devices have the same place");
}

#[tokio::test]
async fn removed_places_say_so_hold_nothing_and_free_their_slots() {
    const SECRET: &str = "site-login-secret-for-removal";
    let app = spawn_app_with(|s| s.identity.jwt_hs256_secret = Some(SECRET.into())).await;
    let sale =
        app.create_sale_ok(&gated_sale(json!({ "admission": { "admit_per_second": 0, "max_active": 2 } }))).await;
    let join = |bearer: Option<String>| {
        let (app, sale) = (&app, &sale);
        async move {
            let response = app.join(sale, bearer.as_deref()).await;
            assert_eq!(response.status(), StatusCode::CREATED);
            body_json(response).await["queue_token"].as_str().expect("token").to_owned()
        }
    };
    let anna = join(None).await;
    let bob = join(Some(login_token(SECRET, "bob", None, 3600))).await;
    let carl = join(None).await;
    let dora = join(None).await;
    let visitor = |token: &str| app.state.tokens.verify(token, Purpose::Queue, Some(&sale)).expect("token").sub.clone();
    // The sale clock freezes the pre-queue first (409 prequeue_not_ready until then).
    let admitted = eventually(Duration::from_secs(10), || async {
        (app.admit(&sale, 2).await.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(admitted.is_some(), "the first two are admitted");
    let anna_admitted = app.status_patiently(&sale, &anna).await;
    assert_eq!(anna_admitted["state"], "admitted");
    let anna_admission = anna_admitted["admission_token"].as_str().expect("admission token").to_owned();

    let response = app
        .client
        .post(app.url(&format!("/admin/v1/sales/{sale}/queue/remove")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({ "visitor_ids": [visitor(&anna)], "user_ids": ["bob"] }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await, json!({ "removed": 2, "places_freed": 1 }));

    for token in [&anna, &bob] {
        assert_eq!(app.status_patiently(&sale, token).await["state"], "removed");
        assert_eq!(body_json(app.join(&sale, Some(token)).await).await["state"], "removed");
    }
    let hold = app.hold(&sale, &anna_admission, &json!({ "quantity": 1 }), None).await;
    assert_error(hold, StatusCode::FORBIDDEN, "place_removed").await;

    // Their two slots are free again (bob's at once, anna's at her poll).
    assert_eq!(app.admin_get_sale(&sale).await["queue"]["active"], 0);
    assert_eq!(app.admit(&sale, 2).await.status(), StatusCode::OK);
    for token in [&carl, &dora] {
        assert_eq!(app.status_patiently(&sale, token).await["state"], "admitted");
    }
    assert_eq!(app.admin_get_sale(&sale).await["queue"]["active"], 2);

    let empty = app
        .client
        .post(app.url(&format!("/admin/v1/sales/{sale}/queue/remove")))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_error(empty, StatusCode::UNPROCESSABLE_ENTITY, "invalid_request").await;
}
