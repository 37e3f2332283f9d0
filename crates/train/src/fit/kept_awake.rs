//! The training loop on one of rayon's workers, with the other workers kept awake.
//!
//! The fused kernels split each pass of a step across rayon's workers, several passes a step,
//! a few hundred microseconds each. Called from any other thread, every pass would wake the
//! workers and put the caller to sleep until they finish; so the loop runs on a worker and
//! takes part in each pass itself. Between passes (the optimizer step, the loss, the next
//! batch) a worker with nothing to do falls asleep within microseconds, and waking it for the
//! next pass takes tens more, longer in a virtual machine, while its cache goes cold.
//! [`on_workers_kept_awake`] keeps those workers busy-waiting instead: each takes any job the
//! pool has (a pass's share, a batch's distortions) the moment it appears, until training ends.
//! That spends idle time of cores a training run would not give to anything else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Whether a training loop in this process already holds the workers awake: a second one
/// runs as [`on_a_worker`] does, leaving the pool's scheduling to rayon.
static HELD_AWAKE: AtomicBool = AtomicBool::new(false);

/// How long the loop waits for the other workers to be awake before it starts without those
/// that are not (a worker busy with some other, long job).
const WAKING: Duration = Duration::from_millis(100);

/// Runs `work` on one of rayon's workers, the others busy-waiting for jobs until it returns.
///
/// With a single worker (no other to keep awake), with more workers than cores (where
/// busy-waiting workers would take turns on the cores with the loop itself), or while another
/// call is running in this process, this one runs as [`on_a_worker`].
pub(crate) fn on_workers_kept_awake<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    let threads = rayon::current_num_threads();
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    if threads < 2 || threads > cores || HELD_AWAKE.swap(true, Ordering::SeqCst) {
        return on_a_worker(work);
    }
    let _release = OnDrop(|| HELD_AWAKE.store(false, Ordering::SeqCst));
    let others = Arc::new(Others::default());
    let waiting = Arc::clone(&others);
    rayon::spawn_broadcast(move |_| waiting.stay_awake());
    on_a_worker(|| {
        let _done = OnDrop(|| others.done.store(true, Ordering::SeqCst));
        others.wait_until_awake(threads - 1);
        work()
    })
}

/// Runs `work` on one of rayon's workers and waits for it there, the pool scheduling its
/// workers as usual (asleep when they find nothing to do).
///
/// With a single worker, `work` runs where it is called: a training loop waiting on that
/// worker for its next batch would hold the only thread that can distort the batch.
pub(crate) fn on_a_worker<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_num_threads() < 2 {
        return work();
    }
    let mut result = None;
    rayon::scope(|scope| scope.spawn(|_| result = Some(work())));
    result.expect("a scope returns once its tasks have run")
}

/// What the loop shares with the copy of [`Others::stay_awake`] sent to every worker.
#[derive(Default)]
struct Others {
    /// The workers whose copy is busy-waiting.
    awake: Mutex<Vec<usize>>,
    /// Set when the loop starts: a copy that begins later returns at once. It might have
    /// begun inside one of the loop's own jobs (a worker waiting in a pass takes other jobs),
    /// which could then not finish until the loop did.
    started: AtomicBool,
    /// Set when the loop has returned (or panicked).
    done: AtomicBool,
}

impl Others {
    /// Waits, without taking jobs, for the copies on `count` workers other than this one to
    /// be awake (this worker's own copy may be waiting under the loop, which it then ran), or
    /// for [`WAKING`] to pass.
    fn wait_until_awake(&self, count: usize) {
        let this = rayon::current_thread_index();
        let deadline = Instant::now() + WAKING;
        while self.awake_besides(this) < count && Instant::now() < deadline {
            std::hint::spin_loop();
        }
        self.started.store(true, Ordering::SeqCst);
    }

    fn awake_besides(&self, this: Option<usize>) -> usize {
        let awake = self.awake.lock().unwrap_or_else(PoisonError::into_inner);
        awake.iter().filter(|&&worker| Some(worker) != this).count()
    }

    fn stay_awake(&self) {
        if self.started.load(Ordering::SeqCst) {
            return;
        }
        if let Some(worker) = rayon::current_thread_index() {
            let mut awake = self.awake.lock().unwrap_or_else(PoisonError::into_inner);
            awake.push(worker);
        }
        until(|| self.done.load(Ordering::SeqCst));
    }
}

/// Runs the pool's jobs on this worker, or spins while there are none, until `done`.
fn until(done: impl Fn() -> bool) {
    while !done() {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::hint::spin_loop();
        }
    }
}

/// Runs its closure when dropped, on a panic's way out too.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
    }

    #[test]
    fn work_runs_on_a_worker_and_its_parallel_jobs_finish() {
        let pool = pool(2);
        let (index, sum) = pool.install(|| {
            on_workers_kept_awake(|| {
                let sum: u64 = (0..10_000u64).into_par_iter().map(|x| x * x).sum();
                (rayon::current_thread_index(), sum)
            })
        });
        assert!(index.is_some(), "the work ran off the pool");
        assert_eq!(sum, (0..10_000u64).map(|x| x * x).sum::<u64>());
    }

    #[test]
    fn work_started_while_another_holds_the_workers_still_finishes() {
        let pool = pool(2);
        let results = pool.install(|| {
            on_workers_kept_awake(|| {
                std::thread::scope(|scope| {
                    let inner = scope.spawn(|| {
                        pool.install(|| on_workers_kept_awake(|| (0..100).into_par_iter().sum()))
                    });
                    let outer: i32 = (0..10).into_par_iter().sum();
                    (outer, inner.join().expect("the inner work returns"))
                })
            })
        });
        assert_eq!(results, (45, 4950));
    }

    #[test]
    fn a_worker_blocked_outside_the_pool_does_not_keep_the_work_from_running() {
        let pool = pool(2);
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        pool.spawn(move || {
            let _ = blocked.recv();
        });
        let sum: i32 = pool.install(|| on_workers_kept_awake(|| (0..100).into_par_iter().sum()));
        release.send(()).expect("the blocked job is still waiting");
        assert_eq!(sum, 4950);
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller_and_releases_the_workers() {
        let pool = pool(2);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.install(|| on_workers_kept_awake(|| panic!("training failed")))
        }));
        assert!(caught.is_err());
        let after = pool.install(|| on_workers_kept_awake(|| 7));
        assert_eq!(after, 7);
    }

    #[test]
    fn more_workers_than_cores_still_run_the_work() {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        let pool = pool(2 * cores + 1);
        let sum: u64 =
            pool.install(|| on_workers_kept_awake(|| (0..1000u64).into_par_iter().sum()));
        assert_eq!(sum, 499_500);
    }

    #[test]
    fn a_single_worker_runs_the_work_itself() {
        let pool = pool(1);
        assert_eq!(pool.install(|| on_workers_kept_awake(|| 3)), 3);
    }
}
