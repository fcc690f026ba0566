//! The test harness: every test gets its own database (made from the
//! migrations), its own Redis key prefix and its own server on a free port.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use chrono::Utc;
use floodgate::configuration::{self, Environment, Settings};
use floodgate::startup::Application;
use floodgate::state::AppState;
use floodgate::tokens::Purpose;
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection, PgPool};

pub const ADMIN_KEY: &str = "test-admin-key";

static TRACING: Once = Once::new();

/// A running floodgate for one test.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    /// Pool on the test's own database, for assertions on rows.
    pub db: PgPool,
    pub settings: Settings,
    pub state: actix_web::web::Data<AppState>,
}

/// Test settings: `config/test.toml` plus `FLOODGATE__*` from the
/// environment (the test command points these at the project's services).
pub fn test_settings() -> Settings {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    configuration::load(&dir, Environment::Test).expect("test configuration loads")
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (server, _) = base.rsplit_once('/').expect("database url has a path");
    format!("{server}/{name}{query}")
}

/// A new app on a fresh database and Redis prefix.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A new app whose settings `adjust` may change first.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            floodgate::telemetry::init(false);
        }
    });
    let mut settings = fresh_settings().await;
    adjust(&mut settings);
    start(settings).await
}

/// Test settings on a new, empty database (the instance that starts on it
/// applies the migrations) and a new Redis key prefix.
pub async fn fresh_settings() -> Settings {
    let mut settings = test_settings();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("ft_{}", &id[..16]);
    let mut admin = PgConnection::connect(&settings.database.url).await.expect("postgres is up (scripts/services.sh)");
    admin.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{db_name}""#))).await.expect("create test db");
    settings.database.url = with_database(&settings.database.url, &db_name);
    settings.redis.key_prefix = format!("ft{}", &id[..12]);
    settings
}

/// A second instance sharing `other`'s database and Redis prefix.
pub async fn spawn_sibling(other: &TestApp) -> TestApp {
    start(other.settings.clone()).await
}

/// An instance with exactly these settings (database and prefix included).
pub async fn spawn_settings(settings: Settings) -> TestApp {
    start(settings).await
}

async fn start(settings: Settings) -> TestApp {
    let application = Application::build(settings.clone()).await.expect("application builds");
    let port = application.port();
    let state = application.state();
    tokio::spawn(application.run_until_stopped());
    let db = PgPool::connect(&settings.database.url).await.expect("test db connects");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(512)
        // Under actix-web's 5 s keep-alive: a connection idle that long may
        // be closed by the server just as the client sends on it, and the
        // request fails with no answer (hyper's IncompleteMessage), which
        // is the client's race, not the server's refusal.
        .pool_idle_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    TestApp { address: format!("http://127.0.0.1:{port}"), client, db, settings, state }
}

