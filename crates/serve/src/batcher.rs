//! The network behind a queue: requests that arrive together are classified in one forward
//! pass, on a thread of its own, so the async runtime never waits on the model.

use data::PIXELS;
use infer::{ClassifyError, DigitClassifier, Prediction};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most images classified in one forward pass.
const MAX_BATCH: usize = 256;

/// One image waiting for the network, and where its answer goes.
struct Job {
    pixels: [u8; PIXELS],
    reply: oneshot::Sender<Result<Prediction, ClassifyError>>,
}

/// A handle to the classifying thread; cheap to clone, one per request.
#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
}

/// The classifying thread has stopped (it only does when the network panicked).
#[derive(Debug, thiserror::Error)]
#[error("the classifier has stopped")]
pub struct Stopped;

impl Batcher {
    /// Starts the thread that owns `classifier`.
    pub fn start(classifier: DigitClassifier) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("classifier".into())
            .spawn(move || run(&classifier, &queue))
            .expect("the classifier thread starts");
        Self { jobs }
    }

    /// Classifies one preprocessed image, together with whatever else is waiting.
    pub async fn classify(
        &self,
        pixels: [u8; PIXELS],
    ) -> Result<Result<Prediction, ClassifyError>, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { pixels, reply }).map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }
}

/// Waits for a job, takes every other job already queued (up to [`MAX_BATCH`]), classifies
/// them in one pass and answers each; ends when every [`Batcher`] is gone.
fn run(classifier: &DigitClassifier, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let images: Vec<[u8; PIXELS]> = jobs.iter().map(|job| job.pixels).collect();
        match classifier.classify(&images) {
            Ok(predictions) => {
                for (job, prediction) in jobs.into_iter().zip(predictions) {
                    // A client that has gone away no longer wants its answer.
                    let _ = job.reply.send(Ok(prediction));
                }
            }
            Err(error) => {
                for job in jobs {
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
        }
    }
}
