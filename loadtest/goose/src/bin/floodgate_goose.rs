//! Goose scenarios for floodgate. Pick one with goose's own `--scenarios NAME`
//! (or `FG_SCENARIO=NAME`); every other goose option works as usual
//! (`--users`, `--increase-rate`, `--run-time`, `--report-file`, ...).
//!
//! | scenario | what one goose user does |
//! | --- | --- |
//! | `join`  | joins the queue again and again (each join is a new visitor) |
//! | `poll`  | is one (or, with `FG_TOKENS`, a slice of) waiting visitor(s) polling `queue/status` |
//! | `hold`  | is a stream of buyers: join a sale without waiting room (admitted at once), hold 1..4 units, pay through the signed webhook (or release, `FG_PAY_RATIO`) |
//! | `flash` | is one visitor of a flash sale: join in the burst, poll at `poll_after_ms`, hold when admitted, pay or walk away; stages 30/40/30 open on a schedule; the run ends at sold-out |
//!
//! Environment (all optional):
//! - `FG_BASE` server (default `http://127.0.0.1:8080`; loopback only), `FG_ADMIN_KEY`, `FG_WEBHOOK_SECRET`
//! - `FG_SALE` use this sale instead of creating one
//! - `FG_UNITS` units of the created sale (hold: 200000, flash: 2000)
//! - `FG_TOKENS` file of queue tokens (one a line, e.g. from `fgdrive join --out`) for `poll`
//! - `FG_POLL_PACE=1` make `poll` users wait `poll_after_ms` between polls (default: no wait)
//! - `FG_PAY_RATIO` share of holds that are paid (default 1.0 for `hold`, 0.9 for `flash`)
//! - `FG_STAGE_INTERVAL` seconds between stage releases in `flash` (default 10)
//!
//! After the run goose prints its summary (requests/s, percentiles per
//! request, status codes, errors); then the sale's audit is printed and the
//! exit status is 1 if anything was oversold or the audit failed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use floodgate_loadtest::{random_id, report_audit, sign_webhook, unix_now, webhook_body, Admin, Env, SaleSpec};
use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::prelude::*;
use rand::Rng;
use serde_json::Value;

struct Ctx {
    env: Env,
    sale: String,
    tokens: Vec<String>,
    next_token: AtomicUsize,
    pace_polls: bool,
    pay_ratio: f64,
    per_user_limit: u32,
    sold_out: AtomicBool,
}

static CTX: OnceLock<Ctx> = OnceLock::new();

fn ctx() -> &'static Ctx {
    CTX.get().expect("context set before the attack")
}

fn env_num<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Session of a `poll` or `flash` user.
#[derive(Clone)]
struct Visitor {
    queue_tokens: Vec<String>,
    next: usize,
    poll_ms: u64,
    admission: Option<String>,
    done: bool,
}

fn tx_err(msg: String) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(msg))
}

async fn send(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &str,
    f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<(u16, Value), Box<TransactionError>> {
    let rb = f(user.get_request_builder(&method, path)?);
    let req = GooseRequest::builder().method(method).path(path).name(name).set_request_builder(rb).build();
    let goose = user.request(req).await?;
    match goose.response {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = res.json::<Value>().await.unwrap_or(Value::Null);
            Ok((status, body))
        }
        Err(_) => Ok((0, Value::Null)),
    }
}

async fn join_once(user: &mut GooseUser) -> Result<(u16, Value), Box<TransactionError>> {
    let path = format!("/api/v1/sales/{}/queue", ctx().sale);
    send(user, GooseMethod::Post, &path, "join", |rb| rb).await
}

// --- join -----------------------------------------------------------------

async fn join(user: &mut GooseUser) -> TransactionResult {
    join_once(user).await?;
    Ok(())
}

// --- poll -----------------------------------------------------------------

async fn poll_start(user: &mut GooseUser) -> TransactionResult {
    let c = ctx();
    let mut mine = Vec::new();
    if !c.tokens.is_empty() {
        // Users take disjoint slices of the token file, round robin.
        let users = user.config.users.unwrap_or(1).max(1);
        let me = c.next_token.fetch_add(1, Relaxed) % users;
        mine = c.tokens.iter().skip(me).step_by(users).cloned().collect();
    }
    if mine.is_empty() {
        let (_, body) = join_once(user).await?;
        if let Some(t) = body["queue_token"].as_str() {
            mine.push(t.to_owned());
        }
    }
    user.set_session_data(Visitor { queue_tokens: mine, next: 0, poll_ms: 1000, admission: None, done: false });
    Ok(())
}

