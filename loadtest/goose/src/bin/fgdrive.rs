//! fgdrive: the custom tokio driver of floodgate's load tests.
//!
//! Goose models a load test as a fixed set of users looping over
//! transactions, each with its own HTTP client; a flash sale is 200,000
//! visitors that mostly wait (each polling at the pace the server asks for),
//! so this driver runs one cheap task per visitor and bounds the requests in
//! flight over one keep-alive pool instead (the visitors' requests go
//! through [`floodgate_loadtest::wire`], a lean HTTP/1.1 client, since the
//! driver's CPU is taken from the server it measures; setup and admin calls
//! use reqwest): joins (concurrency / 2), status
//! polls (concurrency) and holds + webhooks (concurrency) each have their own
//! bound, so one kind of request never queues behind another on the client
//! side. The progress line shows them in flight as joins+polls+buys.
//!
//! ```text
//! fgdrive create-sale [sale options]            prints the new sale's id
//! fgdrive join   --sale ID --count N [--concurrency 64] [--out FILE] [--token queue|admission]
//! fgdrive flash  [--visitors 200000] [--units 20000] [--stages 30,40,30] [--stage-interval 10]
//!                [--concurrency 256] [--pay-ratio 0.9] [--timeout 900] [--arrival-secs 0]
//!                [--think-ms 200..1500] [--pay-ratio 0.9] [--skip-ratio 0.03] [--sale ID | --create-only]
//!                [sale options; flash defaults: hold-ttl 30, admit-per-second 400, max-active 1000,
//!                 admission-ttl 120, abandon-after 120]
//! fgdrive hold-rate --sale ID --tokens FILE [--rate 400] [--seconds 20] [--json-out FILE]
//!                holds of 1 unit at a fixed rate (open loop), each buyer's admission token
//!                from FILE used up to 4 times; latency from each hold's scheduled time
//! fgdrive solve  --sale ID --count N [--concurrency 64] --out FILE
//!                fetches N challenges and writes one solved join body per line
//! fgdrive bot    --sale ID [--seconds 30] [--concurrency 8]
//!                one process taking places as fast as it can (challenge, solve, join)
//! fgdrive audit  --sale ID                      exit 1 unless ok and nothing oversold
//! fgdrive stats  --sale ID                      the admin statistics (JSON)
//! fgdrive next-stage --sale ID | admit --sale ID --count N
//! fgdrive wait-ready [--timeout 60]             until GET /readyz answers 200
//!
//! sale options: --units --stages --per-user-limit --hold-ttl --waiting-room true|false
//!               --shuffle-prequeue --admit-per-second --max-active --admission-ttl
//!               --abandon-after --admission-mode fixed|adaptive --max-admit-per-second --name
//!               --challenge-bits --max-challenge-bits
//! ```
//!
//! Environment: `FG_BASE` (default `http://127.0.0.1:8080`), `FG_ADMIN_KEY`,
//! `FG_WEBHOOK_SECRET` (defaults match `FLOODGATE_ENV=test`). Only loopback
//! addresses are accepted as targets.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use floodgate_loadtest::args::Args;
use floodgate_loadtest::stats::Recorder;
use floodgate_loadtest::wire::{Request, Wire};
use floodgate_loadtest::{
    client, random_id, report_audit, sign_webhook, solve_challenge, solve_challenge_until, unix_now, webhook_body,
    Admin, Env, SaleSpec,
};
use rand::Rng;
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Semaphore;

// The driver shares two cores with the server it measures; glibc's malloc
// was a quarter of its CPU (200,000 visitors' tasks, reqwest's buffers).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let cmd = argv.next().unwrap_or_default();
    let args = Args::parse(argv);
    let env = Env::from_env();
    env.ensure_local()?;
    let threads: usize = args.num("threads", 2)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()?;
    rt.block_on(async move {
        match cmd.as_str() {
            "create-sale" => create_sale(env, &args).await,
            "join" => join(env, &args).await,
            "flash" => flash(env, &args).await,
            "hold-rate" => hold_rate(env, &args).await,
            "solve" => solve(env, &args).await,
            "bot" => bot(env, &args).await,
            "audit" => audit(env, &args).await,
            "stats" => {
                let v = Admin::new(env).stats(sale_arg(&args)?).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            }
            "next-stage" => {
                let v = Admin::new(env).next_stage(sale_arg(&args)?).await?;
                println!("{v}");
                Ok(())
            }
            "admit" => {
                let v = Admin::new(env).admit(sale_arg(&args)?, args.num("count", 1)?).await?;
                println!("{v}");
                Ok(())
            }
            "wait-ready" => wait_ready(env, &args).await,
            _ => {
                eprintln!(
                    "usage: fgdrive create-sale|join|flash|audit|stats|next-stage|admit|wait-ready [--options]\n\
                     (see the comment at the top of loadtest/goose/src/bin/fgdrive.rs)"
                );
                std::process::exit(2);
            }
        }
    })
}

