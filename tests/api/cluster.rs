//! What Redis Cluster asks of the waiting room (issue 14): every key a
//! command or script touches belongs to one sale and carries that sale's
//! hash tag `{<sale>}`, so one command never spans two slots, and nothing
//! scans the keyspace or flushes it. Checked by watching (MONITOR) every
//! command a private Redis receives while the product runs a sale through
//! all of its scripts, and asking Redis itself (`COMMAND GETKEYS`) which
//! arguments are keys.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    body_json, eventually, retry_after, sale_json, spawn_app_with, spawn_sibling, PrivateCluster, PrivateRedis,
    TestApp, ADMIN_KEY,
};

/// The arguments of one `MONITOR` line (`<time> [<db> <client>] "CMD" "arg" ...`).
fn monitored_args(line: &str) -> Option<Vec<String>> {
    let rest = &line[line.find("] ")? + 2..];
    let mut args = Vec::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => arg.push(chars.next().unwrap_or('\\')),
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    (!args.is_empty()).then_some(args)
}

/// The hash tag of a key: what lies between its first `{` and the next `}`.
fn hash_tag(key: &str) -> Option<&str> {
    let open = key.find('{')?;
    let close = key[open + 1..].find('}')? + open + 1;
    (close > open + 1).then(|| &key[open + 1..close])
}

async fn admin_post(app: &TestApp, path: &str, body: Value) -> Value {
    let response = app.client.post(app.url(path)).bearer_auth(ADMIN_KEY).json(&body).send().await.expect("request");
    let status = response.status();
    let body = body_json(response).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Joins with a solved challenge when the sale asks for one.
async fn join(app: &TestApp, sale: &str) -> String {
    let challenge = body_json(app.get(&format!("/api/v1/sales/{sale}/challenge")).await).await;
    let bits = challenge["difficulty_bits"].as_u64().unwrap_or(0) as u8;
    let body = match challenge["challenge"].as_str() {
        Some(c) if bits > 0 => json!({ "challenge": c, "nonce": floodgate::gate::challenge::solve(c, bits) }),
        _ => json!({}),
    };
    let response = app.client.post(app.url(&format!("/api/v1/sales/{sale}/queue"))).json(&body).send().await;
    let body = body_json(response.expect("request")).await;
    body["queue_token"].as_str().unwrap_or_else(|| panic!("join: {body}")).to_owned()
}

/// A FIFO sale through the pre-queue shuffle, proof of work, polls, a hand
/// admission, an adaptive rate, a hold, a removal and the audit; then a
/// lottery through its draw.
async fn run_every_script(app: &TestApp) -> Vec<String> {
    let starts_at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let fifo = app
        .create_sale_ok(&sale_json(
            10,
            json!({ "waiting_room": true, "starts_at": starts_at, "challenge": { "difficulty_bits": 4 },
                    "admission": { "admit_per_second": 0, "mode": "adaptive" } }),
        ))
        .await;
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(join(app, &fifo).await);
    }
    eventually(Duration::from_secs(10), || async {
        (app.admin_get_sale(&fifo).await["seed"].is_string()).then_some(())
    })
    .await
    .expect("the sale started and shuffled its pre-queue");
    admin_post(app, &format!("/admin/v1/sales/{fifo}/admit"), json!({ "count": 2 })).await;
    let mut admission = None;
    for token in &tokens {
        let status = app.status_patiently(&fifo, token).await;
        if let Some(a) = status["admission_token"].as_str() {
            admission.get_or_insert(a.to_owned());
        }
    }
    let admission = admission.expect("an admitted visitor");
    // The instance's copy of the sale may say "scheduled" for a moment more.
    let held = eventually(Duration::from_secs(5), || async {
        (app.hold(&fifo, &admission, &json!({ "quantity": 1 }), None).await.status() == StatusCode::CREATED)
            .then_some(())
    })
    .await;
    assert!(held.is_some(), "an admitted visitor holds a unit");
    let claims = app.state.tokens.verify(&tokens[3], floodgate::tokens::Purpose::Queue, Some(&fifo)).expect("token");
    admin_post(app, &format!("/admin/v1/sales/{fifo}/queue/remove"), json!({ "visitor_ids": [claims.sub] })).await;
    app.assert_audit_clean(&fifo).await;

    let lottery = app
        .create_sale_ok(&sale_json(
            10,
            json!({ "mode": "lottery", "waiting_room": true,
                    "starts_at": chrono::Utc::now() + chrono::Duration::hours(1) }),
        ))
        .await;
    for _ in 0..3 {
        join(app, &lottery).await;
    }
    admin_post(app, &format!("/admin/v1/sales/{lottery}/lottery/draw"), json!({ "winners": 1 })).await;
    // A few ticks of the jobs (line refresh, admission, metrics) as well.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    vec![fifo, lottery]
}

