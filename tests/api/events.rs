//! Outbox delivery to webhooks: signed, retried with growing delays,
//! dead-lettered, replayable, in order per subject, never sent twice at once.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use floodgate::configuration::{Settings, WebhookEndpoint};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{body_json, eventually, sale_json, spawn_app_with, spawn_sibling, ADMIN_KEY};

const SECRET: &str = "sink-secret-123";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    event_id: String,
    event_type: String,
    signature_ok: bool,
    body: Value,
    answered: u16,
}

/// A local webhook receiver that fails its first `fail_first` requests.
#[derive(Clone)]
struct Receiver {
    url: String,
    log: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<AtomicUsize>,
    in_flight: Arc<Mutex<HashSet<String>>>,
    overlaps: Arc<AtomicUsize>,
    delay: Duration,
}

async fn receive(req: HttpRequest, body: web::Bytes, receiver: web::Data<Receiver>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let event_id = header("floodgate-event-id");
    if !receiver.in_flight.lock().unwrap().insert(event_id.clone()) {
        receiver.overlaps.fetch_add(1, Ordering::SeqCst);
    }
    tokio::time::sleep(receiver.delay).await;
    let signature_ok = floodgate::signature::verify_signature(
        SECRET,
        &header("floodgate-signature"),
        &body,
        chrono::Utc::now().timestamp(),
        300,
    )
    .is_ok();
    let fail = receiver.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let answered = if fail { 503 } else { 200 };
    receiver.log.lock().unwrap().push(Received {
        at: Instant::now(),
        event_id: event_id.clone(),
        event_type: header("floodgate-event-type"),
        signature_ok,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered,
    });
    receiver.in_flight.lock().unwrap().remove(&event_id);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap()).finish()
}

impl Receiver {
    fn start(fail_first: usize, delay: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let receiver = Receiver {
            url: format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port()),
            log: Arc::default(),
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
            in_flight: Arc::default(),
            overlaps: Arc::default(),
            delay,
        };
        let data = web::Data::new(receiver.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
            .workers(2)
            .listen(listener)
            .unwrap()
            .run();
        tokio::spawn(server);
        receiver
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    fn delivered(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.answered == 200).collect()
    }

    fn configure(&self, settings: &mut Settings, max_attempts: i32) {
        settings.webhooks.endpoints = vec![WebhookEndpoint {
            name: "sink".into(),
            url: self.url.clone(),
            secret: SECRET.into(),
            events: vec!["*".into()],
        }];
        settings.webhooks.max_attempts = max_attempts;
        settings.webhooks.backoff_base_ms = 200;
        settings.webhooks.backoff_max_ms = 5_000;
    }
}

#[tokio::test]
async fn events_arrive_signed_after_retries_with_growing_delays() {
    let receiver = Receiver::start(3, Duration::ZERO);
    let app = spawn_app_with(|s| receiver.configure(s, 8)).await;
    let sale = app.create_sale_ok(&sale_json(5, json!({}))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 1 })).await;

    let delivered = eventually(Duration::from_secs(10), || async {
        receiver.delivered().into_iter().find(|r| r.event_type == "hold.created")
    })
    .await
    .expect("hold.created delivered");
    assert!(delivered.signature_ok, "Floodgate-Signature verifies with the endpoint secret");
    assert_eq!(delivered.body["type"], "hold.created");
    assert_eq!(delivered.body["data"]["hold_id"], hold["id"]);
    assert_eq!(delivered.body["id"], delivered.event_id.as_str());

    let tries: Vec<Received> = receiver.received().into_iter().filter(|r| r.event_id == delivered.event_id).collect();
    assert_eq!(tries.len(), 4, "three failures, then success: {tries:?}");
    assert!(tries.iter().all(|t| t.signature_ok));
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[2] > gaps[0], "backoff grows: {gaps:?}");
    assert!(gaps[0] >= Duration::from_millis(80), "retries wait: {gaps:?}");
}

#[tokio::test]
async fn dead_letters_after_the_last_try_and_an_admin_replays_them() {
    let receiver = Receiver::start(usize::MAX, Duration::ZERO);
    let app = spawn_app_with(|s| receiver.configure(s, 3)).await;
    let sale = app.create_sale_ok(&sale_json(5, json!({}))).await;
    app.hold_ok(&sale, "v:a", &json!({ "quantity": 1 })).await;

    let dead = eventually(Duration::from_secs(10), || async {
        let response = app.client.get(app.url("/admin/v1/events/dead")).bearer_auth(ADMIN_KEY).send().await.unwrap();
        let list = body_json(response).await;
        list.as_array().unwrap().iter().find(|d| d["event_type"] == "hold.created").cloned()
    })
    .await
    .expect("dead-lettered");
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["last_status"], 503);
    let event_id = dead["event_id"].as_str().unwrap().to_owned();
    assert_eq!(receiver.received().iter().filter(|r| r.event_id == event_id).count(), 3, "no try after the last");

    receiver.fail_first.store(0, Ordering::SeqCst);
    let response = app
        .client
        .post(app.url(&format!("/admin/v1/events/{event_id}/replay")))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["replayed"], 1);
    let delivered = eventually(Duration::from_secs(5), || async {
        receiver.delivered().into_iter().find(|r| r.event_id == event_id)
    })
    .await;
    assert!(delivered.is_some(), "replayed event is delivered");
    let unknown = app
        .client
        .post(app.url(&format!("/admin/v1/events/{}/replay", uuid::Uuid::new_v4())))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// An instance that sends to `receiver` but whose dispatcher never runs.
