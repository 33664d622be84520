//! Work split over the machine's cores: contiguous chunks, one thread each, results in input
//! order. Small inputs stay on the calling thread. A panic in a worker is re-raised on the
//! caller, never turned into a short result.

use std::num::NonZero;

pub(crate) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZero::get)
}

/// `f` on contiguous chunks of `items`, one per core when there are at least `min` items
/// (otherwise one call on all of them); the results in chunk order.
pub(crate) fn chunks<T: Sync, R: Send>(items: &[T], min: usize, f: impl Fn(&[T]) -> R + Sync) -> Vec<R> {
    let n = threads();
    if items.len() < min.max(2) || n < 2 {
        return vec![f(items)];
    }
    let size = items.len().div_ceil(n);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(size).map(|part| scope.spawn(move || f(part))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// `f` on every item, on every core for at least `min` items; results in order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], min: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    chunks(items, min, |part| part.iter().map(&f).collect::<Vec<_>>()).into_iter().flatten().collect()
}

/// `f` on every index of `0..n`, on every core for at least `min` of them; results in order.
pub(crate) fn map_indices<R: Send>(n: usize, min: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let threads = threads();
    if n < min.max(2) || threads < 2 {
        return (0..n).map(f).collect();
    }
    let size = n.div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .step_by(size)
            .map(|start| scope.spawn(move || (start..n.min(start + size)).map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// Like [`map`], consuming the items: each thread owns (and drops) its chunk.
pub(crate) fn map_owned<T: Send, R: Send>(items: Vec<T>, min: usize, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let n = threads();
    if items.len() < min.max(2) || n < 2 {
        return items.into_iter().map(f).collect();
    }
    let size = items.len().div_ceil(n);
    let mut parts = Vec::with_capacity(n);
    let mut rest = items;
    while rest.len() > size {
        let tail = rest.split_off(size);
        parts.push(std::mem::replace(&mut rest, tail));
    }
    parts.push(rest);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// Drops `value` on a short-lived thread of its own, so a committing or checkpointing thread
/// does not wait while millions of allocations are freed (or inline when no thread can be
/// started).
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    spawn_freeing(move || drop(value));
}

/// Runs `work` on a new freeing thread; `false` when no thread can be started (a failed
/// spawn drops the closure here, and what it owns with it).
fn spawn_freeing(work: impl FnOnce() + Send + 'static) -> bool {
    std::thread::Builder::new().name("geocrm-free".into()).spawn(work).is_ok()
}

/// Frees values on a thread of its own, a chunk at a time as they are handed over, so a
/// thread working through millions of them (applying a large commit under the state's lock)
/// neither stops to free each one nor keeps them all alive until it is done. With fewer than
/// `min` values expected, or when no thread can be started, each value is freed where it is
/// handed over.
pub(crate) struct BackgroundDrop<T: Send + 'static> {
    chunk: Vec<T>,
    to_thread: Option<std::sync::mpsc::Sender<Vec<T>>>,
}

/// Values handed to the freeing thread at a time.
const DROP_CHUNK: usize = 16_384;

impl<T: Send + 'static> BackgroundDrop<T> {
    pub(crate) fn new(expected: usize, min: usize) -> Self {
        let to_thread = if expected >= min {
            let (tx, rx) = std::sync::mpsc::channel::<Vec<T>>();
            spawn_freeing(move || rx.iter().for_each(drop)).then_some(tx)
        } else {
            None
        };
        BackgroundDrop { chunk: Vec::new(), to_thread }
    }

    /// Hands a value over to be freed.
    pub(crate) fn push(&mut self, value: T) {
        let Some(to_thread) = &self.to_thread else { return }; // `value` is freed here
        self.chunk.push(value);
        if self.chunk.len() >= DROP_CHUNK {
            // A send fails only if the thread is gone; the chunk is then freed here.
            let _ = to_thread.send(std::mem::replace(&mut self.chunk, Vec::with_capacity(DROP_CHUNK)));
        }
    }
}

impl<T: Send + 'static> Drop for BackgroundDrop<T> {
    fn drop(&mut self) {
        if let Some(to_thread) = self.to_thread.take() {
            let _ = to_thread.send(std::mem::take(&mut self.chunk));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value handed to a `BackgroundDrop` is freed: inline below `min`, on the freeing
    /// thread above it (the last, partial chunk included, once the `BackgroundDrop` goes).
    #[test]
    fn background_drop_frees_every_value() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let freed = Arc::new(AtomicUsize::new(0));
        let mut inline = BackgroundDrop::new(3, 10);
        for i in 1..=3 {
            inline.push(Counted(freed.clone()));
            assert_eq!(freed.load(Ordering::SeqCst), i, "freed where handed over");
        }
        drop(inline);
        let n = 2 * DROP_CHUNK + 5;
        let mut background = BackgroundDrop::new(n, 10);
        for _ in 0..n {
            background.push(Counted(freed.clone()));
        }
        drop(background);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while freed.load(Ordering::SeqCst) < n + 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(freed.load(Ordering::SeqCst), n + 3);
    }

    #[test]
    fn results_keep_input_order_at_every_size() {
        for n in [0usize, 1, 2, 3, 7, 100, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let doubled: Vec<usize> = items.iter().map(|i| i * 2).collect();
            assert_eq!(map(&items, 1, |i| i * 2), doubled);
            assert_eq!(map_owned(items.clone(), 1, |i| i * 2), doubled);
            assert_eq!(map(&items, usize::MAX, |i| i * 2), doubled);
            assert_eq!(map_indices(n, 1, |i| i * 2), doubled);
            assert_eq!(map_indices(n, usize::MAX, |i| i * 2), doubled);
            let sums: usize = chunks(&items, 1, |part| part.iter().sum::<usize>()).into_iter().sum();
            assert_eq!(sums, items.iter().sum::<usize>());
        }
    }

    #[test]
    #[should_panic(expected = "worker")]
    fn a_worker_panic_reaches_the_caller() {
        let items: Vec<u32> = (0..100).collect();
        let _ = map(&items, 1, |&i| if i == 77 { panic!("worker") } else { i });
    }
}