fn sale_arg(args: &Args) -> Result<&str> {
    args.get("sale").context("--sale ID is required")
}

async fn create_sale(env: Env, args: &Args) -> Result<()> {
    let mut spec = SaleSpec::default();
    spec.apply(args)?;
    let id = Admin::new(env).create_sale(&spec).await?;
    println!("{id}");
    Ok(())
}

async fn audit(env: Env, args: &Args) -> Result<()> {
    let v = Admin::new(env).audit(sale_arg(args)?).await?;
    if !report_audit(&v) {
        std::process::exit(1);
    }
    Ok(())
}

async fn wait_ready(env: Env, args: &Args) -> Result<()> {
    let timeout: u64 = args.num("timeout", 60)?;
    let http = client(1, Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        if let Ok(r) = http.get(format!("{}/readyz", env.base)).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{} did not become ready within {timeout}s", env.base);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Status of a response, 0 for a transport error, and its body as `T`.
async fn send_json<T: DeserializeOwned>(req: reqwest::RequestBuilder) -> (u16, Option<T>) {
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let body = res.bytes().await.ok().and_then(|b| serde_json::from_slice::<T>(&b).ok());
            (status, body)
        }
        Err(_) => (0, None),
    }
}

// ---------------------------------------------------------------------------
// proof of work: pre-solved joins, and the price of a place
// ---------------------------------------------------------------------------

/// A challenge of the sale: `(challenge, difficulty_bits)`.
async fn fetch_challenge(http: &reqwest::Client, url: &str) -> Result<(String, u32)> {
    let (status, body) = send_json::<Value>(http.get(url)).await;
    let body = body.filter(|_| status == 200).with_context(|| format!("GET challenge answered {status}"))?;
    let challenge = body["challenge"].as_str().context("no challenge")?.to_owned();
    Ok((challenge, body["difficulty_bits"].as_u64().context("no difficulty_bits")? as u32))
}

