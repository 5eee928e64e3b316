//! The one timing loop every benchmark uses.

use std::time::{Duration, Instant};

/// The median over `batches` of the mean time of one `call` in a batch of
/// `per_batch`, after one batch of warm-up. Medians of batch means are
/// steady enough on a shared machine to compare as ratios within one run.
pub fn median_of_batches(batches: usize, per_batch: usize, mut call: impl FnMut()) -> Duration {
    for _ in 0..per_batch {
        call();
    }
    let per_batch_u32 = u32::try_from(per_batch).unwrap_or(u32::MAX);
    let mut means: Vec<Duration> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                call();
            }
            start.elapsed() / per_batch_u32
        })
        .collect();
    means.sort();
    means[batches / 2]
}