async fn without_dispatcher(receiver: &Receiver) -> crate::helpers::TestApp {
    spawn_app_with(|s| {
        receiver.configure(s, 8);
        s.webhooks.dispatch_ms = 3_600_000;
    })
    .await
}

#[tokio::test]
async fn events_committed_while_no_dispatcher_ran_are_delivered_by_another_instance() {
    let receiver = Receiver::start(0, Duration::ZERO);
    // The first instance "dies" before delivering.
    let first = without_dispatcher(&receiver).await;
    let sale = first.create_sale_ok(&sale_json(50, json!({ "per_user_limit": 50 }))).await;
    for i in 0..20 {
        first.hold_ok(&sale, &format!("v:{i}"), &json!({ "quantity": 1 })).await;
    }
    assert!(receiver.received().is_empty());

    let mut settings = first.settings.clone();
    settings.webhooks.dispatch_ms = 50;
    let second = crate::helpers::spawn_settings(settings).await;
    let all = eventually(Duration::from_secs(10), || async {
        (receiver.delivered().iter().filter(|r| r.event_type == "hold.created").count() == 20).then_some(())
    })
    .await;
    assert!(all.is_some(), "every committed event is delivered: {}", receiver.delivered().len());
    drop(second);
}

/// A backlog larger than one fan-out batch (500) is fanned out in one
/// dispatch pass: one batch per pass capped an instance at 2,000 events/s at
/// the default 250 ms period, fewer than a burst of holds writes.
#[tokio::test]
async fn one_dispatch_pass_fans_out_a_backlog_of_several_batches() {
    let receiver = Receiver::start(0, Duration::ZERO);
    // The pass below is the only one.
    let app = without_dispatcher(&receiver).await;
    sqlx::query(
        "INSERT INTO outbox_events (id, event_type, sale_id, subject_id, payload) \
         SELECT gen_random_uuid(), 'sale.starting', 's_backlog', 's_backlog', '{}'::jsonb \
         FROM generate_series(1, 1234)",
    )
    .execute(&app.db)
    .await
    .expect("backlog written");
    let fanned =
        floodgate::events::delivery::fan_out_pending(&app.db, &app.settings.webhooks).await.expect("fan-out pass");
    assert_eq!(fanned, 1234, "one pass takes the whole backlog");
    let (pending, deliveries): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM outbox_events WHERE state = 'pending'), \
                (SELECT count(*) FROM webhook_deliveries WHERE endpoint = 'sink')",
    )
    .fetch_one(&app.db)
    .await
    .expect("counts");
    assert_eq!((pending, deliveries), (0, 1234), "every event has its delivery, none is left pending");
}

#[tokio::test]
async fn two_instances_never_deliver_one_event_at_the_same_time() {
    let receiver = Receiver::start(0, Duration::from_millis(30));
    let first = spawn_app_with(|s| receiver.configure(s, 8)).await;
    let _second = spawn_sibling(&first).await;
    let sale = first.create_sale_ok(&sale_json(200, json!({ "per_user_limit": 200 }))).await;
    let holds = (0..100).map(|i| {
        let first = &first;
        let sale = sale.clone();
        async move {
            let token = first.admission_token(&sale, &format!("v:{i}"));
            first.hold(&sale, &token, &json!({ "quantity": 1 }), None).await.status()
        }
    });
    futures::future::join_all(holds).await;
    let done = eventually(Duration::from_secs(20), || async {
        (receiver.delivered().iter().filter(|r| r.event_type == "hold.created").count() >= 100).then_some(())
    })
    .await;
    assert!(done.is_some(), "all delivered");
    assert_eq!(receiver.overlaps.load(Ordering::SeqCst), 0, "no event was in flight twice at once");
    let ids: Vec<String> = receiver.delivered().into_iter().map(|r| r.event_id).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "no event delivered twice");
}

