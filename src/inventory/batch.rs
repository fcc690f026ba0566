//! Holds go to Postgres in batches: the "best available" holds of a sale
//! that arrive while a worker's calls are all in flight are placed together
//! by one `place_holds` call (migrations/0009), one statement and one commit
//! for all of them; each hold is still all or nothing in a subtransaction
//! of its own and answers exactly as a lone `place_hold` would.
//!
//! Nothing waits on purpose, as with the join batcher
//! (`waiting_room/batch.rs`): a hold that finds a free call slot goes out at
//! once, alone, and under load a batch grows to whatever arrived while the
//! worker's slots were busy. Each worker thread has its own batcher and its
//! share of the Postgres pool as slots, so no hold wakes another thread.
//!
//! Every batch is sorted by the buyer's allowance key (visitor, then
//! session) before it is sent: holds of concurrent batches lock allowance
//! rows (I3) in one global order, so two batches never deadlock.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use super::place::{NotPlaced, Placed, Refusal};
use crate::error::AppError;
use crate::per_thread::PerThread;

/// Most holds in one call: the subtransactions of one transaction stay
/// under the 64 a Postgres backend caches.
const MAX_BATCH: usize = 32;

/// One "best available" hold, with everything `place_hold` takes.
pub(super) struct BatchedHold {
    pub(super) sale: String,
    pub(super) limit: i32,
    pub(super) floor: i32,
    pub(super) visitor: String,
    pub(super) queue_number: Option<i64>,
    pub(super) hold: Uuid,
    pub(super) quantity: i32,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) scope: String,
    pub(super) key: Option<String>,
    pub(super) request_hash: String,
    pub(super) body: Value,
    pub(super) category: Option<String>,
    pub(super) session: Option<i32>,
}

struct Request {
    hold: BatchedHold,
    reply: oneshot::Sender<Result<Placed, NotPlaced>>,
}

/// The per-thread batchers of this instance.
pub struct HoldBatches {
    db: PgPool,
    /// Calls one worker's batcher keeps in flight at most.
    slots: usize,
    batchers: PerThread<Arc<Batcher>>,
}

impl HoldBatches {
    /// Batchers that share `pool_size` connections among `workers` threads.
    pub fn new(db: PgPool, pool_size: u32, workers: usize) -> Self {
        let slots = (pool_size as usize / workers.max(1)).max(1);
        HoldBatches { db, slots, batchers: PerThread::default() }
    }

    /// Places `hold` together with whatever else is waiting.
    pub(super) async fn place(&self, hold: BatchedHold) -> Result<Placed, NotPlaced> {
        let batcher = self.batchers.get_or_make(|| Arc::new(Batcher::start(self.db.clone(), self.slots)));
        let (reply, answer) = oneshot::channel();
        batcher.tx.send(Request { hold, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> NotPlaced {
    NotPlaced::Failed(AppError::Unavailable("the hold batcher has stopped".into()))
}

/// The sending side; the batching task runs until it is dropped.
struct Batcher {
    tx: mpsc::UnboundedSender<Request>,
}

impl Batcher {
    /// Starts the batching task on the current runtime (actix runs one
    /// single-threaded runtime per worker).
    fn start(db: PgPool, slots: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(db, Arc::new(Semaphore::new(slots)), rx));
        Batcher { tx }
    }
}

async fn run(db: PgPool, slots: Arc<Semaphore>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut pending: Vec<Request> = Vec::new();
    loop {
        if pending.is_empty() && rx.recv_many(&mut pending, 4 * MAX_BATCH).await == 0 {
            return;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // What arrived while every slot was busy goes in this call too.
        while let Ok(request) = rx.try_recv() {
            pending.push(request);
        }
        let batch = take_batch(&mut pending);
        let db = db.clone();
        tokio::spawn(async move {
            call(&db, batch).await;
            drop(slot);
        });
    }
}

/// Up to [`MAX_BATCH`] requests of the first waiting request's sale, sorted
/// by allowance key; the others keep their order.
fn take_batch(pending: &mut Vec<Request>) -> Vec<Request> {
    let sale = pending[0].hold.sale.clone();
    let (mut batch, rest): (Vec<Request>, Vec<Request>) = std::mem::take(pending).into_iter().partition({
        let mut taken = 0;
        move |r| {
            let take = taken < MAX_BATCH && r.hold.sale == sale;
            taken += usize::from(take);
            take
        }
    });
    *pending = rest;
    batch.sort_by(|a, b| (&a.hold.visitor, a.hold.session).cmp(&(&b.hold.visitor, b.hold.session)));
    batch
}

/// One `place_holds` row.
type PlacedRow = (
    i32,
    String,
    Option<i32>,
    Option<i16>,
    Option<Value>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn call(db: &PgPool, batch: Vec<Request>) {
    let holds: Vec<&BatchedHold> = batch.iter().map(|r| &r.hold).collect();
    let first = holds[0];
    let statement = sqlx::query_as::<_, PlacedRow>(
        "SELECT i, outcome, lowest, status, body, code, message, detail, constraint_name \
         FROM place_holds($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&first.sale)
    .bind(first.limit)
    .bind(first.floor)
    .bind(holds.iter().map(|h| h.visitor.as_str()).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.queue_number).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.hold).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.quantity).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.expires_at).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.created_at).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.scope.as_str()).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.key.as_deref()).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.request_hash.as_str()).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| &h.body).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.category.as_deref()).collect::<Vec<_>>())
    .bind(holds.iter().map(|h| h.session).collect::<Vec<_>>());
    let result = crate::store::with_pg(db, "place_holds", async |conn| statement.fetch_all(conn).await).await;
    ::metrics::histogram!(crate::metrics::HOLD_BATCH).record(batch.len() as f64);
    match result {
        Ok(rows) => {
            let mut rows: HashMap<i32, PlacedRow> = rows.into_iter().map(|row| (row.0, row)).collect();
            for (n, request) in batch.into_iter().enumerate() {
                let answer = match rows.remove(&(n as i32 + 1)) {
                    Some((_, outcome, lowest, status, body, code, message, detail, constraint)) => match code {
                        Some(code) => Err(NotPlaced::Refused(Refusal {
                            code,
                            message: message.unwrap_or_default(),
                            detail,
                            constraint,
                        })),
                        None => Ok((outcome, lowest, status, body)),
                    },
                    None => Err(NotPlaced::Failed(AppError::Internal(anyhow::anyhow!("place_holds skipped a hold")))),
                };
                let _ = request.reply.send(answer);
            }
        }
        Err(error) => {
            // One error for the whole call (the pool, the connection, the
            // statement itself): every hold of it gets the same answer.
            let error = NotPlaced::from(error);
            for request in batch {
                let _ = request.reply.send(Err(error.duplicate()));
            }
        }
    }
}
