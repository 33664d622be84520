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
    ranges(items.len(), min, |range| f(items.get(range).unwrap_or_default()))
}

/// `f` on every item, on every core for at least `min` items; results in order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], min: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    concat(chunks(items, min, |part| part.iter().map(&f).collect::<Vec<_>>()))
}

/// The parts one after another, in one vector allocated once at its full length (collecting
/// a flattened iterator grows it step by step, copying what it holds at each step: for an
/// import's million converted rows, hundreds of megabytes moved and faulted in again).
fn concat<R>(mut parts: Vec<Vec<R>>) -> Vec<R> {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for mut part in parts {
        out.append(&mut part);
    }
    out
}

/// `f` on each part, each on a thread of its own; the results in order, and a worker's
/// panic raised again here.
fn on_threads<P: Send, R: Send>(parts: impl Iterator<Item = P>, f: impl Fn(P) -> R + Sync) -> Vec<R> {
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts.map(|part| scope.spawn(move || f(part))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// `f` on every index of `0..n`, on every core for at least `min` of them; results in order.
pub(crate) fn map_indices<R: Send>(n: usize, min: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    concat(ranges(n, min, |range| range.map(&f).collect::<Vec<_>>()))
}

/// `f` on contiguous ranges that cover `0..n`, one per core when `n` is at least `min`
/// (otherwise one call on all of it); the results in range order.
pub(crate) fn ranges<R: Send>(
    n: usize,
    min: usize,
    f: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    let threads = threads();
    if n < min.max(2) || threads < 2 {
        return vec![f(0..n)];
    }
    let size = n.div_ceil(threads);
    on_threads((0..n).step_by(size).map(|start| start..n.min(start + size)), f)
}

/// `f` on every item, a contiguous chunk per core when there are at least two.
pub(crate) fn for_each_mut<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    let threads = threads();
    if items.len() < 2 || threads < 2 {
        items.iter_mut().for_each(f);
        return;
    }
    let size = items.len().div_ceil(threads);
    on_threads(items.chunks_mut(size), |chunk| chunk.iter_mut().for_each(&f));
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
    concat(on_threads(parts.into_iter(), |part| part.into_iter().map(&f).collect::<Vec<_>>()))
}

/// Drops `value` on a short-lived thread of its own, so a committing or checkpointing thread
/// does not wait while millions of allocations are freed (or inline when no thread can be
/// started).
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    // A failed spawn drops the closure here, and `value` with it.
    let _ = std::thread::Builder::new().name("geocrm-free".into()).spawn(move || drop(value));
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut in_place = items.clone();
            for_each_mut(&mut in_place, |i| *i *= 2);
            assert_eq!(in_place, doubled);
            let sums: usize = chunks(&items, 1, |part| part.iter().sum::<usize>()).into_iter().sum();
            assert_eq!(sums, items.iter().sum::<usize>());
            for min in [1, usize::MAX] {
                let covered: Vec<usize> = ranges(n, min, |r| r.collect::<Vec<_>>()).concat();
                assert_eq!(covered, items, "ranges cover 0..{n} in order");
            }
        }
    }

    #[test]
    #[should_panic(expected = "worker")]
    fn a_worker_panic_reaches_the_caller() {
        let items: Vec<u32> = (0..100).collect();
        let _ = map(&items, 1, |&i| if i == 77 { panic!("worker") } else { i });
    }
}
