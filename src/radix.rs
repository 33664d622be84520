//! A least-significant-digit radix sort of `(u64 key, payload)` pairs: H3 cells for the
//! checkpoint's cell order and for aggregation groups, id prefixes for its id order.

/// Sorts `(key, payload)` pairs by key, stably: least-significant-digit radix sort, 11 bits
/// per pass, over only the bits in which the keys differ (22 bits for H3 resolution 5).
pub(crate) fn sort_by_key<T: Copy + Default>(items: &mut Vec<(u64, T)>) {
    const BITS: u32 = 11;
    const MASK: u64 = (1 << BITS) - 1;
    let Some(&(first, _)) = items.first() else { return };
    let differ = items.iter().fold(0u64, |acc, &(k, _)| acc | (k ^ first));
    if differ == 0 {
        return;
    }
    let (low, high) = (differ.trailing_zeros(), 64 - differ.leading_zeros());
    let mut scratch = vec![(0u64, T::default()); items.len()];
    let mut shift = low;
    while shift < high {
        let digit = |k: u64| ((k >> shift) & MASK) as usize;
        let mut starts = vec![0usize; 1 << BITS];
        for &(k, _) in items.iter() {
            if let Some(c) = starts.get_mut(digit(k)) {
                *c += 1;
            }
        }
        let mut at = 0;
        for c in &mut starts {
            (*c, at) = (at, at + *c);
        }
        for &item in items.iter() {
            if let Some(c) = starts.get_mut(digit(item.0)) {
                if let Some(slot) = scratch.get_mut(*c) {
                    *slot = item;
                }
                *c += 1;
            }
        }
        std::mem::swap(items, &mut scratch);
        shift += BITS;
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn radix_sort_is_a_stable_sort_by_key() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for n in [0usize, 1, 2, 100, 10_000] {
            let mut items: Vec<(u64, u32)> = (0..n)
                .map(|i| (rng.gen::<u64>() >> rng.gen_range(0..64), u32::try_from(i).unwrap()))
                .collect();
            items.extend(items.clone().iter().map(|&(k, i)| (k, i + 1_000_000)));
            let mut expected = items.clone();
            expected.sort_by_key(|&(k, _)| k); // stable
            sort_by_key(&mut items);
            assert_eq!(items, expected, "n = {n}");
        }
    }
}
