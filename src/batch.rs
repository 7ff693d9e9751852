//! Micro-batching for group commit: callers submit one item and await its own result; one
//! task takes whatever is waiting (up to `max`) and handles it in one call, typically one
//! transaction. Under light load a batch holds one item and nothing waits for company;
//! under heavy load items queue while a commit is in flight and share the next one, so the
//! number of commits per notification falls as the load rises.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

struct Job<I, O> {
    item: I,
    reply: oneshot::Sender<O>,
}

pub struct Batcher<I, O> {
    tx: mpsc::Sender<Job<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher { tx: self.tx.clone() }
    }
}

/// Waits for one item, then takes whatever else is already waiting, up to `max` in all; None
/// once every sender is gone.
async fn next_batch<T>(rx: &mut mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = rx.recv().await?;
    let mut batch = Vec::with_capacity(max);
    batch.push(first);
    while batch.len() < max {
        let Ok(item) = rx.try_recv() else { break };
        batch.push(item);
    }
    Some(batch)
}

#[derive(Debug, thiserror::Error)]
#[error("the batcher stopped")]
pub struct Stopped;

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// `run` gets a batch and must return one output per input, in order. One batch runs at
    /// a time: while it does, the next one gathers.
    pub fn spawn<F, Fut>(max: usize, run: F) -> Batcher<I, O>
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Job<I, O>>(max * 2);
        tokio::spawn(async move {
            while let Some(jobs) = next_batch(&mut rx, max).await {
                let (items, replies): (Vec<I>, Vec<oneshot::Sender<O>>) =
                    jobs.into_iter().map(|j| (j.item, j.reply)).unzip();
                let outputs = run(items).await;
                // A caller that went away (request canceled) just misses its answer.
                for (reply, output) in replies.into_iter().zip(outputs) {
                    let _ = reply.send(output);
                }
            }
        });
        Batcher { tx }
    }

    pub async fn submit(&self, item: I) -> Result<O, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job { item, reply }).await.map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
}

/// Fire-and-forget batching with back-pressure: callers hand items over and go on; one task
/// takes whatever is waiting (up to `max`) and runs it, up to `in_flight` batches at a time
/// (while they run, the next batch gathers). At most
/// `capacity` items wait: a caller then waits for room (a full pipeline slows its producers
/// rather than growing memory), up to a limit of its own.
pub struct Pipeline<I> {
    tx: mpsc::Sender<I>,
    pending: Arc<Pending>,
}

impl<I> Clone for Pipeline<I> {
    fn clone(&self) -> Self {
        Pipeline {
            tx: self.tx.clone(),
            pending: self.pending.clone(),
        }
    }
}

/// Items handed over and not run yet; `idle` wakes `drain` when that falls to zero.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

impl Pending {
    fn done(&self, n: usize) {
        if self.count.fetch_sub(n, Ordering::AcqRel) == n {
            self.idle.notify_waiters();
        }
    }
}

impl<I: Send + 'static> Pipeline<I> {
    pub fn spawn<F, Fut>(capacity: usize, max: usize, in_flight: usize, mut run: F) -> Pipeline<I>
    where
        F: FnMut(Vec<I>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<I>(capacity);
        let pending = Arc::new(Pending::default());
        let counted = pending.clone();
        let in_flight = in_flight.max(1);
        tokio::spawn(async move {
            let mut running = FuturesUnordered::new();
            let mut open = true;
            loop {
                // `next_batch` is cancel-safe: it awaits only the first `recv`.
                tokio::select! {
                    batch = next_batch(&mut rx, max), if open && running.len() < in_flight => match batch {
                        Some(items) => {
                            let n = items.len();
                            let batch = run(items);
                            running.push(async move {
                                batch.await;
                                n
                            });
                        }
                        None => open = false,
                    },
                    Some(n) = running.next(), if !running.is_empty() => counted.done(n),
                    else => break,
                }
            }
        });
        Pipeline { tx, pending }
    }

    /// Hands `items` over in order, waiting for room at most `wait` in all; returns those
    /// still not handed over by then (or when the pipeline has stopped).
    pub async fn hand_over(&self, items: Vec<I>, wait: Duration) -> Vec<I> {
        let deadline = Instant::now() + wait;
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            self.pending.count.fetch_add(1, Ordering::AcqRel);
            match tokio::time::timeout_at(deadline, self.tx.reserve()).await {
                Ok(Ok(permit)) => permit.send(item),
                _ => {
                    self.pending.done(1);
                    return std::iter::once(item).chain(items).collect();
                }
            }
        }
        Vec::new()
    }

    /// Waits until every item handed over has been run, at most `limit`; false when some
    /// were still waiting then.
    pub async fn drain(&self, limit: Duration) -> bool {
        let idle = async {
            loop {
                // Registered before the check, so a batch that finishes in between still wakes it.
                let finished = self.pending.idle.notified();
                if self.pending.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                finished.await;
            }
        };
        tokio::time::timeout(limit, idle).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn every_caller_gets_its_own_answer_and_batches_form_under_load() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let doubler = Batcher::spawn(16, move |items: Vec<u32>| {
            seen.lock().unwrap().push(items.len());
            async move {
                tokio::task::yield_now().await;
                items.into_iter().map(|i| i * 2).collect::<Vec<_>>()
            }
        });
        let answers = futures_util::future::join_all((0..200u32).map(|i| {
            let b = doubler.clone();
            async move { (i, b.submit(i).await.unwrap()) }
        }))
        .await;
        assert!(answers.iter().all(|(i, out)| *out == i * 2));
        let sizes = sizes.lock().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert!(sizes.len() < 200, "concurrent submissions shared batches: {sizes:?}");
        assert!(sizes.iter().all(|s| *s <= 16));
    }

    #[tokio::test]
    async fn a_full_pipeline_makes_callers_wait_then_gives_back_what_it_could_not_take() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let ran = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (open, seen) = (gate.clone(), ran.clone());
        let pipeline = Pipeline::spawn(4, 2, 1, move |items: Vec<u32>| {
            let (open, seen) = (open.clone(), seen.clone());
            async move {
                // Each batch waits for the test to let it through, like a stalled broker.
                open.acquire().await.unwrap().forget();
                seen.lock().unwrap().extend(items);
            }
        });
        // 4 fill the channel, a batch of up to 2 is taken out and stalls, and the rest wait:
        // never more than capacity + batch are held.
        let left = pipeline.hand_over((0..10).collect(), Duration::from_millis(200)).await;
        assert!(
            (4..=6).contains(&(10 - left.len())),
            "took {} of 10 before the wait ran out",
            10 - left.len()
        );
        assert_eq!(left.last(), Some(&9), "what is left is the tail, in order");
        assert!(
            !pipeline.drain(Duration::from_millis(50)).await,
            "a stalled batch is not drained"
        );
        gate.add_permits(100);
        assert!(pipeline.drain(Duration::from_secs(5)).await);
        let ran = ran.lock().unwrap().clone();
        assert_eq!(
            ran,
            (0..(10 - left.len() as u32)).collect::<Vec<_>>(),
            "run in order, each once"
        );
    }
}