/// A body as JSON, panicking with the raw text if it is not.
pub async fn body_json(response: Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Asserts the SPEC error body with `code` and returns it.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let body = body_json(response).await;
    assert_eq!(actual, status, "unexpected status, body {body}");
    assert_eq!(body["error"]["code"], code, "unexpected code in {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "no message in {body}");
    body
}

/// A general-admission sale that is on sale now, without a waiting room,
/// `units` units; `extra` fields override the defaults.
pub fn sale_json(units: i64, extra: Value) -> Value {
    let mut sale = json!({
        "name": "Test sale",
        "units": { "count": units },
        "per_user_limit": 4,
        "hold_ttl_seconds": 600,
        "waiting_room": false,
    });
    if let (Some(base), Some(extra)) = (sale.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    sale
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    // --- admin -------------------------------------------------------------

    pub async fn create_sale(&self, body: &Value) -> Response {
        self.client.post(self.url("/admin/v1/sales")).bearer_auth(ADMIN_KEY).json(body).send().await.expect("request")
    }

    /// Creates a sale and returns its id.
    pub async fn create_sale_ok(&self, body: &Value) -> String {
        let response = self.create_sale(body).await;
        let status = response.status();
        let body = body_json(response).await;
        assert_eq!(status, StatusCode::CREATED, "create sale: {body}");
        body["id"].as_str().expect("sale id").to_owned()
    }

    pub async fn admin_get_sale(&self, sale: &str) -> Value {
        let response = self
            .client
            .get(self.url(&format!("/admin/v1/sales/{sale}")))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        body_json(response).await
    }

    pub async fn patch_sale(&self, sale: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(&format!("/admin/v1/sales/{sale}")))
            .bearer_auth(ADMIN_KEY)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn admit(&self, sale: &str, count: i64) -> Response {
        self.client
            .post(self.url(&format!("/admin/v1/sales/{sale}/admit")))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({ "count": count }))
            .send()
            .await
            .expect("request")
    }

    pub async fn next_stage(&self, sale: &str) -> Response {
        self.client
            .post(self.url(&format!("/admin/v1/sales/{sale}/stages/next")))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("request")
    }

    /// Runs the audit and asserts it is clean.
    pub async fn assert_audit_clean(&self, sale: &str) -> Value {
        let response = self
            .client
            .get(self.url(&format!("/admin/v1/sales/{sale}/audit")))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        let report = body_json(response).await;
        assert_eq!(report["ok"], true, "audit found violations: {report:#}");
        report
    }

    // --- public ------------------------------------------------------------

    pub async fn get_sale(&self, sale: &str) -> Response {
        self.get(&format!("/api/v1/sales/{sale}")).await
    }

    pub async fn join(&self, sale: &str, bearer: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(&format!("/api/v1/sales/{sale}/queue")));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn status(&self, sale: &str, queue_token: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/sales/{sale}/queue/status")))
            .bearer_auth(queue_token)
            .send()
            .await
            .expect("request")
    }

    pub async fn hold(&self, sale: &str, admission_token: &str, body: &Value, key: Option<&str>) -> Response {
        let mut request =
            self.client.post(self.url(&format!("/api/v1/sales/{sale}/holds"))).bearer_auth(admission_token).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.expect("request")
    }

    pub async fn get_hold(&self, hold: &str, hold_token: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/holds/{hold}")))
            .bearer_auth(hold_token)
            .send()
            .await
            .expect("request")
    }

    pub async fn release_hold(&self, hold: &str, hold_token: &str) -> Response {
        self.client
            .delete(self.url(&format!("/api/v1/holds/{hold}")))
            .bearer_auth(hold_token)
            .send()
            .await
            .expect("request")
    }

    pub async fn dev_checkout(&self, hold: &str, hold_token: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/holds/{hold}/dev-checkout")))
            .bearer_auth(hold_token)
            .send()
            .await
            .expect("request")
    }

    /// Sends a payment webhook signed with the configured secret.
    pub async fn webhook(&self, body: &Value) -> Response {
        let raw = serde_json::to_vec(body).expect("json");
        let secret = self.settings.payments.webhook_secret.as_ref().expect("secret").expose_secret();
        let signature = floodgate::signature::sign(secret, Utc::now().timestamp(), &raw);
        self.webhook_raw(raw, &signature).await
    }

    pub async fn webhook_raw(&self, raw: Vec<u8>, signature: &str) -> Response {
        self.client
            .post(self.url("/api/v1/payments/webhook"))
            .header("Floodgate-Signature", signature)
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_order(&self, order: &str, hold_token: &str) -> Response {
        self.client
            .get(self.url(&format!("/api/v1/orders/{order}")))
            .bearer_auth(hold_token)
            .send()
            .await
            .expect("request")
    }

    pub async fn cancel_order(&self, order: &str, hold_token: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/orders/{order}/cancel")))
            .bearer_auth(hold_token)
            .send()
            .await
            .expect("request")
    }

    // --- shortcuts ---------------------------------------------------------

    /// An admission token minted directly, as the waiting room would, for
    /// tests of the inventory that do not go through the queue.
    pub fn admission_token(&self, sale: &str, visitor: &str) -> String {
        self.state
            .tokens
            .issue(Purpose::Admission, sale, visitor, Some(0), None, Utc::now() + chrono::Duration::minutes(10))
            .expect("token")
    }

    /// Holds `body` for `visitor` and returns the 201 body.
    pub async fn hold_ok(&self, sale: &str, visitor: &str, body: &Value) -> Value {
        let response = self.hold(sale, &self.admission_token(sale, visitor), body, None).await;
        let status = response.status();
        let body = body_json(response).await;
        assert_eq!(status, StatusCode::CREATED, "hold: {body}");
        body
    }

    /// Units of a sale by status, straight from the rows.
    pub async fn unit_counts(&self, sale: &str) -> (i64, i64, i64) {
        sqlx::query_as(
            "SELECT count(*) FILTER (WHERE status = 'available'), count(*) FILTER (WHERE status = 'held'), \
             count(*) FILTER (WHERE status = 'sold') FROM units WHERE sale_id = $1",
        )
        .bind(sale)
        .fetch_one(&self.db)
        .await
        .expect("counts")
    }

    /// Outbox events of a type for a sale.
    pub async fn events(&self, sale: &str, event_type: &str) -> Vec<Value> {
        let rows: Vec<(Value,)> =
            sqlx::query_as("SELECT payload FROM outbox_events WHERE sale_id = $1 AND event_type = $2 ORDER BY seq")
                .bind(sale)
                .bind(event_type)
                .fetch_all(&self.db)
                .await
                .expect("events");
        rows.into_iter().map(|(v,)| v).collect()
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A free local port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A private Redis on its own port, for tests that stop and restart it.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let mut redis = PrivateRedis { port: free_port(), child: None };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Points `settings` at this Redis alone (also when the test run is
    /// aimed at a Redis Cluster).
    pub fn configure(&self, settings: &mut Settings) {
        settings.redis.url = self.url();
        settings.redis.cluster_nodes.clear();
    }

    /// Starts (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/services.sh installs it)");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "private redis did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends a request like a well-behaved client: when the server sheds it
/// (503 or 429, always with `Retry-After`), times out reading it (408, when
/// thousands of connections arrive at once on a busy machine) or the
/// connection drops before an answer, it tries again after that many seconds
/// (at most 2), a few times. Returns the answer and how many attempts were
/// refused on the way.
pub async fn patiently(what: &str, make: impl Fn() -> reqwest::RequestBuilder) -> (Response, u32) {
    let mut refused = 0;
    loop {
        let wait = match make().send().await {
            Ok(response) if response.status() == StatusCode::REQUEST_TIMEOUT => Duration::from_millis(500),
            Ok(response)
                if !matches!(response.status(), StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS) =>
            {
                return (response, refused)
            }
            Ok(response) => {
                let wait = retry_after(&response);
                let status = response.status();
                let body = body_json(response).await;
                let wait = wait.unwrap_or_else(|| panic!("{what}: {status} without Retry-After: {body}"));
                Duration::from_secs(wait.clamp(1, 2))
            }
            Err(e) => {
                assert!(refused < 5, "{what}: {e}");
                Duration::from_millis(200)
            }
        };
        refused += 1;
        assert!(refused <= 5, "{what}: still refused after {refused} attempts");
        tokio::time::sleep(wait).await;
    }
}

/// The `Retry-After` seconds of an answer.
pub fn retry_after(response: &Response) -> Option<u64> {
    response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

impl TestApp {
    /// A status poll answered 200 (patiently, as a client retries 503 and
    /// 429 with `Retry-After`); the body.
    pub async fn status_patiently(&self, sale: &str, queue_token: &str) -> Value {
        let url = self.url(&format!("/api/v1/sales/{sale}/queue/status"));
        let (response, _) = patiently("status", || self.client.get(&url).bearer_auth(queue_token)).await;
        let status = response.status();
        let body = body_json(response).await;
        assert_eq!(status, StatusCode::OK, "status: {body}");
        body
    }
}

/// Loses the waiting room's data of every sale of `settings`' key prefix,
/// as a Redis (or a cluster's master) restarted without persistence would:
/// one `DEL` per sale of every key it has, on whichever node holds it.
pub async fn lose_waiting_room_data(settings: &Settings) {
    let nodes = if settings.redis.cluster_nodes.is_empty() {
        vec![settings.redis.url.clone()]
    } else {
        settings.redis.cluster_nodes.clone()
    };
    let pattern = format!("{}:*", settings.redis.key_prefix);
    for node in nodes {
        let client = redis::Client::open(node.as_str()).expect("redis url");
        let mut c = client.get_multiplexed_async_connection().await.expect("redis node answers");
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut c).await.expect("ROLE");
        if !matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master") {
            continue;
        }
        let mut by_sale = std::collections::BTreeMap::<String, Vec<String>>::new();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut c)
                .await
                .expect("SCAN");
            for key in keys {
                let tag = key.split_once('{').and_then(|(_, t)| t.split_once('}')).map(|(t, _)| t.to_owned());
                by_sale.entry(tag.unwrap_or_default()).or_default().push(key);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for keys in by_sale.values() {
            redis::cmd("DEL").arg(keys).query_async::<()>(&mut c).await.expect("DEL");
        }
    }
}

/// A Redis Cluster of its own (3 masters, 3 replicas, node timeout 2 s)
/// for a test that kills its nodes; stopped on drop.
pub struct PrivateCluster {
    nodes: Vec<(u16, Option<Child>)>,
    dir: std::path::PathBuf,
}

impl PrivateCluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("floodgate-cluster-{}", uuid::Uuid::new_v4().simple()));
        let mut cluster = PrivateCluster { nodes: Vec::new(), dir };
        while cluster.nodes.len() < 6 {
            // The cluster bus listens on port + 10000.
            let port = free_port();
            if port > 55_000 || TcpListener::bind(("127.0.0.1", port + 10_000)).is_err() {
                continue;
            }
            let dir = cluster.dir.join(port.to_string());
            std::fs::create_dir_all(&dir).expect("cluster node dir");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--dir"])
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs (scripts/services.sh installs it)");
            cluster.nodes.push((port, Some(child)));
        }
        for (port, _) in &cluster.nodes {
            wait_for_port(*port);
        }
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(cluster.nodes.iter().map(|(port, _)| format!("127.0.0.1:{port}")))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(created.success(), "redis-cli --cluster create failed");
        let started = Instant::now();
        while !cluster.live_ports().iter().all(|port| cluster_info(*port).contains("cluster_state:ok")) {
            assert!(started.elapsed() < Duration::from_secs(30), "the private cluster did not form");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// Seed node URLs (every node).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|(port, _)| format!("redis://127.0.0.1:{port}")).collect()
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes.iter().filter(|(_, child)| child.is_some()).map(|(port, _)| *port).collect()
    }

    /// The port of the master that serves `key`'s slot now. Right after a
    /// failover the node asked may not have heard of the promotion yet (the
    /// cluster's gossip reaches each node in its own time, later on a busy
    /// machine), so its view is read again for up to 15 s.
    pub fn master_of(&self, key: &str) -> u16 {
        let port = self.live_ports()[0];
        let mut c =
            redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url").get_connection().expect("node");
        let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut c).expect("KEYSLOT");
        let started = Instant::now();
        loop {
            let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut c).expect("CLUSTER NODES");
            match Self::serving_master(&nodes, slot) {
                Some(port) => return port,
                None if started.elapsed() < Duration::from_secs(15) => std::thread::sleep(Duration::from_millis(200)),
                None => panic!("no master serves slot {slot}: {nodes}"),
            }
        }
    }

    /// The port of the master that `CLUSTER NODES` output shows serving `slot`.
    fn serving_master(nodes: &str, slot: i64) -> Option<u16> {
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let serves = fields[8..].iter().any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                matches!((from.parse::<i64>(), to.parse::<i64>()), (Ok(from), Ok(to)) if (from..=to).contains(&slot))
            });
            if serves {
                let address = fields[1].split('@').next().expect("address");
                return address.rsplit(':').next().and_then(|p| p.parse().ok());
            }
        }
        None
    }

    /// Waits until every replica of the master on `port` has all of its
    /// writes (replication is asynchronous: a write the replica lacks when
    /// its master dies is lost, which the recovery test covers on its own).
    pub fn wait_replicated(&self, port: u16) {
        let started = Instant::now();
        loop {
            let info: String = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .and_then(|client| client.get_connection())
                .and_then(|mut c| redis::cmd("INFO").arg("replication").query(&mut c))
                .expect("master answers INFO");
            let field = |line: &str, name: &str| {
                line.split(',').find_map(|f| f.strip_prefix(name)).and_then(|v| v.trim().parse::<u64>().ok())
            };
            let master = info.lines().find_map(|l| field(l, "master_repl_offset:"));
            let replicas: Vec<u64> = info
                .lines()
                .filter(|l| l.starts_with("slave"))
                .filter_map(|l| field(l.split_once(':')?.1, "offset="))
                .collect();
            if master.is_some() && !replicas.is_empty() && replicas.iter().all(|r| Some(*r) == master) {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "replicas did not catch up: {info}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` of the node on `port`.
    pub fn kill(&mut self, port: u16) {
        for (p, child) in &mut self.nodes {
            if *p == port {
                if let Some(mut child) = child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        for (port, _) in self.live_ports().into_iter().map(|p| (p, ())) {
            self.kill(port);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_port(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "redis on {port} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `CLUSTER INFO` of the node on `port` ("" when it does not answer).
fn cluster_info(port: u16) -> String {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .and_then(|client| client.get_connection())
        .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
        .unwrap_or_default()
}
