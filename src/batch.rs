//! Micro-batching for group commit: callers submit one item and await its own result; one
//! task takes whatever is waiting (up to `max`) and handles it in one call, typically one
//! transaction. Under light load a batch holds one item and nothing waits for company;
//! under heavy load items queue while a commit is in flight and share the next one, so the
//! number of commits per notification falls as the load rises.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

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
            while let Some(first) = rx.recv().await {
                let mut jobs = Vec::with_capacity(max);
                jobs.push(first);
                while jobs.len() < max {
                    let Ok(job) = rx.try_recv() else { break };
                    jobs.push(job);
                }
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
}