async fn poll(user: &mut GooseUser) -> TransactionResult {
    let c = ctx();
    let (token, poll_ms) = {
        let v = user.get_session_data_unchecked_mut::<Visitor>();
        if v.queue_tokens.is_empty() {
            return Err(tx_err("no queue token (join failed)".into()));
        }
        let t = v.queue_tokens[v.next % v.queue_tokens.len()].clone();
        v.next += 1;
        (t, v.poll_ms)
    };
    if c.pace_polls {
        tokio::time::sleep(Duration::from_millis(poll_ms)).await;
    }
    let path = format!("/api/v1/sales/{}/queue/status", c.sale);
    let (_, body) = send(user, GooseMethod::Get, &path, "status", |rb| rb.bearer_auth(&token)).await?;
    if let Some(ms) = body["poll_after_ms"].as_u64() {
        user.get_session_data_unchecked_mut::<Visitor>().poll_ms = ms;
    }
    Ok(())
}

// --- hold (and pay) ---------------------------------------------------------

/// What a hold attempt came to.
#[derive(PartialEq)]
enum Outcome {
    /// Held (and paid or released), or refused for good.
    Done,
    /// `409 insufficient_stock`: units may come back (a stage opening, an
    /// unpaid hold expiring).
    TryAgain,
    /// `410`: nothing left.
    SoldOut,
}

/// Holds `q` units with an admission token, then pays (or releases).
async fn hold_and_pay(user: &mut GooseUser, admission: &str, q: u32) -> Result<Outcome, Box<TransactionError>> {
    let c = ctx();
    let path = format!("/api/v1/sales/{}/holds", c.sale);
    let key = random_id("hold");
    let (status, hold) = send(user, GooseMethod::Post, &path, "hold", |rb| {
        rb.bearer_auth(admission).header("Idempotency-Key", key).json(&serde_json::json!({ "quantity": q }))
    })
    .await?;
    if status == 410 {
        return Ok(Outcome::SoldOut);
    }
    if status == 409 && hold["error"]["code"] == "insufficient_stock" {
        return Ok(Outcome::TryAgain);
    }
    if status != 201 {
        return Ok(Outcome::Done);
    }
    let hold_id = hold["id"].as_str().unwrap_or_default().to_owned();
    if rand::rng().random::<f64>() < c.pay_ratio {
        let body = webhook_body(&random_id("evt"), &hold_id, &random_id("pay"), "succeeded");
        let sig = sign_webhook(&c.env.webhook_secret, unix_now(), &body);
        send(user, GooseMethod::Post, "/api/v1/payments/webhook", "webhook", |rb| {
            rb.header("Floodgate-Signature", sig).header("content-type", "application/json").body(body)
        })
        .await?;
    } else {
        let token = hold["hold_token"].as_str().unwrap_or_default().to_owned();
        let path = format!("/api/v1/holds/{hold_id}");
        send(user, GooseMethod::Delete, &path, "release", |rb| rb.bearer_auth(token)).await?;
    }
    Ok(Outcome::Done)
}

fn quantity(limit: u32) -> u32 {
    rand::rng().random_range(1..=limit.clamp(1, 4))
}

async fn buy(user: &mut GooseUser) -> TransactionResult {
    let c = ctx();
    if c.sold_out.load(Relaxed) {
        // Nothing left: idle instead of hammering 410s.
        tokio::time::sleep(Duration::from_millis(500)).await;
        return Ok(());
    }
    let (_, joined) = join_once(user).await?;
    let Some(admission) = joined["admission_token"].as_str().map(str::to_owned) else {
        return Err(tx_err("join gave no admission token".into()));
    };
    if hold_and_pay(user, &admission, quantity(c.per_user_limit)).await? == Outcome::SoldOut {
        c.sold_out.store(true, Relaxed);
    }
    Ok(())
}

// --- flash --------------------------------------------------------------------