async fn solve(env: Env, args: &Args) -> Result<()> {
    let sale = sale_arg(args)?.to_owned();
    let count: usize = args.num("count", 1000)?;
    let concurrency: usize = args.num("concurrency", 64)?;
    let out = args.get("out").context("--out FILE is required")?.to_owned();
    let http = client(concurrency, Duration::from_secs(30));
    let url = format!("{}/api/v1/sales/{sale}/challenge", env.base);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut fetchers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, next) = (http.clone(), url.clone(), next.clone());
        fetchers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while next.fetch_add(1, Relaxed) < count as u64 {
                got.push(fetch_challenge(&http, &url).await?);
            }
            Ok::<_, anyhow::Error>(got)
        }));
    }
    let mut challenges = Vec::with_capacity(count);
    for f in fetchers {
        challenges.extend(f.await??);
    }
    let fetched = started.elapsed();
    // Solve on every core.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let chunk = challenges.len().div_ceil(threads).max(1);
    let hashes = AtomicU64::new(0);
    let lines: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = challenges
            .chunks(chunk)
            .map(|part| {
                let hashes = &hashes;
                scope.spawn(move || {
                    part.iter()
                        .map(|(challenge, bits)| {
                            let (nonce, tried) = solve_challenge(challenge, *bits);
                            hashes.fetch_add(tried, Relaxed);
                            serde_json::json!({ "challenge": challenge, "nonce": nonce }).to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    for line in &lines {
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    let bits = challenges.first().map(|c| c.1).unwrap_or(0);
    eprintln!(
        "solve: {} challenges of {bits} bits fetched in {:.1}s, solved in {:.1}s ({} hashes) -> {out}",
        lines.len(),
        fetched.as_secs_f64(),
        (started.elapsed() - fetched).as_secs_f64(),
        hashes.load(Relaxed),
    );
    Ok(())
}

/// One process taking as many places as it can for `--seconds`: each of
/// `--concurrency` loops fetches a challenge, solves it on a blocking
/// thread and joins. Prints one JSON line (places, per minute, the
/// difficulties handed out).
async fn bot(env: Env, args: &Args) -> Result<()> {
    let sale = sale_arg(args)?.to_owned();
    let seconds: u64 = args.num("seconds", 30)?;
    let concurrency: usize = args.num("concurrency", 8)?;
    let http = client(concurrency, Duration::from_secs(600));
    let challenge_url = format!("{}/api/v1/sales/{sale}/challenge", env.base);
    let join_url = format!("{}/api/v1/sales/{sale}/queue", env.base);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut loops = Vec::new();
    for _ in 0..concurrency {
        let (http, challenge_url, join_url) = (http.clone(), challenge_url.clone(), join_url.clone());
        loops.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            while Instant::now() < deadline {
                let (challenge, bits) = fetch_challenge(&http, &challenge_url).await?;
                let solving = challenge.clone();
                // A place solved after the deadline was not taken in time.
                let solved = tokio::task::spawn_blocking(move || solve_challenge_until(&solving, bits, Some(deadline)));
                let Ok(Some((nonce, _))) = solved.await else {
                    break;
                };
                let body = serde_json::json!({ "challenge": challenge, "nonce": nonce });
                let (status, _) = send_json::<Value>(http.post(&join_url).json(&body)).await;
                if status == 201 {
                    taken.push(bits);
                }
            }
            Ok::<_, anyhow::Error>(taken)
        }));
    }
    let mut bits = Vec::new();
    for l in loops {
        bits.extend(l.await??);
    }
    let elapsed = started.elapsed().as_secs_f64().min(seconds as f64);
    bits.sort_unstable();
    let per_minute = bits.len() as f64 * 60.0 / elapsed;
    println!(
        "BOT_RESULT {}",
        serde_json::json!({
            "places": bits.len(),
            "seconds": elapsed,
            "places_per_minute": per_minute,
            "min_bits": bits.first(),
            "max_bits": bits.last(),
        })
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// join: N visitors, tokens to a file
// ---------------------------------------------------------------------------

async fn join(env: Env, args: &Args) -> Result<()> {
    let sale = sale_arg(args)?.to_owned();
    let count: u64 = args.num("count", 1000)?;
    let concurrency: usize = args.num("concurrency", 64)?;
    let field = match args.get("token").unwrap_or("queue") {
        "queue" => "queue_token",
        "admission" => "admission_token",
        other => bail!("--token queue|admission, not {other}"),
    };
    let http = client(concurrency, Duration::from_secs(30));
    let url = format!("{}/api/v1/sales/{sale}/queue", env.base);
    let next = Arc::new(AtomicU64::new(0));
    let rec = Arc::new(Recorder::default());
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url, next, rec) = (http.clone(), url.clone(), next.clone(), rec.clone());
        workers.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            while next.fetch_add(1, Relaxed) < count {
                let mut tries = 0;
                loop {
                    let t = Instant::now();
                    let (status, body) = send_json::<Value>(http.post(&url)).await;
                    rec.record("join", status, t.elapsed());
                    if let Some(tok) = body.as_ref().and_then(|b| b[field].as_str()) {
                        tokens.push(tok.to_owned());
                        break;
                    }
                    tries += 1;
                    if tries >= 5 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            tokens
        }));
    }
    let progress = {
        let rec = rec.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                eprintln!(
                    "join: {} requests, {:.0}/s",
                    rec.total(),
                    rec.total() as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut all = Vec::with_capacity(count as usize);
    for w in workers {
        all.extend(w.await?);
    }
    progress.abort();
    let elapsed = started.elapsed();
    eprintln!("join: {} tokens ({field}) in {:.1}s", all.len(), elapsed.as_secs_f64());
    if let Some(out) = args.get("out") {
        let mut f = std::io::BufWriter::new(std::fs::File::create(out).with_context(|| format!("create {out}"))?);
        for t in &all {
            writeln!(f, "{t}")?;
        }
        f.flush()?;
    }
    rec.print(elapsed);
    if (all.len() as u64) < count {
        bail!("only {} of {count} joins succeeded", all.len());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// hold-rate: holds at the admitted rate
// ---------------------------------------------------------------------------

/// Holds of one unit at a fixed rate, whatever the answers take (an open
/// loop, as admitted buyers arrive): SPEC §8's "p99 < 50 ms at the admitted
/// rate". wrk keeps 64 holds in flight and measures the latency of a
/// saturated hold path instead; a closed loop also waits for slow answers
/// before it sends more, which hides them (coordinated omission), so each
/// hold's latency here runs from the moment it was due.
async fn hold_rate(env: Env, args: &Args) -> Result<()> {
    let sale = sale_arg(args)?.to_owned();
    let rate: f64 = args.num("rate", 400.0)?;
    let seconds: f64 = args.num("seconds", 20.0)?;
    let file = args.get("tokens").context("--tokens FILE (admission tokens) is required")?;
    let tokens: Vec<String> = std::fs::read_to_string(file)
        .with_context(|| format!("read {file}"))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("Bearer {l}"))
        .collect();
    let total = (rate * seconds).round() as usize;
    // A buyer may hold 4 units (the bench's per-user limit), one per hold.
    if rate <= 0.0 || tokens.len() * 4 < total {
        bail!("{total} holds need at least {} admission tokens, {file} has {}", total.div_ceil(4), tokens.len());
    }
    let f = Arc::new((Wire::new(&env.base, 4096, Duration::from_secs(30))?, Recorder::default()));
    let path: Arc<str> = format!("/api/v1/sales/{sale}/holds").into();
    let tokens = Arc::new(tokens);
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut holds = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (f, path, tokens) = (f.clone(), path.clone(), tokens.clone());
        holds.push(tokio::spawn(async move {
            let (wire, rec) = &*f;
            let key = random_id("hold");
            // Token i, i + n, ...: holds in flight together are different buyers.
            let auth = &tokens[i % tokens.len()];
            let headers =
                [("authorization", auth.as_str()), ("idempotency-key", &key), ("content-type", "application/json")];
            let req = request("POST", &path, &headers, br#"{"quantity":1}"#);
            let status = wire.send(&req, |status, _| status).await;
            let took = due.elapsed();
            rec.record("hold", status, took);
            took
        }));
    }
    // The slowest answer of each second of the schedule, so a stall can be
    // placed in time (and set beside the server's and Postgres's logs).
    let mut worst = vec![Duration::ZERO; seconds.ceil() as usize + 1];
    for (i, h) in holds.into_iter().enumerate() {
        let took = h.await?;
        let second = (i as f64 / rate) as usize;
        if let Some(w) = worst.get_mut(second) {
            *w = (*w).max(took);
        }
    }
    let elapsed = start.elapsed();
    let (_, rec) = &*f;
    println!("hold-rate: {total} holds due at {rate}/s over {seconds} s, done after {:.1} s", elapsed.as_secs_f64());
    rec.print(elapsed);
    let slow: Vec<(usize, f64)> = worst
        .iter()
        .enumerate()
        .filter(|(_, w)| **w >= Duration::from_millis(50))
        .map(|(s, w)| (s, w.as_secs_f64() * 1e3))
        .collect();
    println!(
        "seconds with an answer of 50 ms or more: {}",
        if slow.is_empty() {
            "none".to_owned()
        } else {
            slow.iter().map(|(s, ms)| format!("{s}: {ms:.0} ms")).collect::<Vec<_>>().join(", ")
        }
    );
    let s = rec.summaries().into_iter().next().context("no holds recorded")?;
    if let Some(out) = args.get("json-out") {
        let summary = serde_json::json!({
            "rate": rate, "seconds": seconds, "count": s.count,
            "achieved_per_s": s.count as f64 / elapsed.as_secs_f64(),
            "p50_ms": s.p50, "p95_ms": s.p95, "p99_ms": s.p99, "max_ms": s.max,
            "slow_seconds": slow.iter().map(|(s, ms)| serde_json::json!({"second": s, "max_ms": ms})).collect::<Vec<_>>(),
            "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<String, Value>>(),
        });
        std::fs::write(out, serde_json::to_string(&summary)?)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// flash: the whole sale
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Counters {
    joined: AtomicU64,
    join_failed: AtomicU64,
    admitted: AtomicU64,
    held: AtomicU64,
    units_held: AtomicU64,
    paid: AtomicU64,
    units_paid: AtomicU64,
    pay_failed: AtomicU64,
    abandoned_hold: AtomicU64,
    abandoned_admission: AtomicU64,
    no_stock: AtomicU64,
    told_sold_out: AtomicU64,
    lost_place: AtomicU64,
    admission_refused: AtomicU64,
    finished: AtomicU64,
    /// Visitors spawned and waiting for the start.
    ready: AtomicU64,
}

struct Flash {
    env: Env,
    /// The visitors' connections (`wire`: a lean keep-alive client, since
    /// the driver's CPU is taken from the server it measures).
    wire: Wire,
    /// The sale's endpoints.
    join_path: String,
    status_path: String,
    holds_path: String,
    /// Bounds status polls in flight.
    permits: Semaphore,
    /// Bounds joins in flight (separately, so the arrival burst does not
    /// queue the polls of visitors already in line behind it).
    join_permits: Semaphore,
    /// Bounds holds and webhooks in flight, so slow inventory calls never
    /// starve the waiting room's polls (browsers do not share a limit).
    buy_permits: Semaphore,
    rec: Recorder,
    c: Counters,
    stop: AtomicBool,
    pay_ratio: f64,
    skip_ratio: f64,
    think_ms: (u64, u64),
    per_user_limit: u32,
}

impl Flash {
    /// One request under the concurrency bound, timed and recorded.
    async fn call<T: DeserializeOwned>(&self, name: &'static str, req: &Request<'_>) -> (u16, Option<T>) {
        let permits = match name {
            "hold" | "webhook" => &self.buy_permits,
            "join" => &self.join_permits,
            _ => &self.permits,
        };
        let _permit = permits.acquire().await.expect("semaphore open");
        let t = Instant::now();
        let (status, body) = self.wire.send(req, |status, body| (status, serde_json::from_slice::<T>(body).ok())).await;
        self.rec.record(name, status, t.elapsed());
        (status, body)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }
}

fn jitter(ms: u64) -> Duration {
    let spread = ms / 10;
    Duration::from_millis(ms - spread + rand::rng().random_range(0..=2 * spread))
}

fn quantity(limit: u32) -> u32 {
    // 1: 25 %, 2: 40 %, 3: 15 %, 4: 20 % (mean 2.3), capped by the limit.
    let r: f64 = rand::rng().random();
    let q = if r < 0.25 {
        1
    } else if r < 0.65 {
        2
    } else if r < 0.80 {
        3
    } else {
        4
    };
    q.min(limit.max(1))
}

/// What the progress line reads of the sale's public view, which answers
/// from the availability snapshot (recounted twice a second; `as_of` says
/// when). The admin statistics count every unit, hold and order anew: about
/// 20 ms of Postgres per call, four calls a second, taken from the sale the
/// driver measures. They are read once, at the end.
#[derive(Deserialize)]
struct Progress {
    state: String,
    availability: ProgressCounts,
    admission: ProgressAdmission,
}

#[derive(Deserialize)]
struct ProgressCounts {
    sold: i64,
    held: i64,
    available: i64,
    unreleased: i64,
    as_of: String,
}

#[derive(Deserialize)]
struct ProgressAdmission {
    effective_admit_per_second: Option<f64>,
}

/// What a visitor reads of a join or status answer, parsed into this
/// instead of a `Value` tree (the other fields are skipped).
#[derive(Deserialize)]
struct Place {
    queue_token: Option<String>,
    #[serde(default)]
    state: PlaceState,
    poll_after_ms: Option<u64>,
    admission_token: Option<String>,
}

/// The states a visitor acts on; the rest (`waiting`, `removed`, ...) mean
/// "poll again".
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum PlaceState {
    Admitted,
    Won,
    SoldOut,
    Closed,
    Lost,
    Expired,
    #[default]
    #[serde(other)]
    Other,
}

/// `Authorization: Bearer <token>`'s value, made once per token.
fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A request of the visitors' wire client.
fn request<'a>(method: &'static str, path: &'a str, headers: &'a [(&'a str, &'a str)], body: &'a [u8]) -> Request<'a> {
    Request { method, path, headers, body }
}

/// One visitor's life: join, poll at the pace asked, and once admitted hold,
/// then pay or walk away.
async fn visitor(f: Arc<Flash>, mut go: tokio::sync::watch::Receiver<bool>, arrive_after: Duration) {
    f.c.ready.fetch_add(1, Relaxed);
    if go.wait_for(|go| *go).await.is_err() {
        return;
    }
    if !arrive_after.is_zero() {
        tokio::time::sleep(arrive_after).await;
    }
    // Join (retried on transport errors, 429 and 503).
    let mut tries = 0;
    let (queue_token, mut poll_ms, mut admission) = loop {
        if f.stopped() {
            return;
        }
        let (status, body) = Box::pin(f.call::<Place>("join", &request("POST", &f.join_path, &[], b""))).await;
        match (status, body) {
            (200 | 201, Some(b)) => {
                break (b.queue_token.unwrap_or_default(), b.poll_after_ms.unwrap_or(1000), b.admission_token);
            }
            (410, _) => {
                f.c.told_sold_out.fetch_add(1, Relaxed);
                f.c.finished.fetch_add(1, Relaxed);
                return;
            }
            _ => {
                tries += 1;
                if tries > 10 {
                    f.c.join_failed.fetch_add(1, Relaxed);
                    f.c.finished.fetch_add(1, Relaxed);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500 * tries)).await;
            }
        }
    };
    f.c.joined.fetch_add(1, Relaxed);

    // Wait for admission.
    let auth = bearer(&queue_token);
    let mut failures = 0;
    let admission_token = loop {
        if let Some(t) = admission.take() {
            break t;
        }
        tokio::time::sleep(jitter(poll_ms.max(250))).await;
        if f.stopped() {
            return;
        }
        let headers = [("authorization", auth.as_str())];
        let (status, body) = Box::pin(f.call::<Place>("status", &request("GET", &f.status_path, &headers, b""))).await;
        let Some(b) = body.filter(|_| status == 200) else {
            failures += 1;
            if failures > 20 {
                f.c.finished.fetch_add(1, Relaxed);
                return;
            }
            poll_ms = 1000;
            continue;
        };
        poll_ms = b.poll_after_ms.unwrap_or(1000);
        match b.state {
            PlaceState::Admitted | PlaceState::Won => admission = b.admission_token,
            PlaceState::SoldOut | PlaceState::Closed | PlaceState::Lost => {
                f.c.told_sold_out.fetch_add(1, Relaxed);
                f.c.finished.fetch_add(1, Relaxed);
                return;
            }
            PlaceState::Expired => {
                f.c.lost_place.fetch_add(1, Relaxed);
                f.c.finished.fetch_add(1, Relaxed);
                return;
            }
            PlaceState::Other => {}
        }
    };
    f.c.admitted.fetch_add(1, Relaxed);
    if rand::rng().random::<f64>() < f.skip_ratio {
        // Admitted, then gone: the slot frees at the admission deadline.
        f.c.abandoned_admission.fetch_add(1, Relaxed);
        f.c.finished.fetch_add(1, Relaxed);
        return;
    }
    Box::pin(buy(f.clone(), admission_token)).await;
    f.c.finished.fetch_add(1, Relaxed);
}

async fn buy(f: Arc<Flash>, admission_token: String) {
    let auth = bearer(&admission_token);
    let mut q = quantity(f.per_user_limit);
    let mut shortages = 0;
    let hold = loop {
        if f.stopped() {
            return;
        }
        let key = random_id("hold");
        let headers =
            [("authorization", auth.as_str()), ("idempotency-key", &key), ("content-type", "application/json")];
        let wanted = format!("{{\"quantity\":{q}}}");
        let (status, body) =
            f.call::<Value>("hold", &request("POST", &f.holds_path, &headers, wanted.as_bytes())).await;
        let code = body.as_ref().and_then(|b| b["error"]["code"].as_str()).unwrap_or("").to_owned();
        match status {
            201 => break body.unwrap_or_default(),
            409 if code == "insufficient_stock" => {
                // Ask for less, then wait for units to come back (a stage
                // opening, an unpaid hold expiring).
                shortages += 1;
                q = 1;
                if shortages > 6 {
                    f.c.no_stock.fetch_add(1, Relaxed);
                    return;
                }
                tokio::time::sleep(jitter(1500)).await;
            }
            410 => {
                f.c.told_sold_out.fetch_add(1, Relaxed);
                return;
            }
            401 | 403 => {
                f.c.admission_refused.fetch_add(1, Relaxed);
                return;
            }
            409 => {
                // limit_exceeded, paused, ...: this visitor is done.
                f.c.no_stock.fetch_add(1, Relaxed);
                return;
            }
            _ => {
                shortages += 1;
                if shortages > 8 {
                    f.c.no_stock.fetch_add(1, Relaxed);
                    return;
                }
                tokio::time::sleep(jitter(1000)).await;
            }
        }
    };
    let units = hold["units"].as_array().map(Vec::len).unwrap_or(q as usize) as u64;
    f.c.held.fetch_add(1, Relaxed);
    f.c.units_held.fetch_add(units, Relaxed);
    let hold_id = hold["id"].as_str().unwrap_or_default().to_owned();

    // Checkout takes a moment; then the provider calls the webhook (or not).
    let think = rand::rng().random_range(f.think_ms.0..=f.think_ms.1.max(f.think_ms.0));
    tokio::time::sleep(Duration::from_millis(think)).await;
    if rand::rng().random::<f64>() >= f.pay_ratio {
        f.c.abandoned_hold.fetch_add(1, Relaxed);
        return;
    }
    let body = webhook_body(&random_id("evt"), &hold_id, &random_id("pay"), "succeeded");
    for attempt in 0..5 {
        if f.stopped() {
            return;
        }
        let sig = sign_webhook(&f.env.webhook_secret, unix_now(), &body);
        let headers = [("floodgate-signature", sig.as_str()), ("content-type", "application/json")];
        let req = request("POST", "/api/v1/payments/webhook", &headers, body.as_bytes());
        let (status, _) = f.call::<serde::de::IgnoredAny>("webhook", &req).await;
        match status {
            200 | 201 => {
                f.c.paid.fetch_add(1, Relaxed);
                f.c.units_paid.fetch_add(units, Relaxed);
                return;
            }
            0 | 429 | 500..=599 => tokio::time::sleep(Duration::from_millis(500 << attempt)).await,
            _ => break,
        }
    }
    f.c.pay_failed.fetch_add(1, Relaxed);
}

fn parse_range(s: &str) -> Result<(u64, u64)> {
    match s.split_once("..") {
        Some((a, b)) => Ok((a.trim().parse()?, b.trim().parse()?)),
        None => {
            let v = s.trim().parse()?;
            Ok((v, v))
        }
    }
}

async fn flash(env: Env, args: &Args) -> Result<()> {
    let visitors: u64 = args.num("visitors", 200_000)?;
    let concurrency: usize = args.num("concurrency", 256)?;
    let stage_interval: f64 = args.num("stage-interval", 10.0)?;
    let timeout: u64 = args.num("timeout", 900)?;
    let arrival_secs: f64 = args.num("arrival-secs", 0.0)?;
    let mut spec = SaleSpec {
        name: "flash".into(),
        units: 20_000,
        stages: vec![30, 40, 30],
        per_user_limit: 4,
        hold_ttl_seconds: 30,
        waiting_room: true,
        shuffle_prequeue: false,
        // Admission sized to what the hold path absorbs on a small machine
        // (a few hundred holds/s): admitting far more only turns into 409
        // retries and admissions that expire before their hold gets through.
        admit_per_second: 400,
        max_active: 1000,
        admission_ttl_seconds: 120,
        abandon_after_seconds: 120,
        ..SaleSpec::default()
    };
    spec.apply(args)?;
    let admin = Admin::new(env.clone());
    if args.flag("create-only", false)? {
        println!("{}", admin.create_sale(&spec).await?);
        return Ok(());
    }
    let sale = match args.get("sale") {
        Some(s) => s.to_owned(),
        None => admin.create_sale(&spec).await?,
    };
    let total = spec.units;
    println!(
        "flash: sale {sale}: {visitors} visitors, {total} units, stages {:?} every {stage_interval}s, \
         admit {}/s, max_active {}, hold ttl {}s, concurrency {concurrency}",
        spec.stages, spec.admit_per_second, spec.max_active, spec.hold_ttl_seconds
    );
    let url = |path: String| Url::parse(&format!("{}{path}", env.base)).context("the server's address");
    let f = Arc::new(Flash {
        env: env.clone(),
        wire: Wire::new(&env.base, 3 * concurrency, Duration::from_secs(30))?,
        join_path: format!("/api/v1/sales/{sale}/queue"),
        status_path: format!("/api/v1/sales/{sale}/queue/status"),
        holds_path: format!("/api/v1/sales/{sale}/holds"),
        permits: Semaphore::new(concurrency),
        buy_permits: Semaphore::new(concurrency),
        join_permits: Semaphore::new((concurrency / 2).max(1)),
        rec: Recorder::default(),
        c: Counters::default(),
        stop: AtomicBool::new(false),
        pay_ratio: args.num("pay-ratio", 0.9)?,
        skip_ratio: args.num("skip-ratio", 0.03)?,
        think_ms: parse_range(args.get("think-ms").unwrap_or("200..1500"))?,
        per_user_limit: spec.per_user_limit,
    });

    // The visitors are spawned before the clock starts and wait for it: the
    // driver's first touch of their memory (250 MB for 200,000 tasks, zeroed
    // by the kernel) took it up to two seconds of CPU on this machine's two
    // cores, during the burst: the server's CPU, not the visitors'
    // (loadtest/RESULTS.md, 2026-12-03).
    let (start, go) = tokio::sync::watch::channel(false);
    let spawning = Instant::now();
    for _ in 0..visitors {
        let after = if arrival_secs > 0.0 {
            Duration::from_secs_f64(rand::rng().random_range(0.0..arrival_secs))
        } else {
            Duration::ZERO
        };
        tokio::spawn(visitor(f.clone(), go.clone(), after));
    }
    while f.c.ready.load(Relaxed) < visitors {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("visitors ready after {:.1} s (before the start)", spawning.elapsed().as_secs_f64());
    drop(go);
    let started = Instant::now();
    let started_wall = chrono::Utc::now();
    // The burst: everyone at once (or spread over --arrival-secs).
    start.send_replace(true);

    // Staged release on a schedule: stage k+1 opens k intervals after the start.
    let stages = spec.stages.len();
    let release = {
        let admin = admin.clone();
        let sale = sale.clone();
        tokio::spawn(async move {
            for k in 1..stages {
                tokio::time::sleep_until((started + Duration::from_secs_f64(stage_interval * k as f64)).into()).await;
                match admin.next_stage(&sale).await {
                    Ok(_) => println!("[{:>6.1}s] stage {} released", started.elapsed().as_secs_f64(), k + 1),
                    Err(e) => {
                        println!("[{:>6.1}s] stage {} release failed: {e}", started.elapsed().as_secs_f64(), k + 1)
                    }
                }
            }
        })
    };

    // Watch the sale until sold out (or the time is up); print progress.
    let mut sold_out_at = None;
    let mut last_print = Instant::now() - Duration::from_secs(10);
    let mut last_total = 0;
    let mut last_at = Instant::now();
    let mut avail_errors = 0;
    let mut milestones: [Option<f64>; 3] = [None; 3];
    let mut all_joined_at: Option<f64> = None;
    let mut rates: Vec<f64> = Vec::new();
    let progress_url = url(format!("/api/v1/sales/{sale}"))?;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if all_joined_at.is_none() && f.c.joined.load(Relaxed) + f.c.join_failed.load(Relaxed) >= visitors {
            all_joined_at = Some(started.elapsed().as_secs_f64());
        }
        let (status, progress) = send_json::<Progress>(admin.http.get(progress_url.clone())).await;
        let Some(Progress { state, availability: a, admission }) = progress.filter(|_| status == 200) else {
            avail_errors += 1;
            if avail_errors % 20 == 1 {
                println!("sale view unavailable: HTTP {status}");
            }
            continue;
        };
        let (sold, held, available, unreleased) = (a.sold, a.held, a.available, a.unreleased);
        // When the counts were taken, from the start (the snapshot is up to
        // half a second older than the answer).
        let counted_at = chrono::DateTime::parse_from_rfc3339(&a.as_of)
            .ok()
            .and_then(|t| (t.with_timezone(&chrono::Utc) - started_wall).to_std().ok())
            .unwrap_or_else(|| started.elapsed())
            .min(started.elapsed());
        let done = sold >= total as i64 || state == "sold_out";
        let effective = admission.effective_admit_per_second;
        // The rate while the sale was selling (until 90 % sold): afterwards the
        // hold path idles and an adaptive rate climbs to its ceiling.
        if let Some(rate) = effective.filter(|_| (sold as f64) < 0.9 * total as f64) {
            rates.push(rate);
        }
        for (i, share) in [0.5, 0.9, 0.99].iter().enumerate() {
            if milestones[i].is_none() && sold as f64 >= share * total as f64 {
                milestones[i] = Some(counted_at.as_secs_f64());
            }
        }
        if last_print.elapsed() >= Duration::from_secs(2) || done {
            let reqs = f.rec.total();
            let rate = (reqs - last_total) as f64 / last_at.elapsed().as_secs_f64();
            last_total = reqs;
            last_at = Instant::now();
            last_print = Instant::now();
            println!(
                "[{:>6.1}s] {state:<8} sold {sold:>6} held {held:>5} avail {available:>5} unrel {unreleased:>5} | \
                 joined {:>6} admitted {:>6} holds {:>6} paid {:>6} | admit {:>5.0}/s | {:>6.0} req/s, \
                 in flight {:>3}+{:>3}+{:>3}",
                started.elapsed().as_secs_f64(),
                f.c.joined.load(Relaxed),
                f.c.admitted.load(Relaxed),
                f.c.held.load(Relaxed),
                f.c.paid.load(Relaxed),
                effective.unwrap_or(f64::NAN),
                rate,
                (concurrency / 2).max(1) - f.join_permits.available_permits(),
                concurrency - f.permits.available_permits(),
                concurrency - f.buy_permits.available_permits(),
            );
        }
        if done {
            sold_out_at = Some(if sold >= total as i64 { counted_at } else { started.elapsed() });
            break;
        }
        if started.elapsed() > Duration::from_secs(timeout) {
            break;
        }
    }
    f.stop.store(true, Relaxed);
    release.abort();
    let elapsed = started.elapsed();
    let final_stats = admin.stats(&sale).await.unwrap_or_default();

    println!("\n=== flash sale summary ===");
    match sold_out_at {
        Some(t) => println!("time to sell-out: {:.1} s ({} units)", t.as_secs_f64(), total),
        None => println!("NOT sold out within {timeout} s"),
    }
    let ms = |m: Option<f64>| m.map(|t| format!("{t:.1} s")).unwrap_or_else(|| "-".into());
    println!("all {visitors} visitors joined after: {}", ms(all_joined_at));
    // The rate the controller settled on while selling: the median of the
    // last two thirds (the first third is the slow start).
    let settled = {
        let mut tail: Vec<f64> = rates[rates.len() / 3..].to_vec();
        tail.sort_by(f64::total_cmp);
        tail.get(tail.len() / 2).copied()
    };
    println!(
        "admission rate in force at the end: {} ({} mode); while selling it settled at {}",
        rates.last().map(|r| format!("{r:.0}/s")).unwrap_or_else(|| "-".into()),
        spec.admission_mode,
        settled.map(|r| format!("{r:.0}/s")).unwrap_or_else(|| "-".into())
    );
    println!(
        "sold 50 %: {}, 90 %: {}, 99 %: {} (the tail is unpaid holds expiring after the hold TTL and selling again)",
        ms(milestones[0]),
        ms(milestones[1]),
        ms(milestones[2])
    );
    let c = &f.c;
    let g = |a: &AtomicU64| a.load(Relaxed);
    println!(
        "visitors: {visitors}; joined {} (join failed {}); admitted {}; holds {} ({} units); paid {} ({} units); \
         walked away after hold {}; admitted but no hold {}; no stock/gave up {}; told sold out {}; lost place {}; \
         admission refused {}; payment failed {}",
        g(&c.joined),
        g(&c.join_failed),
        g(&c.admitted),
        g(&c.held),
        g(&c.units_held),
        g(&c.paid),
        g(&c.units_paid),
        g(&c.abandoned_hold),
        g(&c.abandoned_admission),
        g(&c.no_stock),
        g(&c.told_sold_out),
        g(&c.lost_place),
        g(&c.admission_refused),
        g(&c.pay_failed),
    );
    if let Some(q) = final_stats.get("queue") {
        println!("queue at the end: {q}");
    }
    f.rec.print(elapsed);

    // The audit may run while stragglers' requests are still in flight; it
    // reads one snapshot.
    let audit = admin.audit(&sale).await?;
    let pass = report_audit(&audit);
    if let Some(out) = args.get("json-out") {
        let summary = serde_json::json!({
            "sale": sale,
            "visitors": visitors,
            "units": total,
            "sold_out": sold_out_at.is_some(),
            "time_to_sell_out_s": sold_out_at.map(|t| t.as_secs_f64()),
            "time_to_50_90_99_s": milestones,
            "all_joined_s": all_joined_at,
            "admission_mode": spec.admission_mode,
            "admit_rate_settled": settled,
            "audit_ok": pass,
            "audit": audit,
            "endpoints": f.rec.summaries().iter().map(|s| serde_json::json!({
                "name": s.name, "count": s.count, "p50_ms": s.p50, "p95_ms": s.p95, "p99_ms": s.p99,
                "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect::<serde_json::Map<String, Value>>(),
            })).collect::<Vec<_>>(),
        });
        std::fs::write(out, serde_json::to_string_pretty(&summary)?)?;
    }
    if !pass || sold_out_at.is_none() {
        std::process::exit(1);
    }
    // Do not wait for 200k sleeping visitor tasks.
    std::process::exit(0);
}
