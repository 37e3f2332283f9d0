//! The network behind a queue: requests that arrive together are classified in one forward
//! pass, on a thread of its own, so the async runtime never waits on the model.

use crate::metrics::Metrics;
use data::PIXELS;
use infer::{ClassifyError, DigitClassifier, Prediction};
use std::sync::Arc;
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
pub struct InferenceQueue {
    jobs: mpsc::SyncSender<Job>,
    /// Networks to answer with from the next batch on.
    replacements: mpsc::Sender<DigitClassifier>,
    metrics: Arc<Metrics>,
}

/// Why an image got no answer from the network.
#[derive(Debug, thiserror::Error)]
pub enum Unanswered {
    /// The queue is full: the server is over capacity.
    #[error("the classifier's queue is full")]
    Full,
    /// The classifying thread has stopped (it only does when the network panicked).
    #[error("the classifier has stopped")]
    Stopped,
}

impl InferenceQueue {
    /// Starts the thread that owns `classifier`, with room for `capacity` waiting images.
    pub fn start(classifier: DigitClassifier, capacity: usize, metrics: Arc<Metrics>) -> Self {
        let (jobs, queue) = mpsc::sync_channel::<Job>(capacity);
        let (replacements, replaced) = mpsc::channel();
        let thread_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("classifier".into())
            .spawn(move || run(classifier, &queue, &replaced, &thread_metrics))
            .expect("the classifier thread starts");
        Self {
            jobs,
            replacements,
            metrics,
        }
    }

    /// Answers with `classifier` from the next batch on; the batch being classified, if any,
    /// finishes with the network it started with.
    pub fn replace(&self, classifier: DigitClassifier) -> Result<(), Unanswered> {
        self.replacements
            .send(classifier)
            .map_err(|_| Unanswered::Stopped)
    }

    /// Classifies one preprocessed image, together with whatever else is waiting.
    pub async fn classify(
        &self,
        pixels: [u8; PIXELS],
    ) -> Result<Result<Prediction, ClassifyError>, Unanswered> {
        let answer = self.enqueue(pixels)?;
        answer.await.map_err(|_| Unanswered::Stopped)
    }

    /// Classifies several images, queued together so they share forward passes.
    pub async fn classify_all(
        &self,
        images: &[[u8; PIXELS]],
    ) -> Result<Result<Vec<Prediction>, ClassifyError>, Unanswered> {
        let answers = images
            .iter()
            .map(|pixels| self.enqueue(*pixels))
            .collect::<Result<Vec<_>, _>>()?;
        let mut predictions = Vec::with_capacity(answers.len());
        for answer in answers {
            match answer.await.map_err(|_| Unanswered::Stopped)? {
                Ok(prediction) => predictions.push(prediction),
                Err(error) => return Ok(Err(error)),
            }
        }
        Ok(Ok(predictions))
    }

    /// Puts one image in the queue; where its answer will come.
    fn enqueue(
        &self,
        pixels: [u8; PIXELS],
    ) -> Result<oneshot::Receiver<Result<Prediction, ClassifyError>>, Unanswered> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job { pixels, reply })
            .map_err(|error| match error {
                mpsc::TrySendError::Full(_) => Unanswered::Full,
                mpsc::TrySendError::Disconnected(_) => Unanswered::Stopped,
            })?;
        self.metrics.queue_depth.inc();
        Ok(answer)
    }
}

/// Waits for a job, takes every other job already queued (up to [`MAX_BATCH`]), classifies
/// them in one pass (with the latest network replaced in) and answers each; ends when every
/// [`InferenceQueue`] is gone.
fn run(
    mut classifier: DigitClassifier,
    queue: &mpsc::Receiver<Job>,
    replaced: &mpsc::Receiver<DigitClassifier>,
    metrics: &Metrics,
) {
    while let Ok(first) = queue.recv() {
        if let Some(latest) = replaced.try_iter().last() {
            classifier = latest;
        }
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        metrics.queue_depth.dec_by(jobs.len() as i64);
        metrics.batch_size.observe(jobs.len() as f64);
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