async fn flash_start(user: &mut GooseUser) -> TransactionResult {
    let (status, body) = join_once(user).await?;
    let token = body["queue_token"].as_str().map(str::to_owned);
    user.set_session_data(Visitor {
        queue_tokens: token.into_iter().collect(),
        next: 0,
        poll_ms: body["poll_after_ms"].as_u64().unwrap_or(1000),
        admission: body["admission_token"].as_str().map(str::to_owned),
        done: status == 410,
    });
    Ok(())
}

async fn flash_step(user: &mut GooseUser) -> TransactionResult {
    let c = ctx();
    let (done, admission, token, poll_ms) = {
        let v = user.get_session_data_unchecked::<Visitor>();
        (v.done || v.queue_tokens.is_empty(), v.admission.clone(), v.queue_tokens.first().cloned(), v.poll_ms)
    };
    if done || c.sold_out.load(Relaxed) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return Ok(());
    }
    if let Some(admission) = admission {
        // Ask for 1 after a shortage; give up after 6 tries (`next` counts
        // the tries of a flash visitor).
        let q = if user.get_session_data_unchecked::<Visitor>().next > 0 { 1 } else { quantity(c.per_user_limit) };
        let outcome = hold_and_pay(user, &admission, q).await?;
        let v = user.get_session_data_unchecked_mut::<Visitor>();
        v.next += 1;
        if outcome == Outcome::TryAgain && v.next < 6 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        } else {
            v.done = true;
        }
        return Ok(());
    }
    let jitter = rand::rng().random_range(0..=poll_ms / 5);
    tokio::time::sleep(Duration::from_millis(poll_ms - poll_ms / 10 + jitter)).await;
    let path = format!("/api/v1/sales/{}/queue/status", c.sale);
    let token = token.unwrap_or_default();
    let (_, body) = send(user, GooseMethod::Get, &path, "status", |rb| rb.bearer_auth(token)).await?;
    let v = user.get_session_data_unchecked_mut::<Visitor>();
    v.poll_ms = body["poll_after_ms"].as_u64().unwrap_or(1000).max(250);
    match body["state"].as_str().unwrap_or("") {
        "admitted" | "won" => v.admission = body["admission_token"].as_str().map(str::to_owned),
        "sold_out" | "closed" | "expired" | "lost" => v.done = true,
        _ => {}
    }
    Ok(())
}

