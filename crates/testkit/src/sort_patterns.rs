//! Adversarial inputs for the certificate store's sort, shared by its tests and benches.

/// Deterministic pseudo-random keys (SplitMix64), so runs are comparable.
pub fn random(n: usize, seed: u64) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

/// 0, 1, …, n-1.
pub fn sorted(n: usize) -> Vec<u64> {
    (0..n as u64).collect()
}

/// n-1, …, 1, 0.
pub fn reversed(n: usize) -> Vec<u64> {
    (0..n as u64).rev().collect()
}

/// 0, 1, …, n/2, …, 1, 0.
pub fn organ_pipe(n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| i.min(n as u64 - 1 - i)).collect()
}

/// Every key equal.
pub fn all_equal(n: usize) -> Vec<u64> {
    vec![7; n]
}

/// An input that defeats this sort's median-of-three pivot: McIlroy's adversary ("A Killer
/// Adversary for Quicksort", 1999) run against the sort itself (`sort_by`: the certificate
/// store's `introsort_by`).
/// Keys start as "gas" and are frozen to ascending values exactly when the sort's
/// comparisons would reveal them, so each partition separates as few keys as possible. The
/// recorded keys, replayed, make every median-of-three pick a near-extreme pivot.
pub fn median_of_3_killer(
    n: usize,
    sort_by: impl FnOnce(&mut [usize], &mut dyn FnMut(&usize, &usize) -> bool),
) -> Vec<u64> {
    let gas = n as u64;
    let mut val = vec![gas; n];
    let mut solid = 0u64;
    let mut candidate = usize::MAX;
    let mut idx: Vec<usize> = (0..n).collect();
    sort_by(&mut idx, &mut |&x, &y| {
        if val[x] == gas && val[y] == gas {
            let frozen = if x == candidate { x } else { y };
            val[frozen] = solid;
            solid += 1;
        }
        if val[x] == gas {
            candidate = x;
        } else if val[y] == gas {
            candidate = y;
        }
        val[x] < val[y]
    });
    // Keys never compared against each other get the largest values.
    for v in val.iter_mut().filter(|v| **v == gas) {
        *v = solid;
        solid += 1;
    }
    val
}
