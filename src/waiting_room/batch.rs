//! Joins go to Redis in batches: the joins of a sale that arrive while the
//! previous batch is in flight are sent together in one `join.lua` call.
//!
//! Nothing waits on purpose: a lone join goes out at once, and under a burst
//! the batch grows by itself to whatever arrived during one round trip, so
//! Redis runs one script per batch instead of one per visitor.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use redis::Script;
use tokio::sync::{mpsc, oneshot};

use super::idle::IdleSales;
use super::{JoinOutcome, JoinReply, Keys};
use crate::error::{AppError, AppResult};
use crate::gate::challenge::{Ticket, LIFETIME};
use crate::store::Redis;

/// Most visitors in one script call (bounds the script's run time).
const MAX_BATCH: usize = 512;

/// Yields to the worker before a batch goes out (see [`gather`]).
const YIELDS: usize = 3;

struct Request {
    sale: String,
    user: String,
    challenge: Option<Ticket>,
    reply: oneshot::Sender<AppResult<JoinOutcome>>,
}

/// The sending side; the batching task runs until it is dropped.
pub struct Joiner {
    tx: mpsc::UnboundedSender<Request>,
}

impl Joiner {
    /// Starts the batching task on the current runtime (actix runs one
    /// single-threaded runtime per worker, so the task stays on the
    /// worker's thread).
    pub fn start(redis: Redis, script: Script, idle: Arc<IdleSales>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(redis, script, idle, rx));
        Joiner { tx }
    }

    /// Joins one visitor (`user` empty for an anonymous one), with the
    /// challenge it solved if any.
    pub async fn join(&self, sale: &str, user: &str, challenge: Option<&Ticket>) -> AppResult<JoinOutcome> {
        let (reply, answer) = oneshot::channel();
        let request = Request { sale: sale.to_owned(), user: user.to_owned(), challenge: challenge.cloned(), reply };
        self.tx.send(request).map_err(|_| AppError::Unavailable("the join batcher has stopped".into()))?;
        answer.await.map_err(|_| AppError::Unavailable("the join batcher dropped a join".into()))?
    }
}

async fn run(redis: Redis, script: Script, idle: Arc<IdleSales>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut pending, 8 * MAX_BATCH).await > 0 {
        gather(&mut rx, &mut pending).await;
        let mut by_sale: HashMap<String, Vec<Request>> = HashMap::new();
        for request in pending.drain(..) {
            by_sale.entry(request.sale.clone()).or_default().push(request);
        }
        let mut calls = Vec::new();
        for (sale, mut requests) in by_sale {
            while !requests.is_empty() {
                let rest = requests.split_off(requests.len().min(MAX_BATCH));
                calls.push(call(&redis, &script, &idle, sale.clone(), std::mem::replace(&mut requests, rest)));
            }
        }
        futures_util::future::join_all(calls).await;
    }
}

/// Lets the worker's other ready tasks run [`YIELDS`] times before the batch
/// goes out, taking the joins they bring.
///
/// When a batch comes back, most joins that arrived meanwhile are not in the
/// channel yet: their connections are readable but not yet parsed. A yield
/// lets the worker parse them (tokio polls its sockets before it resumes a
/// yielded task) and they join this batch instead of waiting for the next.
/// Every call costs Redis a read, a write and a wake-up, about 30 us on the
/// bench machine against 1.8 us of script per join, so under wrk three
/// yields took a batch from 13 joins to 22 and Redis's CPU per join from
/// 4.6-5.2 us to 3.1-3.7 (one yield gave 15, more than three no more than
/// 22). A lone join waits for nothing but the work already due: no timer.
async fn gather(rx: &mut mpsc::UnboundedReceiver<Request>, pending: &mut Vec<Request>) {
    for _ in 0..YIELDS {
        tokio::task::yield_now().await;
        while let Ok(request) = rx.try_recv() {
            pending.push(request);
        }
    }
}

async fn call(redis: &Redis, script: &Script, idle: &IdleSales, sale: String, requests: Vec<Request>) {
    let keys = Keys::new(&redis.prefix, &sale);
    let mut invocation = script.prepare_invoke();
    invocation.key(keys.key("meta")).key(keys.key("seen")).key(keys.key("users")).key(keys.key("gate"));
    // The challenges' single-use bitmaps, one per minute they were handed out in.
    let mut minutes: Vec<i64> = requests.iter().filter_map(|r| r.challenge.map(|t| t.serial.minute)).collect();
    minutes.sort_unstable();
    minutes.dedup();
    for minute in &minutes {
        invocation.key(keys.key(&format!("pow:{minute}")));
    }
    invocation.arg(Utc::now().timestamp()).arg(minutes.len());
    for minute in &minutes {
        // Kept until every challenge of that minute has expired, and a
        // little more, so clock skew between instances cannot drop a
        // bitmap while its challenges still pass.
        invocation.arg((minute + 1) * 60 + LIFETIME.as_secs() as i64 + 30);
    }
    for request in &requests {
        match &request.challenge {
            Some(ticket) => {
                let map = minutes.binary_search(&ticket.serial.minute).map(|i| i + 1).unwrap_or(0);
                invocation.arg(format!("{map}:{}:{}", ticket.serial.n, request.user))
            }
            None if request.user.is_empty() => invocation.arg(""),
            None => invocation.arg(format!("0:0:{}", request.user)),
        };
    }
    let reply: AppResult<JoinReply> =
        redis.run("join", |mut c| async move { invocation.invoke_async(&mut c).await }).await;
    match reply {
        Ok(reply) => {
            // New numbers for this instance's admission ticks to admit.
            idle.wake(&sale);
            let mut outcomes = reply.outcomes(requests.len()).into_iter();
            for request in requests {
                let outcome = outcomes.next().unwrap_or(JoinOutcome::Unknown);
                let _ = request.reply.send(Ok(outcome));
            }
        }
        Err(e) => {
            let (unavailable, message) = match &e {
                AppError::Unavailable(cause) => (true, cause.to_string()),
                other => (false, other.to_string()),
            };
            for request in requests {
                let error = if unavailable {
                    AppError::Unavailable(message.clone().into())
                } else {
                    AppError::Internal(anyhow::anyhow!("{message}"))
                };
                let _ = request.reply.send(Err(error));
            }
        }
    }
}