#[tokio::test]
async fn an_expiring_hold_sends_expiring_then_expired_in_order() {
    let receiver = Receiver::start(0, Duration::ZERO);
    let app = spawn_app_with(|s| {
        receiver.configure(s, 8);
        s.events.hold_expiring_before_seconds = 2;
    })
    .await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "hold_ttl_seconds": 3 }))).await;
    let hold = app.hold_ok(&sale, "v:a", &json!({ "quantity": 1 })).await;
    let hold_id = hold["id"].as_str().unwrap().to_owned();
    let kinds = eventually(Duration::from_secs(10), || async {
        let kinds: Vec<String> = receiver
            .delivered()
            .into_iter()
            .filter(|r| r.body["subject_id"] == hold_id.as_str())
            .map(|r| r.event_type)
            .collect();
        (kinds.len() >= 3).then_some(kinds)
    })
    .await
    .expect("three events for the hold");
    assert_eq!(kinds, vec!["hold.created", "hold.expiring", "hold.expired"]);
}

#[tokio::test]
async fn a_hold_is_not_reminded_in_the_first_half_of_its_life() {
    // The instance's own reminder job never finds a hold due (a lead of 0),
    // so the calls below are the only reminders.
    let app = spawn_app_with(|s| s.events.hold_expiring_before_seconds = 0).await;
    let sale = app.create_sale_ok(&sale_json(5, json!({ "hold_ttl_seconds": 60 }))).await;
    app.hold_ok(&sale, "v:a", &json!({ "quantity": 1 })).await;
    // Expiring within a 60 s lead, but only just placed: not due until 30 s.
    let sent = floodgate::events::reminders::send_due(&app.db, 60, 0).await.expect("reminders");
    assert_eq!(sent, 0, "a hold just placed is not reminded");
    let reminded: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'hold.expiring'")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(reminded, 0);
    // Past its half-life (moved back in time rather than waited for) it is.
    sqlx::query("UPDATE holds SET created_at = created_at - interval '31 seconds', expires_at = expires_at - interval '31 seconds'")
        .execute(&app.db)
        .await
        .expect("age the hold");
    let sent = floodgate::events::reminders::send_due(&app.db, 60, 0).await.expect("reminders");
    assert_eq!(sent, 1, "a hold past half its time and within the lead is reminded once");
}

/// A started FIFO sale admitting only by hand, with `visitors` in line in
/// join order.
async fn sale_with_a_line(app: &crate::helpers::TestApp, visitors: usize) -> String {
    let sale = app
        .create_sale_ok(&sale_json(
            10,
            json!({ "waiting_room": true, "shuffle_prequeue": false, "admission": { "admit_per_second": 0 } }),
        ))
        .await;
    let mut tokens = Vec::new();
    for _ in 0..visitors {
        tokens.push(body_json(app.join(&sale, None).await).await["queue_token"].as_str().unwrap().to_owned());
    }
    let frozen = eventually(Duration::from_secs(5), || async {
        (body_json(app.status(&sale, &tokens[0]).await).await["prequeue"] == false).then_some(())
    })
    .await;
    assert!(frozen.is_some(), "the pre-queue froze at the start");
    sale
}

#[tokio::test]
async fn admissions_write_queue_admitted_events() {
    let app = crate::helpers::spawn_app().await;
    let sale = sale_with_a_line(&app, 3).await;
    let admitted = body_json(app.admit(&sale, 2).await).await;
    assert_eq!(admitted["admitted"], 2);
    let events = app.events(&sale, "queue.admitted").await;
    let entries: Vec<i64> = events.iter().map(|e| e["entry"].as_i64().unwrap()).collect();
    assert_eq!(entries, vec![1, 2]);
    assert!(events.iter().all(|e| e["admission_expires_at"].is_string()));
}

#[tokio::test]
async fn admissions_reach_the_outbox_exactly_once_even_when_their_instance_loses_postgres() {
    let app = crate::helpers::spawn_app().await;
    let sale = sale_with_a_line(&app, 6).await;

    // The admitting instance cannot write to Postgres any more: the
    // admission still happens (in Redis) and is answered.
    app.state.db.close().await;
    let admitted = app.admit(&sale, 4).await;
    assert_eq!(admitted.status(), StatusCode::OK);
    assert_eq!(body_json(admitted).await["admitted"], 4);

    // Another instance's ticker writes the pending events, once each.
    let sibling = spawn_sibling(&app).await;
    let events = eventually(Duration::from_secs(10), || async {
        let events = sibling.events(&sale, "queue.admitted").await;
        (events.len() >= 4).then_some(events)
    })
    .await
    .expect("the admissions' events are written by another instance");
    // Further ticks and flushes add nothing.
    floodgate::events::flush_admissions(&sibling.state.db, &sibling.state.waiting_room, &sale).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = sibling.events(&sale, "queue.admitted").await;
    let mut entries: Vec<i64> = again.iter().map(|e| e["entry"].as_i64().unwrap()).collect();
    entries.sort();
    assert_eq!(entries, vec![1, 2, 3, 4], "one event per admission: {events:?}");
}
