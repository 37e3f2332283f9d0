//! Batches assembled on a thread of their own while the training step works on the one
//! before.
//!
//! Burn's single-threaded loader builds each batch (reading, augmenting, stacking 128
//! images) on the training loop's thread, between steps, while the kernels' worker threads
//! wait. Its multi-threaded loader splits the data between workers and takes their batches
//! in whatever order they finish, which changes the order from run to run. [`Prefetched`]
//! keeps the single-threaded loader, and so its exact order of batches, and only moves it
//! to a thread that runs a few batches ahead.

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::DatasetError;
use burn::tensor::Device;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

/// Batches assembled ahead of the one being used; each waits in memory meanwhile.
const BATCHES_AHEAD: usize = 2;

/// `inner`'s batches, in its order, assembled on a thread of their own.
pub(crate) struct Prefetched<O> {
    inner: Arc<dyn DataLoader<O>>,
}

impl<O> Prefetched<O> {
    pub fn new(inner: Arc<dyn DataLoader<O>>) -> Self {
        Self { inner }
    }
}

type Batch<O> = (Result<O, DatasetError>, Progress);

impl<O: Send + 'static> DataLoader<O> for Prefetched<O> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        let inner = self.inner.clone();
        let (sender, receiver) = sync_channel::<Batch<O>>(BATCHES_AHEAD);
        let assembling = std::thread::Builder::new()
            .name("batches".into())
            .spawn(move || {
                let mut batches = inner.iter();
                while let Some(batch) = batches.next() {
                    // The receiver is gone when training stopped early: stop too.
                    if sender.send((batch, batches.progress())).is_err() {
                        break;
                    }
                }
            });
        match assembling {
            Ok(thread) => Box::new(PrefetchedBatches {
                receiver,
                thread: Some(thread),
                progress: Progress::new(0, self.inner.num_items(), None),
            }),
            // Without a thread to spare, the batches are assembled here, as before.
            Err(_) => self.inner.iter(),
        }
    }

    fn num_items(&self) -> usize {
        self.inner.num_items()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<O>> {
        Arc::new(Self::new(self.inner.to_device(device)))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<O>> {
        Arc::new(Self::new(self.inner.slice(start, end)))
    }
}

/// One pass over the batches, as they arrive from the assembling thread.
struct PrefetchedBatches<O> {
    receiver: Receiver<Batch<O>>,
    thread: Option<JoinHandle<()>>,
    /// The progress of the last batch handed out.
    progress: Progress,
}

impl<O> Iterator for PrefetchedBatches<O> {
    type Item = Result<O, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.receiver.recv() {
            Ok((batch, progress)) => {
                self.progress = progress;
                Some(batch)
            }
            // The pass is over, or the thread panicked: that panic is this thread's, as it
            // would have been without prefetching (rather than an epoch silently cut short).
            Err(_) => {
                if let Some(Err(panic)) = self.thread.take().map(JoinHandle::join) {
                    std::panic::resume_unwind(panic);
                }
                None
            }
        }
    }
}

impl<O> DataLoaderIterator<O> for PrefetchedBatches<O> {
    fn progress(&self) -> Progress {
        self.progress.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataloader::batcher::Batcher;
    use burn::data::dataset::InMemDataset;

    /// Batches of plain numbers, to compare orders.
    #[derive(Clone, Debug)]
    struct Numbers;

    impl Batcher<u32, Vec<u32>> for Numbers {
        fn batch(&self, items: Vec<u32>, _device: &Device) -> Vec<u32> {
            items
        }
    }

    fn shuffled_loader() -> Arc<dyn DataLoader<Vec<u32>>> {
        DataLoaderBuilder::new(Numbers)
            .batch_size(7)
            .shuffle(3)
            .build(InMemDataset::new((0..100).collect()))
    }

    fn passes(loader: &dyn DataLoader<Vec<u32>>) -> Vec<Vec<Vec<u32>>> {
        (0..3)
            .map(|_| {
                loader
                    .iter()
                    .map(|batch| batch.expect("in memory"))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn batches_come_in_the_inner_loaders_order_pass_after_pass() {
        let direct = passes(shuffled_loader().as_ref());
        let prefetched = passes(&Prefetched::new(shuffled_loader()));
        assert_eq!(prefetched, direct);
        // Three different shuffles of all 100 items, 15 batches each.
        assert_ne!(direct[0], direct[1]);
        assert!(direct.iter().all(|pass| pass.len() == 15));
    }

    #[test]
    fn progress_follows_the_batches_handed_out() {
        let prefetched = Prefetched::new(shuffled_loader());
        let mut batches = prefetched.iter();
        batches.next();
        batches.next();
        let progress = batches.progress();
        assert_eq!((progress.items_processed, progress.items_total), (14, 100));
        assert_eq!(batches.count(), 13);
    }

    /// A batcher that fails on its third batch.
    #[derive(Clone, Debug)]
    struct FailsOnThird;

    impl Batcher<u32, Vec<u32>> for FailsOnThird {
        fn batch(&self, items: Vec<u32>, _device: &Device) -> Vec<u32> {
            assert!(items[0] < 20, "batch starting at {} refused", items[0]);
            items
        }
    }

    #[test]
    fn a_panic_while_assembling_reaches_the_training_loop() {
        let inner = DataLoaderBuilder::new(FailsOnThird)
            .batch_size(10)
            .build(InMemDataset::new((0..100).collect()));
        let prefetched = Prefetched::new(inner);
        let pass =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prefetched.iter().count()));
        let panic = pass.expect_err("the third batch panics");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            message.contains("batch starting at 20 refused"),
            "{message}"
        );
    }
}