#[tokio::test]
async fn every_key_of_a_command_or_script_carries_its_sales_hash_tag() {
    let redis = PrivateRedis::start();
    let app = spawn_app_with(|s| redis.configure(s)).await;
    let file = std::env::temp_dir().join(format!("floodgate-monitor-{}.txt", redis.port));
    let mut monitor = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "monitor"])
        .stdout(std::fs::File::create(&file).expect("monitor file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli runs");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sales = run_every_script(&app).await;

    let _ = monitor.kill();
    let _ = monitor.wait();
    let text = std::fs::read_to_string(&file).expect("monitor output");
    let _ = std::fs::remove_file(&file);
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connection");
    let (mut commands, mut from_scripts, mut keyed) = (BTreeMap::<String, usize>::new(), 0, 0);
    for line in text.lines() {
        let Some(args) = monitored_args(line) else { continue };
        let name = args[0].to_uppercase();
        assert!(
            !["KEYS", "SCAN", "FLUSHDB", "FLUSHALL", "RANDOMKEY"].contains(&name.as_str()),
            "a keyspace-wide command: {line}"
        );
        if line.contains(" lua] ") {
            from_scripts += 1;
        }
        *commands.entry(name).or_default() += 1;
        let mut getkeys = redis::cmd("COMMAND");
        getkeys.arg("GETKEYS");
        for arg in &args {
            getkeys.arg(arg.as_bytes());
        }
        // Commands without keys (PING, SCRIPT LOAD, CLIENT, ...) answer an error.
        let Ok(keys): Result<Vec<String>, _> = getkeys.query_async(&mut conn).await else { continue };
        keyed += 1;
        let tags: BTreeSet<Option<&str>> = keys.iter().map(|k| hash_tag(k)).collect();
        assert_eq!(tags.len(), 1, "one command, keys of several slots: {line}");
        let tag = tags.into_iter().next().flatten().unwrap_or_else(|| panic!("a key without a hash tag: {line}"));
        assert!(sales.iter().any(|s| s == tag), "hash tag {tag} is not a sale's: {line}");
    }
    assert!(keyed >= 50, "only {keyed} commands with keys were seen: {commands:?}");
    assert!(from_scripts >= 30, "the scripts ran ({from_scripts} commands from Lua): {commands:?}");
    for script_command in ["EVALSHA", "HSET", "HINCRBY"] {
        assert!(commands.contains_key(script_command), "{script_command} never seen: {commands:?}");
    }
}

/// A join or poll during a failover: 2xx, or 503 with `Retry-After`
/// (anything else fails the test). Answers whether it succeeded.
async fn answered_or_deferred(what: &str, response: reqwest::Response) -> bool {
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(retry_after(&response).is_some(), "{what}: 503 without Retry-After");
        return false;
    }
    let body = body_json(response).await;
    assert!(status.is_success(), "{what}: {status} {body}");
    true
}