/// Opens stages on a schedule and ends the attack at sold-out.
async fn flash_conductor(admin: Admin, sale: String, stages: usize, interval: f64, total: u64) {
    let started = Instant::now();
    {
        let (admin, sale) = (admin.clone(), sale.clone());
        tokio::spawn(async move {
            for k in 1..stages {
                tokio::time::sleep_until((started + Duration::from_secs_f64(interval * k as f64)).into()).await;
                let t = started.elapsed().as_secs_f64();
                match admin.next_stage(&sale).await {
                    Ok(_) => eprintln!("[{t:>6.1}s] stage {} released", k + 1),
                    Err(e) => eprintln!("[{t:>6.1}s] stage {} release failed: {e}", k + 1),
                }
            }
        });
    }
    let mut last_print = -10.0;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let t = started.elapsed().as_secs_f64();
        let stats = match admin.stats(&sale).await {
            Ok(stats) => stats,
            Err(e) => {
                eprintln!("[{t:>6.1}s] sale stats unavailable: {e}");
                continue;
            }
        };
        {
            let a = &stats["availability"];
            let sold = a["sold"].as_i64().unwrap_or(0);
            if t - last_print >= 2.0 {
                last_print = t;
                eprintln!(
                    "[{t:>6.1}s] {} sold {sold} held {} available {} unreleased {} | queue {}",
                    stats["state"].as_str().unwrap_or("?"),
                    a["held"],
                    a["available"],
                    a["unreleased"],
                    stats["queue"]
                );
            }
            if sold >= total as i64 || stats["state"] == "sold_out" {
                eprintln!("[{t:>6.1}s] SOLD OUT: {sold} units; time to sell-out {t:.1} s");
                println!("time to sell-out: {t:.1} s");
                ctx().sold_out.store(true, Relaxed);
                goose::trigger_killswitch("sold out");
                return;
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = GooseConfiguration::parse_args_default_or_exit();
    if config.scenarios.is_none() {
        let name = std::env::var("FG_SCENARIO").unwrap_or_else(|_| "join".into());
        config.scenarios = Some(name.parse().map_err(|e| anyhow::anyhow!("FG_SCENARIO: {e:?}"))?);
    }
    let chosen = config.scenarios.as_ref().map(|s| s.active.clone()).unwrap_or_default();
    let scenario = match chosen.as_slice() {
        [one] => one.to_lowercase(),
        _ => anyhow::bail!("choose exactly one scenario: --scenarios join|poll|hold|flash"),
    };
    if !["join", "poll", "hold", "flash"].contains(&scenario.as_str()) {
        anyhow::bail!("unknown scenario {scenario}: join, poll, hold or flash");
    }
    let env = Env::from_env();
    env.ensure_local()?;
    if let Some(host) = &config.host {
        Env { base: host.clone(), ..env.clone() }.ensure_local()?;
    }
    let admin = Admin::new(env.clone());

    let flash = scenario == "flash";
    let mut spec = SaleSpec { name: format!("goose-{scenario}"), ..SaleSpec::default() };
    match scenario.as_str() {
        "join" | "poll" => {
            // Nobody is admitted: everyone stays waiting.
            spec.admit_per_second = 0;
            spec.abandon_after_seconds = 3600;
        }
        "hold" => {
            spec.waiting_room = false;
            spec.units = env_num("FG_UNITS", 200_000);
        }
        _ => {
            spec.units = env_num("FG_UNITS", 2000);
            spec.stages = vec![30, 40, 30];
            spec.hold_ttl_seconds = 20;
            spec.admit_per_second = 200;
            spec.max_active = 500;
            spec.admission_ttl_seconds = 60;
        }
    }
    let sale = match std::env::var("FG_SALE") {
        Ok(s) if !s.is_empty() => s,
        _ => admin.create_sale(&spec).await?,
    };
    let tokens = match std::env::var("FG_TOKENS") {
        Ok(path) if !path.is_empty() => {
            std::fs::read_to_string(&path)?.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    };
    eprintln!("floodgate-goose: scenario {scenario}, sale {sale}, {} tokens from FG_TOKENS", tokens.len());
    CTX.set(Ctx {
        env: env.clone(),
        sale: sale.clone(),
        tokens,
        next_token: AtomicUsize::new(0),
        pace_polls: std::env::var("FG_POLL_PACE").is_ok_and(|v| v == "1"),
        pay_ratio: env_num("FG_PAY_RATIO", if flash { 0.9 } else { 1.0 }),
        per_user_limit: spec.per_user_limit,
        sold_out: AtomicBool::new(false),
    })
    .map_err(|_| anyhow::anyhow!("context set twice"))?;

    let (users, run_time) = match scenario.as_str() {
        "join" => (32, 20),
        "poll" => (64, 20),
        "hold" => (16, 20),
        _ => (2000, 600),
    };
    let conductor = flash.then(|| {
        tokio::spawn(flash_conductor(
            admin.clone(),
            sale.clone(),
            spec.stages.len(),
            env_num("FG_STAGE_INTERVAL", 10.0),
            spec.units,
        ))
    });

    let attack = GooseAttack::initialize_with_config(config)?
        .register_scenario(scenario!("join").register_transaction(transaction!(join).set_name("join")))
        .register_scenario(
            scenario!("poll")
                .register_transaction(transaction!(poll_start).set_on_start().set_name("poll start"))
                .register_transaction(transaction!(poll).set_name("poll")),
        )
        .register_scenario(scenario!("hold").register_transaction(transaction!(buy).set_name("buy")))
        .register_scenario(
            scenario!("flash")
                .register_transaction(transaction!(flash_start).set_on_start().set_name("arrive"))
                .register_transaction(transaction!(flash_step).set_name("visit")),
        )
        .set_default(GooseDefault::Host, env.base.as_str())?
        .set_default(GooseDefault::Users, users)?
        .set_default(GooseDefault::IncreaseRate, if flash { "2000" } else { "1000" })?
        .set_default(GooseDefault::RunTime, run_time)?;
    let started = Instant::now();
    attack.execute().await?;
    if let Some(c) = conductor {
        c.abort();
    }
    println!("run took {:.1} s", started.elapsed().as_secs_f64());
    let audit = admin.audit(&sale).await?;
    if !report_audit(&audit) {
        std::process::exit(1);
    }
    Ok(())
}
