//! Group commit: concurrent writes to one Factory wait in a queue, and whoever holds the
//! Factory's turn takes every write queued so far and commits them together (one
//! transaction, one new version signed once). Under one writer nothing changes; under many,
//! the cost of a commit (signing, re-serialising a large targets.json, the fsync) is shared,
//! so throughput grows with writers instead of queueing behind the Factory lock.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::{ApiError, ApiResult};

/// A queued job and where its answer goes.
pub type Entry<J, R> = (J, oneshot::Sender<ApiResult<R>>);

struct Queue<J, R> {
    pending: Mutex<Vec<Entry<J, R>>>,
    turn: tokio::sync::Mutex<()>,
}

/// The jobs queued for one key, handed to a commit: it takes them when it is ready to
/// commit (for a Factory, once it holds the Factory's lock), so jobs that arrive while it
/// waits for another replica's commit join its group.
pub struct Pending<J, R> {
    queue: Arc<Queue<J, R>>,
    taken: Arc<AtomicBool>,
}

impl<J, R> Pending<J, R> {
    /// Every job queued so far (empty when an earlier turn took them all).
    pub fn take(&self) -> Vec<Entry<J, R>> {
        self.taken.store(true, Ordering::Release);
        take(&self.queue)
    }
}

fn take<J, R>(queue: &Queue<J, R>) -> Vec<Entry<J, R>> {
    match queue.pending.lock() {
        Ok(mut pending) => std::mem::take(&mut *pending),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    }
}

/// The queues of every Factory, created on first use (one small entry per Factory).
pub struct Groups<J, R> {
    queues: Mutex<HashMap<String, Arc<Queue<J, R>>>>,
}

impl<J, R> Default for Groups<J, R> {
    fn default() -> Self {
        Self {
            queues: Mutex::new(HashMap::new()),
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> Groups<J, R> {
    fn queue(&self, key: &str) -> ApiResult<Arc<Queue<J, R>>> {
        let mut queues = self
            .queues
            .lock()
            .map_err(|_| ApiError::internal("group queues poisoned"))?;
        Ok(queues
            .entry(key.to_owned())
            .or_insert_with(|| {
                Arc::new(Queue {
                    pending: Mutex::new(Vec::new()),
                    turn: tokio::sync::Mutex::new(()),
                })
            })
            .clone())
    }

    /// Queues `job` for `key` and returns its answer. When this caller's turn comes and
    /// its job is still queued, `commit` runs: it takes the queued jobs ([`Pending::take`];
    /// its own is among them unless an earlier turn took it) and must answer each. A job
    /// it leaves in the queue is answered with an error. It runs as its own task: a
    /// client that goes away cancels only its wait, never the commit of the others' jobs.
    pub async fn run<F, Fut>(&self, key: &str, job: J, commit: F) -> ApiResult<R>
    where
        F: FnOnce(Pending<J, R>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let queue = self.queue(key)?;
        let (tx, mut rx) = oneshot::channel();
        queue
            .pending
            .lock()
            .map_err(|_| ApiError::internal("group queue poisoned"))?
            .push((job, tx));
        let turn = queue.turn.lock().await;
        // An earlier turn may have committed this job already.
        if let Ok(answer) = rx.try_recv() {
            return answer;
        }
        // Awaited here so the turn is held for the whole commit; if this wait is
        // cancelled, the commit still runs to its end and answers its jobs.
        let taken = Arc::new(AtomicBool::new(false));
        let pending = Pending {
            queue: queue.clone(),
            taken: taken.clone(),
        };
        if tokio::spawn(commit(pending)).await.is_err() {
            tracing::error!("a group commit panicked");
        }
        // Never a hang: a commit that ended before taking the queue leaves this job in it.
        // (Jobs queued after a commit took its group wait for the next turn.)
        if !taken.load(Ordering::Acquire) {
            for (_, reply) in take(&queue) {
                let _ = reply.send(Err(ApiError::internal(
                    "the group commit ended without taking this request",
                )));
            }
        }
        drop(turn);
        rx.await.unwrap_or_else(|_| {
            Err(ApiError::internal(
                "the group commit ended without an answer",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Eight concurrent callers while a slow commit holds the turn: all are answered, with
    /// their own job's result, in fewer commits than jobs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_jobs_share_commits_and_each_gets_its_answer() {
        let groups: Arc<Groups<u32, u32>> = Arc::default();
        let commits = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..8u32 {
            let (groups, commits) = (groups.clone(), commits.clone());
            tasks.push(tokio::spawn(async move {
                groups
                    .run("f", i, move |pending| async move {
                        let jobs = pending.take();
                        if jobs.is_empty() {
                            return;
                        }
                        commits.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        for (job, reply) in jobs {
                            let _ = reply.send(Ok(job * 10));
                        }
                    })
                    .await
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i as u32 * 10);
        }
        let n = commits.load(Ordering::SeqCst);
        assert!((1..8).contains(&n), "{n} commits for 8 jobs");
    }

    /// A commit that forgets a job answers it with an internal error, not a hang.
    #[tokio::test]
    async fn a_job_left_unanswered_is_an_error() {
        let groups: Groups<u32, u32> = Groups::default();
        let answer = groups
            .run("f", 1, |pending| async move { drop(pending.take()) })
            .await;
        assert!(answer.is_err());
    }

    /// A commit that never takes the queue (it failed before it could): its job is
    /// answered with an internal error, not a hang.
    #[tokio::test]
    async fn a_job_never_taken_is_an_error() {
        let groups: Groups<u32, u32> = Groups::default();
        let answer = groups.run("f", 1, |_| async move {}).await;
        assert_eq!(answer.unwrap_err().status, 500);
    }

    /// Jobs queued while the commit waits for its lock (another replica's commit) are in
    /// the group it takes after the wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn jobs_queued_while_the_commit_waits_for_its_lock_join_its_group() {
        let groups: Arc<Groups<u32, u32>> = Arc::default();
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        let held = lock.clone().lock_owned().await;
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..4u32 {
            let (groups, lock, sizes) = (groups.clone(), lock.clone(), sizes.clone());
            tasks.push(tokio::spawn(async move {
                groups
                    .run("f", i, move |pending| async move {
                        let _lock = lock.lock().await;
                        let jobs = pending.take();
                        if !jobs.is_empty() {
                            sizes.lock().unwrap().push(jobs.len());
                        }
                        for (job, reply) in jobs {
                            let _ = reply.send(Ok(job));
                        }
                    })
                    .await
            }));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        drop(held);
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i as u32);
        }
        assert_eq!(*sizes.lock().unwrap(), vec![4]);
    }
}
