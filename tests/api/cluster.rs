//! What Redis Cluster asks of the waiting room (issue 14): every key a
//! command or script touches belongs to one sale and carries that sale's
//! hash tag `{<sale>}`, so one command never spans two slots, and nothing
//! scans the keyspace or flushes it. Checked by watching (MONITOR) every
//! command a private Redis receives while the product runs a sale through
//! all of its scripts, and asking Redis itself (`COMMAND GETKEYS`) which
//! arguments are keys.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body_json, eventually, sale_json, spawn_app_with, PrivateRedis, TestApp, ADMIN_KEY};

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
    let app = spawn_app_with(|s| s.redis.url = redis.url()).await;
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