/// SPEC §7: "a master failover costs seconds of 503s, never data". Two
/// instances run a sale on a cluster of their own; the master serving the
/// sale's slot is killed (`kill -9`) once its replica has every write. Joins
/// answer 503 with `Retry-After` until the replica is promoted, then work
/// again; every place, admission slot and order survives: admission goes on
/// in join order within `max_active`, and the audit is clean.
#[tokio::test]
async fn killing_the_sales_master_costs_seconds_of_503_and_loses_no_place_or_order() {
    let mut cluster = PrivateCluster::start();
    let nodes = cluster.urls();
    let app = spawn_app_with(|s| {
        s.redis.cluster_nodes = nodes;
        s.redis.timeout_ms = 800;
    })
    .await;
    let sibling = spawn_sibling(&app).await;
    let sale = app
        .create_sale_ok(&sale_json(
            40,
            json!({ "waiting_room": true, "shuffle_prequeue": false, "per_user_limit": 2,
                    "admission": { "admit_per_second": 0, "max_active": 6, "abandon_after_seconds": 300 } }),
        ))
        .await;
    let instances = [&app, &sibling];
    let mut tokens = Vec::new();
    for i in 0..30 {
        let response = instances[i % 2].join(&sale, None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        tokens.push(body_json(response).await["queue_token"].as_str().expect("token").to_owned());
    }
    let frozen = eventually(Duration::from_secs(5), || async {
        (app.status_patiently(&sale, &tokens[0]).await["prequeue"] == false).then_some(())
    })
    .await;
    assert!(frozen.is_some(), "the sale started");
    assert_eq!(app.admit(&sale, 6).await.status(), StatusCode::OK);
    let mut admissions = Vec::new();
    for token in &tokens[..6] {
        admissions.push(admitted(&sibling, &sale, token).await.expect("admitted"));
    }
    // Three buyers pay before the failover.
    let mut orders = Vec::new();
    for admission in &admissions[..3] {
        orders.push(hold_and_pay(&app, &sale, admission).await);
    }

    let master = cluster.master_of(&format!("{{{sale}}}"));
    cluster.wait_replicated(master);
    cluster.kill(master);
    let killed = Instant::now();
    let mut last_refusal = None;
    let mut joined_after = Vec::new();
    let mut answered_in_a_row = 0;
    while answered_in_a_row < 3 {
        assert!(killed.elapsed() < Duration::from_secs(40), "the sale did not recover from the failover");
        let instance = instances[joined_after.len() % 2];
        let response = instance.join(&sale, None).await;
        let status = response.status();
        let joined = if status == StatusCode::CREATED {
            joined_after.push(body_json(response).await["queue_token"].as_str().expect("token").to_owned());
            true
        } else {
            answered_or_deferred("join", response).await
        };
        let polled = answered_or_deferred("poll", instance.status(&sale, &tokens[20]).await).await;
        if joined && polled {
            answered_in_a_row += 1;
        } else {
            answered_in_a_row = 0;
            last_refusal = Some(killed.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let outage = last_refusal.unwrap_or_default();
    eprintln!("failover: 503s for {outage:?} after the kill");
    assert!(outage < Duration::from_secs(20), "503s for {outage:?}");
    // The node asked may learn of the promotion a moment after the clients did.
    let seen_since = Instant::now();
    let mut now_serving = cluster.master_of(&format!("{{{sale}}}"));
    while now_serving == master && seen_since.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        now_serving = cluster.master_of(&format!("{{{sale}}}"));
    }
    assert_ne!(now_serving, master, "a replica took over the slot");

    // Nothing was lost: the places, numbering above the old tokens, the
    // admitted visitors' slots (max_active stays full), the orders.
    for token in &joined_after {
        let n = app.state.tokens.verify(token, floodgate::tokens::Purpose::Queue, Some(&sale)).expect("token").n;
        assert!(n.expect("join number") > 30, "no join number is handed out twice: {n:?}");
    }
    let waiting = app.status_patiently(&sale, &tokens[20]).await;
    assert_eq!((&waiting["state"], &waiting["position"]), (&json!("waiting"), &json!(15)), "{waiting}");
    for admission in &admissions[3..] {
        orders.push(hold_and_pay(&sibling, &sale, admission).await);
    }
    assert_eq!(app.admit(&sale, 6).await.status(), StatusCode::OK);
    for (i, token) in tokens.iter().enumerate().take(12).skip(6) {
        assert!(admitted(&sibling, &sale, token).await.is_some(), "visitor {i} is admitted after the failover");
    }
    for (i, token) in tokens.iter().enumerate().skip(12) {
        let status = app.status_patiently(&sale, token).await;
        assert_eq!(status["state"], "waiting", "visitor {i} after the failover: {status}");
    }
    let view = app.admin_get_sale(&sale).await;
    assert!(view["queue"]["active"].as_u64().expect("active") <= 6, "max_active holds: {view}");
    let sold: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE sale_id = $1 AND state = 'confirmed'")
        .bind(&sale)
        .fetch_one(&app.db)
        .await
        .expect("orders");
    assert_eq!(sold as usize, orders.len(), "every paid order is confirmed");
    let audit = app.assert_audit_clean(&sale).await;
    assert_eq!(audit["units"]["sold"], 12);
}

/// The admission token of the visitor with `token` once `app`'s snapshot of
/// the line shows the admission (it refreshes every tick).
async fn admitted(app: &TestApp, sale: &str, token: &str) -> Option<String> {
    eventually(Duration::from_secs(5), || async {
        let status = app.status_patiently(sale, token).await;
        status["admission_token"].as_str().map(str::to_owned)
    })
    .await
}

/// Holds two units with `admission` and pays for them (dev checkout); the
/// order id.
async fn hold_and_pay(app: &TestApp, sale: &str, admission: &str) -> String {
    let response = app.hold(sale, admission, &json!({ "quantity": 2 }), None).await;
    let status = response.status();
    let hold = body_json(response).await;
    assert_eq!(status, StatusCode::CREATED, "hold: {hold}");
    let (id, token) = (hold["id"].as_str().expect("hold id"), hold["hold_token"].as_str().expect("hold token"));
    let response = app.dev_checkout(id, token).await;
    let status = response.status();
    let paid = body_json(response).await;
    assert_eq!(status, StatusCode::OK, "checkout: {paid}");
    paid["order"]["id"].as_str().expect("order id").to_owned()
}
